// detect: thinning label bursts.
#include "detect/bursts.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "detect/events.hpp"

namespace earmark::detect {

BurstParams BurstParams::from(const EventsConfig& cfg) {
  BurstParams p;
  p.max_events = cfg.burst_max;
  p.window_s = cfg.burst_window_s;
  p.default_on = cfg.threshold_on;
  for (const auto& [label, t] : cfg.per_class)
    if (t.on >= 0) p.on[label] = t.on;
  return p;
}

namespace {
double support_of(const Event& e, const BurstParams& params) {
  const auto it = params.on.find(e.label);
  const double on = it != params.on.end() ? it->second : params.default_on;
  return double(e.score) / std::max(on, 1e-3);
}
}  // namespace

std::vector<Event> merge_coincident(const std::vector<Event>& events, const BurstParams& params, double tolerance_s,
                                    double ratio, const std::function<int(const std::string&)>& depth) {
  std::vector<Event> out, list;
  for (const auto& e : events) (e.kind == EventKind::background ? out : list).push_back(e);
  std::stable_sort(list.begin(), list.end(), [](const Event& a, const Event& b) { return a.onset < b.onset; });
  std::vector<bool> used(list.size(), false);
  for (size_t i = 0; i < list.size(); ++i) {
    if (used[i]) continue;
    std::vector<size_t> group = {i};
    for (size_t j = i + 1; j < list.size() && list[j].onset - list[i].onset <= tolerance_s + 1e-9; ++j)
      if (!used[j] && std::abs(list[j].offset - list[i].offset) <= tolerance_s + 1e-9 && list[j].label != list[i].label)
        group.push_back(j);
    for (size_t k : group) used[k] = true;
    if (group.size() == 1) {
      out.push_back(list[i]);
      continue;
    }
    double best = 0;
    for (size_t k : group) best = std::max(best, support_of(list[k], params));
    size_t pick = group[0];
    auto key = [&](size_t k) {
      const bool eligible = support_of(list[k], params) >= ratio * best;
      return std::make_tuple(eligible, eligible ? depth(list[k].label) : 0, support_of(list[k], params));
    };
    for (size_t k : group)
      if (key(k) > key(pick)) pick = k;
    Event e = list[pick];
    for (size_t k : group) {
      if (k == pick) continue;
      e.also.push_back({list[k].label, list[k].confidence});
      for (const auto& a : list[k].also) e.also.push_back(a);
      e.onset = std::min(e.onset, list[k].onset);
      e.offset = std::max(e.offset, list[k].offset);
    }
    std::stable_sort(e.also.begin(), e.also.end(), [](const RolledLabel& x, const RolledLabel& y) { return x.confidence > y.confidence; });
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), reported_order);
  return out;
}

std::vector<Event> suppress_bursts(const std::vector<Event>& events, const BurstParams& params, size_t* removed) {
  if (removed) *removed = 0;
  if (params.max_events <= 0) return events;
  std::vector<Event> out, list;
  for (const auto& e : events) (e.kind == EventKind::background ? out : list).push_back(e);
  std::stable_sort(list.begin(), list.end(), [](const Event& a, const Event& b) { return a.onset < b.onset; });
  auto support = [&](const Event& e) { return support_of(e, params); };
  for (size_t i = 0; i < list.size();) {
    size_t j = i + 1;
    while (j < list.size() && list[j].onset - list[i].onset <= params.window_s + 1e-9) ++j;
    if (j - i > size_t(params.max_events)) {
      std::vector<size_t> order(j - i);
      for (size_t k = 0; k < order.size(); ++k) order[k] = i + k;
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const double sa = support(list[a]), sb = support(list[b]);
        if (sa != sb) return sa > sb;
        return list[a].offset - list[a].onset > list[b].offset - list[b].onset;
      });
      for (size_t k = 0; k < size_t(params.max_events); ++k) out.push_back(list[order[k]]);
      if (removed) *removed += order.size() - size_t(params.max_events);
    } else {
      for (size_t k = i; k < j; ++k) out.push_back(list[k]);
    }
    i = j;
  }
  std::sort(out.begin(), out.end(), reported_order);
  return out;
}

}  // namespace earmark::detect
