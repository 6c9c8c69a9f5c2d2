#include "eval/tune.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <random>
#include <string>

#include <fmt/format.h>

#include "detect/events.hpp"

namespace earmark::eval {

namespace {

double or_zero(double v) { return std::isnan(v) ? 0.0 : v; }

// Label names are matched case-insensitively, as find_events does.
bool same_name(std::string a, std::string b) {
  auto low = [](std::string& s) {
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  };
  low(a), low(b);
  return a == b;
}

// Index in [0, bound) from raw 64-bit draws, by rejection so that every index is equally likely.
uint64_t draw_below(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  for (;;) {
    const uint64_t x = rng();
    if (x < limit) return x % bound;
  }
}

// One class's column of one file, as a grid of its own.
FrameScores column_of(const FrameScores& s, size_t c) {
  FrameScores out;
  out.hop_s = s.hop_s;
  out.frames = s.frames;
  out.labels = {s.labels[c]};
  out.values.resize(size_t(s.frames));
  for (int f = 0; f < s.frames; ++f) out.values[size_t(f)] = s.at(f, int(c));
  return out;
}

// Event-based F1 of `label` over the given single-class grids (NaN counts as 0: a setting that
// reports nothing has found nothing).
double class_f1(const std::vector<FrameScores>& cols, const std::vector<TuneFile>& files, const EventTable& ref_class,
                const EventsConfig& cfg, const EventBasedConfig& ecfg, const std::string& label) {
  EventTable est;
  for (size_t i = 0; i < files.size(); ++i) {
    est.add_file(files[i].name);
    for (auto& e : detect::find_events(cols[i], cfg, files[i].duration_s)) est.add(files[i].name, std::move(e));
  }
  const auto r = event_based(ref_class, est, ecfg, {label});
  for (const auto& c : r.classes)
    if (c.label == label) return or_zero(c.f1);
  return 0.0;
}

}  // namespace

std::vector<double> TuneConfig::default_thresholds() {
  std::vector<double> t;
  for (int k = 1; k <= 18; ++k) t.push_back(k * 0.05);
  return t;
}

void TuneConfig::validate() const {
  if (thresholds.empty()) throw Error("tune: give at least one on-threshold to try");
  for (double t : thresholds)
    if (!(t > 0.0 && t <= 1.0))
      throw Error(fmt::format("tune: on-threshold {} must be in (0, 1]", t));
  if (!(off_ratio > 0.0 && off_ratio <= 1.0))
    throw Error(fmt::format("tune: off ratio {} must be in (0, 1] (off = on x ratio)", off_ratio));
  if (median_frames.empty()) throw Error("tune: give at least one median filter length (frames)");
  for (int m : median_frames)
    if (m < 1 || m % 2 == 0 || m > 999)
      throw Error(fmt::format("tune: median filter length {} must be an odd number of frames from 1 to 999", m));
  if (min_events < 1) throw Error(fmt::format("tune: the minimum number of reference events {} must be at least 1", min_events));
  event_config.validate();
}

Split split_files(size_t n, double holdout, uint64_t seed) {
  if (!(holdout >= 0.0 && holdout < 1.0))
    throw Error(fmt::format("tune: held-out share {} must be at least 0 and below 1", holdout));
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[draw_below(rng, i)]);
  size_t k = size_t(std::lround(holdout * double(n)));
  if (holdout > 0 && n >= 2) k = std::max<size_t>(k, 1);
  if (n >= 1) k = std::min(k, n - 1);  // something must be left to tune on
  Split s;
  s.holdout.assign(order.begin(), order.begin() + long(k));
  s.tune.assign(order.begin() + long(k), order.end());
  std::sort(s.holdout.begin(), s.holdout.end());
  std::sort(s.tune.begin(), s.tune.end());
  return s;
}

EventTable restrict_files(const EventTable& ref, const std::vector<TuneFile>& files) {
  EventTable out;
  for (const auto& f : files) {
    out.add_file(f.name);
    for (const auto& e : ref.events(f.name)) out.add(f.name, e);
  }
  return out;
}

EventTable detect_all(const std::vector<TuneFile>& files, const EventsConfig& events) {
  EventTable out;
  for (const auto& f : files) {
    out.add_file(f.name);
    for (auto& e : detect::find_events(f.scores, events, f.duration_s)) out.add(f.name, std::move(e));
  }
  return out;
}

TuneResult tune_events(const std::vector<TuneFile>& files, const EventTable& ref, const EventsConfig& base,
                       const TuneConfig& config) {
  config.validate();
  TuneResult result;
  result.events = base;
  if (files.empty()) return result;
  const auto& labels = files[0].scores.labels;
  const double hop = files[0].scores.hop_s;
  for (const auto& f : files) {
    if (f.scores.labels != labels)
      throw Error(f.name + ": its score grid has other classes than " + files[0].name +
                  "'s; tune files scored with one configuration");
    if (std::abs(f.scores.hop_s - hop) > 1e-9)
      throw Error(f.name + ": its score grid has another frame hop than " + files[0].name +
                  "'s; tune files scored with one configuration");
    if (!(std::isfinite(f.duration_s) && f.duration_s >= 0))
      throw Error(f.name + ": the audio length must be a non-negative number of seconds");
  }

  for (size_t c = 0; c < labels.size(); ++c) {
    const std::string& label = labels[c];
    ClassTuning ct;
    ct.label = label;
    EventTable ref_class;
    for (const auto& f : files) {
      ref_class.add_file(f.name);
      for (const auto& e : ref.events(f.name))
        if (e.label == label) ref_class.add(f.name, e), ++ct.n_ref;
    }
    std::vector<FrameScores> cols;
    cols.reserve(files.size());
    for (const auto& f : files) cols.push_back(column_of(f.scores, c));

    // The base setting of this class, as find_events would resolve it.
    EventsConfig one = base;
    one.per_class.clear();
    one.max_classes_per_frame = 0;
    for (const auto& [name, t] : base.per_class)
      if (same_name(name, label)) one.per_class[label] = t;
    ct.f1_base = ct.n_ref > 0 ? class_f1(cols, files, ref_class, one, config.event_config, label) : 0.0;
    ct.f1_tuned = ct.f1_base;
    if (ct.n_ref < config.min_events) {
      ct.note = ct.n_ref == 0 ? "no reference events in the tune split"
                              : fmt::format("only {} reference event(s) in the tune split (minimum {})", ct.n_ref,
                                            config.min_events);
      result.classes.push_back(std::move(ct));
      continue;
    }

    // f1[m][t]: F1 with median_frames[m] and thresholds[t].
    std::vector<double> thr = config.thresholds;
    std::sort(thr.begin(), thr.end());
    thr.erase(std::unique(thr.begin(), thr.end()), thr.end());
    std::vector<int> med = config.median_frames;
    std::sort(med.begin(), med.end());
    med.erase(std::unique(med.begin(), med.end()), med.end());
    double best = -1;
    size_t best_m = 0, best_t = 0;
    for (size_t m = 0; m < med.size(); ++m) {
      std::vector<size_t> tied;
      double row_best = -1;
      for (size_t t = 0; t < thr.size(); ++t) {
        EventsConfig cfg = base;
        cfg.per_class.clear();
        cfg.max_classes_per_frame = 0;
        cfg.threshold_on = thr[t];
        cfg.threshold_off = thr[t] * config.off_ratio;
        cfg.median_s = med[m] * hop;
        const double f1 = class_f1(cols, files, ref_class, cfg, config.event_config, label);
        // Ties within rounding noise of the F1 arithmetic count as ties.
        if (f1 > row_best + 1e-12) row_best = f1, tied = {t};
        else if (f1 > row_best - 1e-12) tied.push_back(t);
      }
      // A longer filter must be strictly better to win over a shorter one.
      if (row_best > best + 1e-12) best = row_best, best_m = m, best_t = tied[(tied.size() - 1) / 2];
    }
    if (!(best > 0)) {
      ct.note = "no setting found any of its reference events";
    } else if (!(best > ct.f1_base + 1e-12)) {
      ct.note = "no setting beats the base setting";
    } else {
      ct.tuned = true;
      ct.f1_tuned = best;
      ct.setting.on = thr[best_t];
      ct.setting.off = thr[best_t] * config.off_ratio;
      ct.setting.median_s = med[best_m] * hop;
      // Keep a base min_duration_s override of this class.
      if (auto it = one.per_class.find(label); it != one.per_class.end())
        ct.setting.min_duration_s = it->second.min_duration_s;
      // Replace any differently-cased key of the base for this class.
      for (auto it = result.events.per_class.begin(); it != result.events.per_class.end();)
        it = same_name(it->first, label) ? result.events.per_class.erase(it) : std::next(it);
      result.events.per_class[label] = ct.setting;
    }
    result.classes.push_back(std::move(ct));
  }
  return result;
}

}  // namespace earmark::eval
