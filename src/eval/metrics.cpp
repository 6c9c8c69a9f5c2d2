#include "eval/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>

namespace earmark::eval {

namespace {

constexpr double kEps = 2.220446049250313e-16;  // numpy.spacing(1), sed_eval's eps
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Sorted union of the labels of both tables and `extra`.
std::vector<std::string> class_list(const EventTable& ref, const EventTable& est,
                                    const std::vector<std::string>& extra) {
  std::set<std::string> s(extra.begin(), extra.end());
  for (const auto& l : ref.labels()) s.insert(l);
  for (const auto& l : est.labels()) s.insert(l);
  return {s.begin(), s.end()};
}

// Files of ref, then those only in est.
std::vector<std::string> file_list(const EventTable& ref, const EventTable& est) {
  std::vector<std::string> files = ref.files();
  for (const auto& f : est.files())
    if (!ref.has(f)) files.push_back(f);
  return files;
}

double max_offset(const std::vector<Event>& events) {
  double m = 0;
  for (const auto& e : events) m = std::max(m, e.offset);
  return m;
}

// F-measure and error-rate fields from the accumulated class counts.
void finish_class(ClassMetrics& c) {
  c.precision = sed_precision(double(c.tp), double(c.n_sys));
  c.recall = sed_recall(double(c.tp), double(c.n_ref));
  c.f1 = sed_f_measure(c.precision, c.recall);
  c.deletion_rate = sed_rate(double(c.fn), double(c.n_ref));
  c.insertion_rate = sed_rate(double(c.fp), double(c.n_ref));
  c.error_rate = c.deletion_rate + c.insertion_rate;
}

void finish_overall(OverallMetrics& o) {
  o.precision = sed_precision(double(o.tp), double(o.n_sys));
  o.recall = sed_recall(double(o.tp), double(o.n_ref));
  o.f1 = sed_f_measure(o.precision, o.recall);
  o.substitution_rate = sed_rate(double(o.substitutions), double(o.n_ref));
  o.deletion_rate = sed_rate(double(o.deletions), double(o.n_ref));
  o.insertion_rate = sed_rate(double(o.insertions), double(o.n_ref));
  o.error_rate = o.substitution_rate + o.deletion_rate + o.insertion_rate;
}

MacroMetrics macro_of(const std::vector<ClassMetrics>& classes) {
  auto mean_of = [&](double ClassMetrics::*field) {
    std::vector<double> v;
    for (const auto& c : classes) v.push_back(c.*field);
    return nanmean(v);
  };
  MacroMetrics m;
  m.precision = mean_of(&ClassMetrics::precision);
  m.recall = mean_of(&ClassMetrics::recall);
  m.f1 = mean_of(&ClassMetrics::f1);
  m.error_rate = mean_of(&ClassMetrics::error_rate);
  m.deletion_rate = mean_of(&ClassMetrics::deletion_rate);
  m.insertion_rate = mean_of(&ClassMetrics::insertion_rate);
  return m;
}

}  // namespace

double sed_precision(double tp, double n_sys) { return n_sys == 0 ? kNaN : tp / n_sys; }
double sed_recall(double tp, double n_ref) { return n_ref == 0 ? kNaN : tp / n_ref; }
double sed_f_measure(double precision, double recall) {
  if (precision == 0 && recall == 0) return 0.0;
  return 2 * precision * recall / (precision + recall);  // NaN in, NaN out, as in Python
}
double sed_rate(double count, double n_ref) { return count / (n_ref + kEps); }
double nanmean(const std::vector<double>& v) {
  double sum = 0;
  int n = 0;
  for (double x : v)
    if (!std::isnan(x)) sum += x, ++n;
  return n ? sum / n : kNaN;
}

void EventBasedConfig::validate() const {
  if (!(t_collar > 0) || !std::isfinite(t_collar))
    throw Error(fmt::format("event-based t_collar {} must be a positive number of seconds (default 0.2)", t_collar));
  if (!(percentage_of_length >= 0 && percentage_of_length <= 1))
    throw Error(fmt::format("event-based percentage_of_length {} must be in [0, 1] (default 0.2)",
                            percentage_of_length));
  if (!evaluate_onset && !evaluate_offset)
    throw Error("event-based evaluation needs the onset, the offset or both; both were switched off");
}

void SegmentBasedConfig::validate() const {
  if (!(time_resolution > 0) || !std::isfinite(time_resolution))
    throw Error(fmt::format("segment length {} must be a positive number of seconds (default 1.0)", time_resolution));
}

std::vector<int> sed_bipartite_match(const std::vector<std::vector<bool>>& hit, size_t n_est) {
  // sed_eval builds graph = {est: [refs]} from numpy.where(hit) (row-major: refs outer), and
  // Python dicts keep insertion order; every ordered container below mirrors one of its dicts.
  const size_t n_ref = hit.size();
  std::vector<int> keys;  // est indices in graph order
  std::vector<std::vector<int>> adj(n_est);
  std::vector<bool> is_key(n_est, false);
  for (size_t j = 0; j < n_ref; ++j)
    for (size_t i = 0; i < n_est; ++i)
      if (hit[j][i]) {
        if (!is_key[i]) is_key[i] = true, keys.push_back(int(i));
        adj[i].push_back(int(j));
      }

  std::vector<int> match(n_ref, -1);  // ref -> est
  for (int u : keys)
    for (int v : adj[size_t(u)])
      if (match[size_t(v)] < 0) {
        match[size_t(v)] = u;
        break;
      }

  constexpr int kFree = -2;  // the "unmatched" flag sed_eval stores in pred for free estimates
  while (true) {
    std::vector<bool> has_preds(n_ref, false);
    std::vector<std::vector<int>> preds(n_ref);
    std::vector<int> unmatched;
    std::vector<bool> has_pred(n_est, false);
    std::vector<int> pred(n_est, kFree);
    for (int u : keys) has_pred[size_t(u)] = true;
    for (size_t v = 0; v < n_ref; ++v)
      if (match[v] >= 0) has_pred[size_t(match[v])] = false;
    std::vector<int> layer;
    for (int u : keys)
      if (has_pred[size_t(u)]) layer.push_back(u);

    while (!layer.empty() && unmatched.empty()) {
      std::vector<int> order;
      std::map<int, std::vector<int>> new_layer;
      for (int u : layer)
        for (int v : adj[size_t(u)])
          if (!has_preds[size_t(v)]) {
            auto [it, inserted] = new_layer.try_emplace(v);
            if (inserted) order.push_back(v);
            it->second.push_back(u);
          }
      layer.clear();
      for (int v : order) {
        has_preds[size_t(v)] = true;
        preds[size_t(v)] = new_layer[v];
        if (match[size_t(v)] >= 0) {
          const int u = match[size_t(v)];
          layer.push_back(u);
          has_pred[size_t(u)] = true;
          pred[size_t(u)] = v;
        } else {
          unmatched.push_back(v);
        }
      }
    }
    if (unmatched.empty()) return match;

    std::function<bool(int)> recurse = [&](int v) -> bool {
      if (!has_preds[size_t(v)]) return false;
      const std::vector<int> l = preds[size_t(v)];
      has_preds[size_t(v)] = false;
      for (int u : l) {
        if (!has_pred[size_t(u)]) continue;
        const int pu = pred[size_t(u)];
        has_pred[size_t(u)] = false;
        if (pu == kFree || recurse(pu)) {
          match[size_t(v)] = u;
          return true;
        }
      }
      return false;
    };
    for (int v : unmatched) recurse(v);
  }
}

SedResult event_based(const EventTable& ref, const EventTable& est, const EventBasedConfig& config,
                      const std::vector<std::string>& labels) {
  config.validate();
  ref.check("reference");
  est.check("estimate");
  const std::vector<std::string> classes = class_list(ref, est, labels);
  std::map<std::string, size_t> class_index;
  for (size_t k = 0; k < classes.size(); ++k) class_index[classes[k]] = k;

  SedResult r;
  r.classes.resize(classes.size());
  for (size_t k = 0; k < classes.size(); ++k) r.classes[k].label = classes[k];
  OverallMetrics& o = r.micro;

  auto onset_ok = [&](const Event& a, const Event& b) { return std::fabs(a.onset - b.onset) <= config.t_collar; };
  auto offset_ok = [&](const Event& a, const Event& b) {
    const double length = a.offset - a.onset;
    return std::fabs(a.offset - b.offset) <= std::max(config.t_collar, config.percentage_of_length * length);
  };
  auto time_ok = [&](const Event& a, const Event& b) {
    return (!config.evaluate_onset || onset_ok(a, b)) && (!config.evaluate_offset || offset_ok(a, b));
  };

  for (const auto& file : file_list(ref, est)) {
    const auto& R = ref.events(file);
    const auto& E = est.events(file);
    r.files += 1;
    r.evaluated_length_s += max_offset(R);

    std::vector<bool> ref_ok(R.size(), false), sys_ok(E.size(), false);
    if (config.matching == Matching::Optimal) {
      std::vector<std::vector<bool>> hit(R.size(), std::vector<bool>(E.size(), false));
      for (size_t j = 0; j < R.size(); ++j)
        for (size_t i = 0; i < E.size(); ++i) hit[j][i] = R[j].label == E[i].label && time_ok(R[j], E[i]);
      const auto m = sed_bipartite_match(hit, E.size());
      for (size_t j = 0; j < R.size(); ++j)
        if (m[j] >= 0) ref_ok[j] = true, sys_ok[size_t(m[j])] = true;
    } else {
      for (size_t j = 0; j < R.size(); ++j)
        for (size_t i = 0; i < E.size(); ++i)
          if (!sys_ok[i] && R[j].label == E[i].label && time_ok(R[j], E[i])) {
            ref_ok[j] = sys_ok[i] = true;
            break;
          }
    }
    long tp = 0;
    for (size_t j = 0; j < R.size(); ++j)
      if (ref_ok[j]) {
        ++tp;
        // Same-label pairs only, so the class-wise TP is the overall matching split by label
        // (a maximum matching decomposes by label; greedy never pairs across labels).
        r.classes[class_index.at(R[j].label)].tp += 1;
      }

    // Substitutions: leftovers that match in time but not in label, paired greedily.
    long subs = 0;
    std::vector<bool> sys_counted(E.size(), false);
    for (size_t j = 0; j < R.size(); ++j) {
      if (ref_ok[j]) continue;
      for (size_t i = 0; i < E.size(); ++i)
        if (!sys_ok[i] && !sys_counted[i] && time_ok(R[j], E[i])) {
          sys_counted[i] = true;
          ++subs;
          break;
        }
    }
    o.n_ref += long(R.size());
    o.n_sys += long(E.size());
    o.tp += tp;
    o.substitutions += subs;
    o.fp += long(E.size()) - tp - subs;
    o.fn += long(R.size()) - tp - subs;
    for (const auto& e : R) r.classes[class_index.at(e.label)].n_ref += 1;
    for (const auto& e : E) r.classes[class_index.at(e.label)].n_sys += 1;
  }
  o.deletions = o.fn;
  o.insertions = o.fp;
  for (auto& c : r.classes) {
    c.fp = c.n_sys - c.tp;
    c.fn = c.n_ref - c.tp;
    finish_class(c);
  }
  finish_overall(o);
  r.macro = macro_of(r.classes);
  return r;
}

SedResult segment_based(const EventTable& ref, const EventTable& est, const Durations& durations,
                        const SegmentBasedConfig& config, const std::vector<std::string>& labels) {
  config.validate();
  ref.check("reference");
  est.check("estimate");
  for (const auto& [file, d] : durations)
    if (!std::isfinite(d) || d < 0) throw Error(fmt::format("durations: {}: {} is not a length in seconds", file, d));
  const double res = config.time_resolution;
  const std::vector<std::string> classes = class_list(ref, est, labels);
  std::map<std::string, size_t> class_index;
  for (size_t k = 0; k < classes.size(); ++k) class_index[classes[k]] = k;
  const size_t K = classes.size();

  SedResult r;
  r.classes.resize(K);
  for (size_t k = 0; k < K; ++k) r.classes[k].label = classes[k];
  OverallMetrics& o = r.micro;

  for (const auto& file : file_list(ref, est)) {
    const auto& R = ref.events(file);
    const auto& E = est.events(file);
    auto d = durations.find(file);
    const double length = d != durations.end() ? d->second : std::max(max_offset(R), max_offset(E));
    const long n_seg = long(std::ceil(length / res));
    r.files += 1;
    r.evaluated_length_s += length;
    if (n_seg <= 0) continue;
    // Two activity rolls of n_seg x K bytes each: bound them (times are already capped at a
    // week by the readers, but a fine segment length multiplies that).
    constexpr double kMaxRollCells = double(size_t(1) << 27);
    if (double(n_seg) * double(std::max<size_t>(K, 1)) > kMaxRollCells)
      throw Error(fmt::format("segment-based metrics: '{}' spans {} s, {} segments of {} s for {} classes, more "
                              "than this evaluation holds in memory ({} cells); use a longer segment length",
                              file, length, n_seg, res, K, kMaxRollCells));

    // Activity rolls, segment-major. sed_eval marks [floor(onset/res), ceil(offset/res)) and
    // then pads or cuts the roll to the evaluated length.
    auto roll = [&](const std::vector<Event>& events) {
      std::vector<char> a(size_t(n_seg) * K, 0);
      for (const auto& e : events) {
        const long s0 = long(std::floor(e.onset / res));
        const long s1 = std::min(n_seg, long(std::ceil(e.offset / res)));
        const size_t k = class_index.at(e.label);
        for (long s = s0; s < s1; ++s) a[size_t(s) * K + k] = 1;
      }
      return a;
    };
    const auto ra = roll(R), sa = roll(E);
    for (long s = 0; s < n_seg; ++s) {
      long tp = 0, fp = 0, fn = 0, nr = 0, ns = 0;
      for (size_t k = 0; k < K; ++k) {
        const int a = ra[size_t(s) * K + k], b = sa[size_t(s) * K + k];
        tp += a && b;
        fp += b && !a;
        fn += a && !b;
        nr += a;
        ns += b;
        auto& c = r.classes[k];
        c.tp += a && b;
        c.fp += b && !a;
        c.fn += a && !b;
        c.n_ref += a;
        c.n_sys += b;
      }
      o.tp += tp;
      o.fp += fp;
      o.fn += fn;
      o.n_ref += nr;
      o.n_sys += ns;
      o.substitutions += std::min(nr, ns) - tp;
      o.deletions += std::max(0L, nr - ns);
      o.insertions += std::max(0L, ns - nr);
    }
  }
  for (auto& c : r.classes) finish_class(c);
  finish_overall(o);
  r.macro = macro_of(r.classes);
  return r;
}

}  // namespace earmark::eval
