// eval: false-alarm thresholds and the confidence map, measured on audio.
#include "eval/calibrate.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "detect/background.hpp"
#include "detect/events.hpp"

namespace earmark {

void CalibrationTargets::validate() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw Error("calibrate: " + what);
  };
  need(std::isfinite(target_per_hour) && target_per_hour >= 0, "--target-per-hour must be a number of false alarms >= 0");
  need(std::isfinite(margin) && margin >= 0 && margin <= 0.5, "the margin must be between 0 and 0.5");
  need(std::isfinite(max_on) && max_on > 0 && max_on <= 1, "--max-threshold must be a score above 0 and at most 1");
  need(std::isfinite(min_recall) && min_recall >= 0 && min_recall <= 1, "--min-recall must be between 0 and 1");
  need(min_clips >= 1, "the recall check needs at least 1 clip per class");
  need(min_false_alarms >= 0, "--min-false-alarms must be a count >= 0");
  need(std::isfinite(prior_count) && prior_count >= 0, "the prior count must be >= 0");
}

}  // namespace earmark

namespace earmark::eval {

ThresholdCalibrator::ThresholdCalibrator(EventsConfig events, CalibrateOptions options)
    : events_(std::move(events)), options_(options) {
  options_.validate();
}

void ThresholdCalibrator::add_background(const FrameScores& scores, double duration_s) {
  seconds_ += duration_s;
  // What the detector would report as background segments there is not a false alarm.
  std::vector<Event> all = detect::mark_backgrounds(detect::find_events(scores, events_, duration_s),
                                                    detect::BackgroundParams::from(events_), &scores);
  std::map<std::string, std::vector<std::pair<double, double>>> steady;
  for (const auto& e : all)
    if (e.kind == EventKind::background) steady[e.label].emplace_back(e.onset, e.offset);
  // Every run above the off-threshold is a candidate: its peak is the lowest on-threshold at
  // which it would fire.
  EventsConfig low = events_;
  low.threshold_on = events_.threshold_off;
  low.per_class.clear();
  for (const auto& e : detect::find_events(scores, low, duration_s)) {
    bool in_background = false;
    if (const auto it = steady.find(e.label); it != steady.end())
      for (const auto& [a, b] : it->second) in_background = in_background || (e.onset < b && e.offset > a);
    if (!in_background) peaks_[e.label].push_back(e.score);
  }
}

void ThresholdCalibrator::add_event_clip(const FrameScores& scores, double duration_s,
                                         const std::vector<std::string>& labels) {
  ++clips_;
  EventsConfig low = events_;
  low.threshold_on = events_.threshold_off;
  low.per_class.clear();
  low.background = false;
  std::map<std::string, float> best;
  for (const auto& e : detect::find_events(scores, low, duration_s)) best[e.label] = std::max(best[e.label], e.score);
  for (const auto& l : labels) {
    const auto it = best.find(l);
    clip_peaks_[l].push_back(it != best.end() ? it->second : 0.0f);
  }
}

detect::Calibration ThresholdCalibrator::finish() const {
  detect::Calibration cal;
  cal.hours = hours();
  cal.target_per_hour = options_.target_per_hour;
  cal.default_on = events_.threshold_on;
  // false alarms allowed per class over all the calibration audio
  const auto allowed = size_t(std::floor(options_.target_per_hour * hours() + 1e-9));
  for (auto [label, peaks] : peaks_) {
    std::sort(peaks.begin(), peaks.end(), std::greater<>());
    detect::ClassThresholdCal k;
    k.background_peak = peaks.front();
    k.false_alarms = int(std::count_if(peaks.begin(), peaks.end(), [&](float p) { return p >= events_.threshold_on; }));
    if (peaks.size() <= allowed || k.false_alarms < options_.min_false_alarms) continue;
    double on = std::min(options_.max_on, double(peaks[allowed]) + options_.margin);
    if (!(on > events_.threshold_on)) continue;
    if (const auto it = clip_peaks_.find(label); it != clip_peaks_.end() && int(it->second.size()) >= options_.min_clips) {
      std::vector<float> c = it->second;
      std::sort(c.begin(), c.end());
      auto recall_at = [&](double t) {
        return double(std::count_if(c.begin(), c.end(), [&](float p) { return p >= t; })) / double(c.size());
      };
      // The highest threshold that keeps min_recall of the clips: the clip peak at that quantile.
      const auto keep = size_t(std::ceil(options_.min_recall * double(c.size())));
      const double cap = keep == 0 ? 1.0 : double(c[c.size() - keep]);
      if (on > cap) {
        on = std::max(events_.threshold_on, cap);
        k.capped = true;
      }
      k.recall = recall_at(on);
      if (!(on > events_.threshold_on)) {
        k.on = -1;
        cal.classes.emplace(label, k);  // listed: it fires on backgrounds, but recall wins
        continue;
      }
    }
    k.on = on;
    cal.classes.emplace(label, k);
  }
  return cal;
}

std::vector<JudgedEvent> judge_events(const std::vector<Event>& estimated, const std::vector<Event>& reference,
                                      const LabelMap& map) {
  std::vector<JudgedEvent> out;
  for (const auto& e : estimated) {
    if (e.kind == EventKind::background) continue;
    // By the reported label only: that is the name every list shows and every metric scores.
    const std::vector<std::string> classes = map.dataset_labels(e.label);
    if (classes.empty()) continue;
    int right = 0;
    for (const auto& r : reference)
      if (r.onset < e.offset && r.offset > e.onset && std::find(classes.begin(), classes.end(), r.label) != classes.end())
        right = 1;
    out.push_back({e.label, e.score, right});
  }
  return out;
}

void fit_confidence(const std::vector<JudgedEvent>& judged, const CalibrateOptions& options, detect::Calibration& cal) {
  if (judged.empty())
    throw Error("calibrate: no detection could be judged (none has a label the map lists); check --map and --ref");
  std::vector<float> scores;
  std::vector<int> right;
  std::map<std::string, std::pair<std::vector<float>, std::vector<int>>> by_class;
  for (const auto& j : judged) {
    scores.push_back(j.score);
    right.push_back(j.right);
    by_class[j.label].first.push_back(j.score);
    by_class[j.label].second.push_back(j.right);
  }
  cal.has_confidence = true;
  cal.shared = detect::fit_platt(scores, right);
  cal.per_class.clear();
  for (const auto& [label, sr] : by_class) {
    detect::ConfidenceCurve c = detect::fit_platt(sr.first, sr.second, &cal.shared);
    const double n = double(sr.first.size());
    c.b = (n * c.b + options.prior_count * cal.shared.b) / (n + options.prior_count);
    c.count = int(n);
    cal.per_class[label] = c;
  }
  std::vector<float> conf;
  for (const auto& j : judged) conf.push_back(cal.confidence(j.label, j.score));
  cal.ece_fit = detect::expected_calibration_error(conf, right);
}

}  // namespace earmark::eval
