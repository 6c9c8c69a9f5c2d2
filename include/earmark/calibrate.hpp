// earmark/calibrate.hpp: per-class thresholds for a target false-alarm rate, measured on
// background-only audio (a user's room tone is the best set), and optionally the confidence
// map, fitted on labelled soundscapes (`earmark calibrate`). Writes the table that
// `earmark detect --calibration` (events.calibration) uses; docs/false-alarms.md has the method.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "earmark/config.hpp"

namespace earmark {

// What a calibration aims at (also what the measuring in src/eval/calibrate.hpp takes).
struct CalibrationTargets {
  double target_per_hour = 1.0;  // false alarms allowed per class per hour of background
  double margin = 0.02;          // a raised threshold sits this far above the highest peak let out
  // A class is raised only if it fired at least this often at its default threshold: one blip
  // in a quarter of an hour says little about a class, and raising it on one blip costs recall.
  int min_false_alarms = 2;
  double max_on = 0.95;      // never raise a threshold above this
  double min_recall = 0.8;   // recall check: keep at least this share of a class's clips
  int min_clips = 3;         // ... judged only with at least this many clips of the class
  double prior_count = 20;   // confidence map: pseudo-detections pulling a class to the shared curve
  // Throws earmark::Error naming the option.
  void validate() const;
};

struct CalibrateOptions {
  std::vector<std::string> backgrounds;  // recordings with no events in them (files or folders)
  bool synthetic = false;                // add built-in backgrounds: noise colours and hum at three levels, silence
  // Recall check: labelled event clips, a CSV with file and audioset_labels (';'-separated)
  // columns, paths relative to it; clips_file keeps only the rows listed there (one per line).
  std::string events_csv, clips_file;
  // Confidence map: reference events (DCASE TSV) of the `scapes` files, and the dataset class ->
  // AudioSet label map (as for evaluate); all three together or none.
  std::string ref, map;
  std::vector<std::string> scapes;
  std::string judged_csv;               // also write the judged detections (label, score, confidence, right)
  std::string out = "calibration.json";  // where the table goes
  Config config;                         // the detector to calibrate (its own calibration is ignored)
  CalibrationTargets targets;
  // Messages for the user (files left out); may be empty.
  std::function<void(const std::string&)> log;
  // Called before each file of a stage ("backgrounds", "event clips", ...) is scored; may be empty.
  std::function<void(const std::string& stage, size_t done, size_t total)> progress;

  // Throws earmark::Error naming the option and its allowed range.
  void validate() const;
};

struct CalibrateSummary {
  std::string text;          // what `earmark calibrate` prints: hours, the classes raised, the confidence map
  double hours = 0;          // of background audio
  size_t raised = 0;         // class thresholds raised
  bool has_confidence = false;
  double ece_fit = 0;        // the confidence map's calibration error on its own data
};

// Scores the backgrounds (and clips, and soundscapes), writes options.out. Throws
// earmark::Error when nothing can be read or an input is malformed.
CalibrateSummary calibrate(const CalibrateOptions& options);

}  // namespace earmark
