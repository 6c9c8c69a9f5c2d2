// earmark/evaluate.hpp: scoring detections against a labelled dataset (`earmark eval`).
//
// The reference is a DCASE event list (TSV: filename, onset, offset, event_label; files without
// events as filename-only rows or in a durations TSV). The system output is an event list in the
// same format and/or a folder of frame score tables (<stem>.scores.tsv, as `earmark detect
// --scores` writes them). Metrics: sed_eval's event-based (onset collar, offset collar
// max(collar, ratio x length), optimal or greedy pairing) and segment-based ones, and, with
// frame scores, PSDS1 and PSDS2 (DCASE 2021 scenarios). A label map turns AudioSet labels into
// the dataset's classes (YAML, CSV dataset_label,audioset_label, or a CSV with columns class
// and audioset_labels like sounds/events.csv).
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace earmark {

struct EvaluateOptions {
  std::string ref;              // reference event list (required)
  std::string est;              // estimated event list
  std::string scores;           // folder of frame score tables (enables PSDS)
  std::string durations;        // TSV filename, duration: files listed without events are event-free
  std::string map;              // dataset class -> AudioSet labels
  std::string audioset_labels;  // class_labels_indices.csv to check the map's AudioSet names against
  std::string json_out;         // write every number as JSON here (empty: not written)
  double collar = 0.2;          // event-based onset collar, s
  double offset_ratio = 0.2;    // event-based offset collar: max(collar, this x reference length)
  double segment = 1.0;         // segment length of the segment-based metrics, s
  double threshold = 0.5;       // with scores and no est: frame scores at or above this make events
  bool onset_only = false;      // event-based: ignore offsets
  std::string matching = "optimal";  // or "greedy"
  std::string psds_thresholds = "50";  // a count n of thresholds (2k+1)/(2n), or "exact"

  // Throws earmark::Error naming the option and its allowed range.
  void validate() const;
};

struct Evaluation {
  std::string text;                // the tables, as `earmark eval` prints them
  std::string json;                // every number (per class, micro, macro, PSDS ROC)
  std::vector<std::string> notes;  // for the user: e.g. estimated labels the map does not list
  size_t files = 0;
  double event_f1 = NAN, segment_f1 = NAN;  // micro-averaged
  double psds1 = NAN, psds2 = NAN;          // NaN without frame scores
};

// Reads the inputs, scores, writes options.json_out if set. Throws earmark::Error naming the
// file (and line) for unreadable or inconsistent inputs.
Evaluation evaluate(const EvaluateOptions& options);

}  // namespace earmark
