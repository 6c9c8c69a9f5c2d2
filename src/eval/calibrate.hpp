// eval: making a false-alarm calibration table (detect/calibration.hpp) from audio.
//
//   ThresholdCalibrator: fed the score grids of background-only audio (and, for the recall
//   check, of labelled event clips), gives each class's on-threshold for a target number of
//   false alarms per hour.
//   ConfidenceFitter: fed a detector's events and the reference events of the same files, fits
//   the map from peak score to the probability that a detection is right.
// `earmark calibrate` drives both; docs/false-alarms.md describes the method.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "detect/calibration.hpp"
#include "earmark/calibrate.hpp"
#include "earmark/config.hpp"
#include "earmark/earmark.hpp"
#include "eval/label_map.hpp"

namespace earmark::eval {

using CalibrateOptions = earmark::CalibrationTargets;  // earmark/calibrate.hpp

class ThresholdCalibrator {
 public:
  // `events`: the detector's events settings without any calibration (thresholds, median,
  // background rule); the false alarms are counted as that detector would fire.
  ThresholdCalibrator(EventsConfig events, CalibrateOptions options);

  // One background-only recording's score grid (after the label config).
  void add_background(const FrameScores& scores, double duration_s);
  // One event clip's score grid and the labels its sound should get (any of them counts).
  void add_event_clip(const FrameScores& scores, double duration_s, const std::vector<std::string>& labels);

  double hours() const { return seconds_ / 3600.0; }
  size_t clips() const { return clips_; }
  // The thresholds (Calibration::classes); the other fields are the caller's to fill.
  detect::Calibration finish() const;

 private:
  EventsConfig events_;
  CalibrateOptions options_;
  double seconds_ = 0;
  size_t clips_ = 0;
  std::map<std::string, std::vector<float>> peaks_;       // false-alarm peaks per label
  std::map<std::string, std::vector<float>> clip_peaks_;  // labelled clips' peaks per label
};

// Events judged against references: an event is right when it overlaps a reference event of a
// dataset class that its (reported) label maps to. Events whose label the map does not list
// cannot be judged and are skipped; so are background segments.
struct JudgedEvent {
  std::string label;
  float score = 0;
  int right = 0;
};
std::vector<JudgedEvent> judge_events(const std::vector<Event>& estimated, const std::vector<Event>& reference,
                                      const LabelMap& map);

// Fits Calibration::shared / per_class from judged events (Platt scaling; per class the shared
// slope, the intercept pulled toward the shared one by options.prior_count), and ece_fit.
void fit_confidence(const std::vector<JudgedEvent>& judged, const CalibrateOptions& options, detect::Calibration& cal);

}  // namespace earmark::eval
