// detect: steady stretches of one class become background segments.
#include "detect/background.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>

#include "detect/events.hpp"

namespace earmark::detect {

namespace {

// Where classes are present on a score grid: a score at least params.floor x the class's
// off-threshold. One reading of the grid for the background rules, the absorption and the
// salience check.
class Presence {
 public:
  Presence(const FrameScores* scores, const BackgroundParams& params) : scores_(scores), params_(params) {
    if (scores && scores->frames > 0 && scores->hop_s > 0 &&
        scores->values.size() == size_t(scores->frames) * scores->labels.size())
      for (size_t c = 0; c < scores->labels.size(); ++c) column_.emplace(scores->labels[c], int(c));
  }
  // The grid column of a label (the first with that name), or -1 (no usable grid, no such label).
  int column(const std::string& label) const {
    const auto it = column_.find(label);
    return it == column_.end() ? -1 : it->second;
  }
  double level(const std::string& label) const {
    const auto o = params_.off.find(label);
    return params_.floor * (o != params_.off.end() ? o->second : params_.default_off);
  }
  double hop() const { return scores_->hop_s; }
  int frames() const { return scores_->frames; }
  bool present(int f, int c, double level) const { return double(scores_->at(f, c)) >= level; }
  // Frames of [f0, f1), clipped to the grid, in which column c is at least `level`.
  int count(int c, double level, int f0, int f1) const {
    int n = 0;
    for (int f = std::max(0, f0); f < std::min(frames(), f1); ++f) n += present(f, c, level) ? 1 : 0;
    return n;
  }
  int floor_frame(double t) const { return int(std::floor(t / hop())); }
  int ceil_frame(double t) const { return int(std::ceil(t / hop())); }

 private:
  const FrameScores* scores_;
  const BackgroundParams& params_;
  std::map<std::string, int> column_;
};

}  // namespace

BackgroundParams BackgroundParams::from(const EventsConfig& cfg) {
  BackgroundParams p;
  p.enabled = cfg.background;
  p.min_s = cfg.background_min_s;
  p.coverage = cfg.background_coverage;
  p.bridge_s = cfg.background_bridge_s;
  p.floor = cfg.background_floor;
  p.window_s = cfg.background_window_s;
  p.presence = cfg.background_presence;
  p.default_off = cfg.threshold_off;
  for (const auto& [label, t] : cfg.per_class) {
    if (t.off >= 0) p.off[label] = t.off;
    else if (t.on >= 0) p.off[label] = std::min(cfg.threshold_off, t.on);
  }
  return p;
}

void absorb_related(std::vector<Event>& events, std::vector<Event>& backgrounds,
                    const std::function<bool(const std::string&, const std::string&)>& related,
                    const BackgroundParams& params, const FrameScores* scores) {
  if (backgrounds.empty()) return;
  const Presence grid(scores, params);
  auto steady = [&](const std::string& label, const Event& b) {
    const int c = grid.column(label);
    if (c < 0) return false;
    const int f0 = std::max(0, grid.floor_frame(b.onset)), f1 = std::min(grid.frames(), grid.ceil_frame(b.offset));
    return f1 > f0 && double(grid.count(c, grid.level(label), f0, f1)) >= params.presence * double(f1 - f0);
  };
  std::vector<Event> kept;
  for (auto& e : events) {
    Event* host = nullptr;
    for (auto& b : backgrounds) {
      const double inside = std::min(e.offset, b.offset) - std::max(e.onset, b.onset);
      if (inside >= 0.5 * (e.offset - e.onset) &&
          (b.label == e.label || (related(b.label, e.label) && steady(e.label, b)))) {
        host = &b;
        break;
      }
    }
    if (!host) {
      kept.push_back(std::move(e));
      continue;
    }
    auto add = [&](const std::string& label, float confidence) {
      if (label == host->label) return;
      for (auto& a : host->also)
        if (a.label == label) {
          a.confidence = std::max(a.confidence, confidence);
          return;
        }
      host->also.push_back({label, confidence});
    };
    add(e.label, e.confidence);
    for (const auto& a : e.also) add(a.label, a.confidence);
  }
  for (auto& b : backgrounds)
    std::stable_sort(b.also.begin(), b.also.end(), [](const RolledLabel& x, const RolledLabel& y) { return x.confidence > y.confidence; });
  events = std::move(kept);
}

double presence_around(const FrameScores& scores, const Event& e, const BackgroundParams& params, double context_s) {
  const Presence grid(&scores, params);
  int c = grid.column(e.label);
  if (c < 0) return 0;
  if (e.class_index >= 0 && size_t(e.class_index) < scores.labels.size() && scores.labels[size_t(e.class_index)] == e.label)
    c = e.class_index;
  const double level = grid.level(e.label);
  // The context before the event, [a0, a1), and after it, [b0, b1), clipped to the grid.
  const int a0 = std::max(0, grid.floor_frame(e.onset - context_s)), a1 = std::min(grid.frames(), grid.floor_frame(e.onset));
  const int b0 = std::max(0, grid.ceil_frame(e.offset)), b1 = std::min(grid.frames(), grid.ceil_frame(e.offset + context_s));
  const int n = std::max(0, a1 - a0) + std::max(0, b1 - b0);
  const int present = grid.count(c, level, a0, a1) + grid.count(c, level, b0, b1);
  return n > 0 ? double(present) / n : 1.0;  // no context at all: the event is the whole file
}

void split_kinds(const std::vector<Event>& all, std::vector<Event>& events, std::vector<Event>& backgrounds) {
  events.clear();
  backgrounds.clear();
  for (const auto& e : all) (e.kind == EventKind::background ? backgrounds : events).push_back(e);
}

std::vector<Event> mark_backgrounds(const std::vector<Event>& events, const BackgroundParams& params,
                                    const FrameScores* scores) {
  if (!params.enabled) return events;
  const Presence grid(scores, params);
  // Seconds of [t0, t1) in which the class of `label` is present: its score at least floor x its
  // off-threshold, or inside one of its events (`covered`, measured from the events).
  auto presence = [&](const std::string& label, double t0, double t1, double covered) {
    const int c = grid.column(label);
    if (c < 0) return covered;
    return std::max(covered, grid.count(c, grid.level(label), grid.floor_frame(t0), grid.ceil_frame(t1)) * grid.hop());
  };

  std::vector<Event> out;
  // Per label, in onset order (the label, not class_index, names a track: lists may be merged).
  std::map<std::string, std::vector<const Event*>> by_label;
  for (const auto& e : events) {
    if (e.kind == EventKind::background) {
      out.push_back(e);
      continue;
    }
    by_label[e.label].push_back(&e);
  }
  for (auto& [label, list] : by_label) {
    std::sort(list.begin(), list.end(), [](const Event* a, const Event* b) { return a->onset < b->onset; });
    std::vector<Event> segments;  // this class's background segments
    std::vector<bool> taken(list.size(), false);
    auto add_segment = [&](Event b) {
      b.kind = EventKind::background;
      b.also.clear();
      segments.push_back(std::move(b));
    };

    // Rule 1, recurring presence: where the class is present in at least `presence` of a window
    // of window_s around each moment, for at least min_s, and present there outside its own
    // events too (a sound that only rises at its events is a series of events, not a bed).
    if (const int c = grid.column(label); c >= 0 && params.presence > 0) {
      const int n = grid.frames();
      const double hop = grid.hop(), level = grid.level(label);
      const int half = std::max(1, int(std::lround(params.window_s / hop / 2)));
      std::vector<int> prefix(size_t(n) + 1, 0), inside(size_t(n) + 1, 0);
      std::vector<uint8_t> in_event(size_t(n), 0);
      for (const Event* e : list) {
        const int a = std::max(0, grid.floor_frame(e->onset)), b = std::min(n, grid.ceil_frame(e->offset));
        for (int f = a; f < b; ++f) in_event[size_t(f)] = 1;
      }
      for (int f = 0; f < n; ++f) {
        const bool on = grid.present(f, c, level);
        prefix[size_t(f) + 1] = prefix[size_t(f)] + (on ? 1 : 0);
        inside[size_t(f) + 1] = inside[size_t(f)] + (on && !in_event[size_t(f)] ? 1 : 0);
      }
      const auto min_frames = int(std::ceil(params.min_s / hop - 1e-9));
      for (int f = 0; f < n;) {
        auto steady = [&](int g) {
          const int a = std::max(0, g - half), b = std::min(n, g + half + 1);
          return double(prefix[size_t(b)] - prefix[size_t(a)]) >= params.presence * double(b - a);
        };
        if (!steady(f)) {
          ++f;
          continue;
        }
        int g = f;
        while (g < n && steady(g)) ++g;
        // [f, g): steady. Its extent: from the first to the last frame where the class is present.
        int first = f, last = g - 1;
        while (first < last && !grid.present(first, c, level)) ++first;
        while (last > first && !grid.present(last, c, level)) --last;
        const int len = last - first + 1;
        const int outside = inside[size_t(last) + 1] - inside[size_t(first)];
        if (len >= min_frames && double(outside) >= params.outside * double(len)) {
          Event b;
          b.onset = first * hop;
          b.offset = (last + 1) * hop;
          bool any = false;
          for (size_t k = 0; k < list.size(); ++k) {
            const Event& e = *list[k];
            const double in = std::min(e.offset, b.offset) - std::max(e.onset, b.onset);
            if (taken[k] || in < 0.5 * (e.offset - e.onset)) continue;
            if (!any) {
              const double on = b.onset, off = b.offset;
              b = e;
              b.onset = on, b.offset = off;
            }
            any = true;
            taken[k] = true;
            b.onset = std::min(b.onset, e.onset);
            b.offset = std::max(b.offset, e.offset);
            b.confidence = std::max(b.confidence, e.confidence);
            b.score = std::max(b.score, e.score);
          }
          if (any) add_segment(std::move(b));  // a bed that never reached the threshold stays unreported
        }
        f = g;
      }
    }

    // Rule 2, a long chain: events whose gaps are under bridge_s, covering (with the class's
    // presence between them) at least `coverage` of a span of at least min_s.
    for (size_t i = 0; i < list.size();) {
      if (taken[i]) {
        ++i;
        continue;
      }
      size_t j = i;
      double end = list[i]->offset, covered = 0, covered_to = list[i]->onset;
      float peak = 0, peak_score = 0;
      for (; j < list.size() && !taken[j] && (j == i || list[j]->onset - end <= params.bridge_s); ++j) {
        const Event& e = *list[j];
        const double from = std::max(e.onset, covered_to);
        if (e.offset > from) covered += e.offset - from;
        covered_to = std::max(covered_to, e.offset);
        end = std::max(end, e.offset);
        peak = std::max(peak, e.confidence);
        peak_score = std::max(peak_score, e.score);
      }
      const double span = end - list[i]->onset;
      if (span >= params.min_s && presence(label, list[i]->onset, end, covered) >= params.coverage * span) {
        Event b = *list[i];
        b.offset = end;
        b.confidence = peak;
        b.score = peak_score;
        add_segment(std::move(b));
        for (size_t k = i; k < j; ++k) taken[k] = true;
      }
      i = std::max(j, i + 1);
    }
    for (size_t k = 0; k < list.size(); ++k)
      if (!taken[k]) out.push_back(*list[k]);

    // Segments of one class closer than bridge_s are one.
    std::sort(segments.begin(), segments.end(), [](const Event& a, const Event& b) { return a.onset < b.onset; });
    std::vector<Event> joined;
    for (auto& b : segments) {
      if (!joined.empty() && b.onset - joined.back().offset <= params.bridge_s) {
        joined.back().offset = std::max(joined.back().offset, b.offset);
        joined.back().confidence = std::max(joined.back().confidence, b.confidence);
        joined.back().score = std::max(joined.back().score, b.score);
      } else {
        joined.push_back(std::move(b));
      }
    }
    for (auto& b : joined) out.push_back(std::move(b));
  }
  std::sort(out.begin(), out.end(), reported_order);
  return out;
}

}  // namespace earmark::detect
