// earmark/tune.hpp: per-class thresholds and median filter lengths fitted on labelled audio
// (`earmark tune`), written as a configuration that `earmark detect --config` takes.
//
// The files are scored once; a seeded share of them is held out, the rest tuned on (each
// class: the on-threshold and median length that maximise its event-based F1 on the tune split,
// kept only where they beat the base setting and the class has enough reference events), and
// the held-out files give a before/after check. See src/eval/tune.hpp for the search.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "earmark/config.hpp"

namespace earmark {

struct TuneOptions {
  std::vector<std::string> inputs;  // audio files or folders (searched recursively)
  std::string ref;                  // reference events, DCASE TSV (required)
  std::string map;                  // dataset class -> AudioSet labels (as for evaluate); empty: the
                                    // reference's labels must be AudioSet labels
  std::string out = "tuned.yaml";   // where the tuned configuration goes
  Config config;                    // the base configuration (model, frames, events)
  double holdout = 0.3;             // share of the files held out for the before/after check, [0, 0.9]
  uint64_t seed = 1;                // of the tune/held-out split
  std::vector<double> thresholds;   // on-thresholds to try; empty: 0.05, 0.10, ..., 0.90
  std::vector<int> medians;         // median lengths to try, frames (odd); empty: 1, 3, 5, 7
  double off_ratio = 0.5;           // off-threshold = on x this
  int min_events = 5;               // classes with fewer reference events in the tune split keep the base
  double collar = 0.2;              // event-based onset collar, s (as evaluate)
  double offset_ratio = 0.2;        // event-based offset collar: max(collar, this x length)
  // Messages for the user (files left out, classes that cannot be reported); may be empty.
  std::function<void(const std::string&)> log;
  // Called before each file is scored (done of total); may be empty.
  std::function<void(size_t done, size_t total)> progress;
  // Called before each pass of the events stage over the tune split while settings are searched
  // (done of total); may be empty.
  std::function<void(size_t done, size_t total)> search_progress;

  // Throws earmark::Error naming the option and its allowed range.
  void validate() const;
};

struct TuneSummary {
  std::string text;          // the per-class table and the held-out check, as `earmark tune` prints them
  Config tuned;              // what was written to options.out
  size_t files = 0, tune_files = 0, held_out_files = 0;
  size_t classes = 0, tuned_classes = 0;
  double event_f1_before = 0, event_f1_after = 0;  // macro, on the held-out files (the tune split without any)
};

// Scores the files, tunes, writes options.out. Throws earmark::Error when nothing can be scored,
// the reference lists none of the files or none of its labels can be reported.
TuneSummary tune(const TuneOptions& options);

}  // namespace earmark
