// detect: a second look at a file's detections, listing what a person should double-check.
#include "detect/review.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace earmark::detect {

namespace {

struct Run {
  int begin = 0, end = 0;  // [begin, end) indices
};

// Maximal runs of indices where `pred` holds.
template <class Pred>
std::vector<Run> runs_where(int n, Pred pred) {
  std::vector<Run> out;
  int start = -1;
  for (int i = 0; i <= n; ++i) {
    const bool on = i < n && pred(i);
    if (on && start < 0) start = i;
    if (!on && start >= 0) {
      out.push_back({start, i});
      start = -1;
    }
  }
  return out;
}

float best_score(const FrameScores& s, int frame) {
  float best = 0;
  const size_t width = s.labels.size(), base = size_t(frame) * width;
  for (size_t c = 0; c < width; ++c) {
    const float v = s.values[base + c];
    if (std::isfinite(v)) best = std::max(best, v);
  }
  return best;
}

bool scores_usable(const FrameScores& s) {
  return s.frames > 0 && !s.labels.empty() && s.hop_s > 0 && s.values.size() >= size_t(s.frames) * s.labels.size();
}

// The decoded duration when known: the score grid's last frame may reach past the end.
double file_length(const FileResult& r) {
  if (r.info.duration_s > 0 && std::isfinite(r.info.duration_s)) return r.info.duration_s;
  double len = 0;
  if (scores_usable(r.scores)) len = std::max(len, r.scores.frames * r.scores.hop_s);
  if (r.spectrogram.columns > 0) len = std::max(len, r.spectrogram.columns * r.spectrogram.seconds_per_column);
  return len;
}

Anomaly make(const char* kind, const char* severity, double start, double end, std::string message) {
  return Anomaly{kind, severity, start, end, std::move(message)};
}

void low_confidence_events(const FileResult& r, const ReviewConfig& c, std::vector<Anomaly>& out) {
  for (const auto& e : r.events) {
    if (e.kind == EventKind::background) continue;
    const auto it = c.per_class_on.find(e.label);
    const double on = it != c.per_class_on.end() ? it->second : c.threshold_on;
    if (!std::isfinite(e.score) || e.score >= on + c.low_confidence_margin) continue;
    out.push_back(make("low_confidence", "warning", e.onset, e.offset,
                       fmt::format("'{}' at {:.2f}-{:.2f} s has score {:.2f}, within {:.2f} of its threshold "
                                   "{:.2f}: listen to confirm it",
                                   e.label, e.onset, e.offset, e.score, c.low_confidence_margin, on)));
  }
}

void uncertain_stretches(const FileResult& r, const ReviewConfig& c, std::vector<Anomaly>& out) {
  const auto& s = r.scores;
  std::vector<float> best(size_t(s.frames));
  for (int f = 0; f < s.frames; ++f) best[size_t(f)] = best_score(s, f);
  for (const Run& run : runs_where(s.frames, [&](int f) {
         return best[size_t(f)] >= c.uncertain_low && best[size_t(f)] < c.uncertain_high;
       })) {
    const double t0 = run.begin * s.hop_s, t1 = run.end * s.hop_s;
    if (t1 - t0 < c.uncertain_min_s) continue;
    out.push_back(make("low_confidence", "info", t0, t1,
                       fmt::format("{:.2f}-{:.2f} s: the best class score stays between {:.2f} and {:.2f} for "
                                   "{:.1f} s; something is there but no class fits well",
                                   t0, t1, c.uncertain_low, c.uncertain_high, t1 - t0)));
  }
}

void flicker(const FileResult& r, const ReviewConfig& c, std::vector<Anomaly>& out) {
  std::map<std::string, std::vector<const Event*>> by_class;
  for (const auto& e : r.events)
    if (e.kind == EventKind::event) by_class[e.label].push_back(&e);
  for (auto& [label, events] : by_class) {
    std::sort(events.begin(), events.end(), [](const Event* a, const Event* b) { return a->onset < b->onset; });
    // Clusters of consecutive short events with small gaps.
    size_t i = 0;
    while (i < events.size()) {
      if (events[i]->offset - events[i]->onset >= c.flicker_max_event_s) {
        ++i;
        continue;
      }
      size_t j = i + 1;
      while (j < events.size() && events[j]->offset - events[j]->onset < c.flicker_max_event_s &&
             events[j]->onset - events[j - 1]->offset <= c.flicker_max_gap_s)
        ++j;
      const size_t n = j - i;
      if (n >= size_t(std::max(c.flicker_min_events, 1))) {
        const double t0 = events[i]->onset, t1 = events[j - 1]->offset;
        out.push_back(make("flicker", "warning", t0, t1,
                           fmt::format("'{}' switches on and off {} times between {:.2f} and {:.2f} s (each event "
                                       "under {:.1f} s); probably one longer sound near the threshold: consider a "
                                       "longer median filter or merge gap for this class",
                                       label, n, t0, t1, c.flicker_max_event_s)));
      }
      i = j;
    }
  }
}

void overlaps(const FileResult& r, const ReviewConfig& c, std::vector<Anomaly>& out) {
  struct Pair {
    double first = 0, last = 0, total = 0;
    int count = 0;
  };
  std::map<std::pair<std::string, std::string>, Pair> pairs;
  std::vector<const Event*> ev;
  for (const auto& e : r.events)
    if (e.kind == EventKind::event) ev.push_back(&e);  // a sound over a background is the normal case
  std::sort(ev.begin(), ev.end(), [](const Event* a, const Event* b) { return a->onset < b->onset; });
  for (size_t i = 0; i < ev.size(); ++i) {
    for (size_t j = i + 1; j < ev.size() && ev[j]->onset < ev[i]->offset; ++j) {
      if (ev[i]->label == ev[j]->label) continue;
      const double a = ev[j]->onset, b = std::min(ev[i]->offset, ev[j]->offset);
      if (b - a < c.overlap_min_s) continue;
      auto key = std::minmax(ev[i]->label, ev[j]->label);
      auto& p = pairs[{key.first, key.second}];
      if (p.count == 0) p.first = a;
      p.first = std::min(p.first, a);
      p.last = std::max(p.last, b);
      p.total += b - a;
      ++p.count;
    }
  }
  for (const auto& [key, p] : pairs)
    out.push_back(make("overlap", "info", p.first, p.last,
                       fmt::format("'{}' and '{}' overlap {} time(s), {:.1f} s in all, between {:.2f} and {:.2f} s: "
                                   "two sounds at once, or one sound the model gives two names",
                                   key.first, key.second, p.count, p.total, p.first, p.last)));
}

void background_only(const FileResult& r, const ReviewConfig& c, std::vector<Anomaly>& out) {
  const double len = file_length(r);
  if (len <= 0) return;
  std::vector<std::pair<double, double>> spans;
  for (const auto& e : r.events)
    if (e.kind == EventKind::event) spans.emplace_back(e.onset, e.offset);
  std::sort(spans.begin(), spans.end());
  double covered_to = 0;
  auto gap = [&](double t0, double t1) {
    if (t1 - t0 < c.background_min_s) return;
    out.push_back(make("background_only", "info", t0, t1,
                       fmt::format("no event from {:.1f} to {:.1f} s ({:.1f} s): only background, or sounds below "
                                   "the thresholds",
                                   t0, t1, t1 - t0)));
  };
  for (const auto& [a, b] : spans) {
    if (a > covered_to) gap(covered_to, std::min(a, len));
    covered_to = std::max(covered_to, b);
  }
  if (len > covered_to) gap(covered_to, len);
}

void unknown_sounds(const FileResult& r, const ReviewConfig& c, std::vector<Anomaly>& out) {
  const auto& sp = r.spectrogram;
  if (sp.bins <= 0 || sp.columns <= 0 || sp.seconds_per_column <= 0 ||
      sp.values.size() < size_t(sp.bins) * size_t(sp.columns))
    return;
  const auto& s = r.scores;
  std::vector<double> level(size_t(sp.columns), 0.0);
  for (int b = 0; b < sp.bins; ++b)
    for (int col = 0; col < sp.columns; ++col) {
      const float v = sp.values[size_t(b) * size_t(sp.columns) + size_t(col)];
      level[size_t(col)] += std::isfinite(v) ? v : 0.0;
    }
  for (auto& l : level) l /= sp.bins;
  std::vector<double> sorted = level;
  std::nth_element(sorted.begin(), sorted.begin() + long(sorted.size() / 2), sorted.end());
  const double median = sorted[sorted.size() / 2];
  // The features are (ln(mel power) + 4.5) / 5, so one unit is 50 / ln(10) = 21.7 dB.
  const double db_per_unit = 50.0 / std::log(10.0);
  std::vector<float> best(size_t(std::max(0, s.frames)), -1.0f);
  auto loud_unclassified = [&](int col) {
    if ((level[size_t(col)] - median) * db_per_unit < c.unknown_energy_db) return false;
    const double t = (col + 0.5) * sp.seconds_per_column;
    const int f = std::min(int(t / s.hop_s), s.frames - 1);
    // Many thumbnail columns share a score frame: each frame's best score is found once.
    float& b = best[size_t(f)];
    if (b < 0) b = best_score(s, f);
    return b < c.unknown_max_score;
  };
  for (const Run& run : runs_where(sp.columns, loud_unclassified)) {
    const double t0 = run.begin * sp.seconds_per_column, t1 = run.end * sp.seconds_per_column;
    if (t1 - t0 < c.unknown_min_s) continue;
    out.push_back(make("unknown_sound", "warning", t0, t1,
                       fmt::format("{:.2f}-{:.2f} s is at least {:.0f} dB louder than the file's median level but no "
                                   "class scores {:.2f} or more: a sound the model has no good class for",
                                   t0, t1, c.unknown_energy_db, c.unknown_max_score)));
  }
}

}  // namespace

ReviewConfig ReviewConfig::from(const EventsConfig& events) {
  ReviewConfig c;
  c.threshold_on = events.threshold_on;
  for (const auto& [label, t] : events.per_class)
    if (t.on >= 0) c.per_class_on[label] = t.on;
  return c;
}

void ReviewConfig::validate() const {
  auto check = [](bool ok, const char* field, const char* what) {
    if (!ok) throw Error(fmt::format("review.{}: {}", field, what));
  };
  check(threshold_on > 0 && threshold_on <= 1, "threshold_on", "must be in (0, 1]");
  check(low_confidence_margin >= 0 && low_confidence_margin <= 1, "low_confidence_margin", "must be in [0, 1]");
  check(uncertain_low >= 0 && uncertain_low < uncertain_high && uncertain_high <= 1, "uncertain_low",
        "needs 0 <= uncertain_low < uncertain_high <= 1");
  check(uncertain_min_s > 0, "uncertain_min_s", "must be positive (seconds)");
  check(flicker_min_events >= 2, "flicker_min_events", "must be at least 2");
  check(flicker_max_event_s > 0, "flicker_max_event_s", "must be positive (seconds)");
  check(flicker_max_gap_s >= 0, "flicker_max_gap_s", "must be 0 or more (seconds)");
  check(overlap_min_s >= 0, "overlap_min_s", "must be 0 or more (seconds)");
  check(background_min_s > 0, "background_min_s", "must be positive (seconds)");
  check(std::isfinite(unknown_energy_db), "unknown_energy_db", "must be a number of dB");
  check(unknown_max_score > 0 && unknown_max_score <= 1, "unknown_max_score", "must be in (0, 1]");
  check(unknown_min_s > 0, "unknown_min_s", "must be positive (seconds)");
  check(max_per_kind >= 1, "max_per_kind", "must be at least 1");
}

std::vector<Anomaly> review_detections(const FileResult& result, const ReviewConfig& config) {
  config.validate();
  std::vector<Anomaly> found;
  if (!result.ok()) return found;
  low_confidence_events(result, config, found);
  flicker(result, config, found);
  overlaps(result, config, found);
  background_only(result, config, found);
  if (scores_usable(result.scores)) {
    uncertain_stretches(result, config, found);
    unknown_sounds(result, config, found);
  }
  std::stable_sort(found.begin(), found.end(), [](const Anomaly& a, const Anomaly& b) { return a.start_s < b.start_s; });

  // Cap each kind, keeping the earliest, and say how many were left out.
  std::map<std::string, int> seen;
  std::vector<Anomaly> out;
  for (auto& a : found) {
    const int n = ++seen[a.kind];
    if (n <= config.max_per_kind) out.push_back(std::move(a));
  }
  for (const auto& [kind, n] : seen)
    if (n > config.max_per_kind)
      out.push_back(make(kind.c_str(), "info", 0, file_length(result),
                         fmt::format("{} further '{}' findings are not listed", n - config.max_per_kind, kind)));
  return out;
}

}  // namespace earmark::detect
