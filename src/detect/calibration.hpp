// detect: false-alarm calibration (docs/false-alarms.md).
//
// Two things measured once per model and kept in one JSON table:
//  - per-class on-thresholds: on audio with no events (a user's room tone, ambiences, noise
//    colours, hum, silence) each class's detector is run at a low threshold; the peaks of what it
//    fires on there are its false alarms. A class's on-threshold is raised just above the peak
//    that would let it exceed `target_per_hour` false alarms per hour of that audio, unless the
//    labelled event clips (when given) show that more than 1 - `min_recall` of the class's own
//    sounds would then be lost (the recall check caps it). Steady stretches (background
//    segments, detect/background.hpp) are not false alarms and do not raise thresholds.
//  - confidence: a map from a detection's peak score to the probability that it is right,
//    p = sigmoid(a * logit(score) + b), fitted (Platt scaling) on detections judged against
//    reference annotations; per class, b is fitted with the shared slope and pulled toward the
//    shared b by `prior_count` pseudo-detections, so a rare class follows the shared curve.
// `earmark calibrate` writes the table; the detector reads it (events.calibration; a table made
// for mn04_as is built in).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"

namespace earmark::detect {

struct ConfidenceCurve {
  double a = 1.0, b = 0.0;
  int count = 0;  // detections it was fitted on
  double operator()(double score) const;
};

struct ClassThresholdCal {
  double on = -1;            // raised on-threshold (-1: the default stands)
  double background_peak = 0;  // highest false-alarm peak on the calibration audio
  int false_alarms = 0;      // events at the default threshold on the calibration audio
  bool capped = false;       // the recall check held the threshold down
  double recall = -1;        // share of the class's labelled clips still detected (-1: none given)
};

struct Calibration {
  std::string origin;  // path of the table, or "built-in (mn04_as)"
  std::string model, checkpoint_sha256, created, earmark_version;
  // What it was measured on, in words ("2.1 h: 12 files from /data/room, synthetic noise ...").
  std::string provenance;
  double hours = 0;             // of calibration audio
  double target_per_hour = 1;   // false alarms per class per hour the thresholds allow
  double default_on = 0.3;      // the threshold_on the table was measured against
  std::map<std::string, ClassThresholdCal> classes;  // by label
  bool has_confidence = false;
  ConfidenceCurve shared;
  std::map<std::string, ConfidenceCurve> per_class;
  double ece_fit = -1;  // expected calibration error on the data it was fitted on

  static Calibration parse(const std::string& json_text, const std::string& origin);
  static Calibration load(const std::string& path);
  std::string to_json() const;
  // The calibrated confidence of a detection of `label` with peak score `score`: the score itself
  // without a confidence map.
  float confidence(const std::string& label, float score) const;
  // Number of classes whose threshold the table raises.
  size_t raised() const;
  // One sentence for reports and logs.
  std::string summary() const;
};

// The table built into the library for a checkpoint (by its sha256); nullptr if none.
const Calibration* builtin_calibration(const std::string& checkpoint_sha256);

// The calibration events.calibration selects for a checkpoint: the built-in table (""), none
// ("none", or no built-in table for this checkpoint), or the table at that path (loaded).
std::optional<Calibration> select_calibration(const std::string& setting, const std::string& checkpoint_sha256);

// Raises events.per_class on-thresholds (and off-thresholds with them, keeping the hysteresis
// gap threshold_on - threshold_off) by the table, for classes the user did not set, never
// below the configured threshold_on. Labels not in `labels` are ignored.
void apply_thresholds(const Calibration& cal, const std::vector<std::string>& labels, EventsConfig& events);

// Platt scaling: the (a, b) minimising the log-loss of sigmoid(a * logit(score) + b) against
// `right`; with `fixed_a` only b is fitted. Scores are clamped to [1e-4, 1 - 1e-4].
ConfidenceCurve fit_platt(const std::vector<float>& scores, const std::vector<int>& right, const ConfidenceCurve* fixed_a = nullptr);

// Expected calibration error over `bins` equal-width bins of confidence.
double expected_calibration_error(const std::vector<float>& confidence, const std::vector<int>& right, int bins = 10);

}  // namespace earmark::detect
