// eval: per-class tuning of the event detector's thresholds and median filter on labelled data.
//
// The network runs once per file (by the caller); what the events stage needs stays in memory
// and events are found again from it for every candidate setting, so a search costs
// milliseconds per setting instead of a network pass. `earmark tune` finds them with the whole
// events stage of the detector (Detector::find_events: boundaries from the signal, salience,
// backgrounds, roll-up, bursts, calibration), so the settings are fitted to what detect reports;
// without a FindEvents, detect::find_events on the score grids alone.
//
// Every combination of
//   on-threshold in `thresholds`, off-threshold = on x off_ratio, median filter of `median_frames`
// is given to every class being tuned at once (the other classes keep the base setting), the
// events of the tune split are found, and each class is scored by its own event-based F1
// (sed_eval rules, `event_config` collars); the rest of the events configuration (min duration,
// merge gap) is the base's. Per class the best setting wins; among equally good ones the
// shortest median filter, then the middle one of the tied on-thresholds (a threshold in the
// middle of a plateau is the one least likely to sit on an edge of it in new data). A class
// keeps the base setting when it has fewer than min_events reference events in the tune split,
// when no setting finds any of them, or when no setting beats the base. Classes interact in the
// whole stage (one name per sound, bursts), so a second pass (`refine`) goes through the classes
// again, each trying every setting (and its base one) with the others at their chosen ones, and
// keeps a change only where the event-based F1 over all classes (micro) rises and the class's
// own F1 stays at least at its base.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"
#include "eval/metrics.hpp"
#include "eval/tsv.hpp"

namespace earmark::eval {

struct TuneConfig {
  std::vector<double> thresholds = default_thresholds();  // on-threshold candidates, each in (0, 1]
  double off_ratio = 0.5;                                  // off = on x this, in (0, 1]
  std::vector<int> median_frames = {1, 3, 5, 7};           // odd frame counts >= 1
  EventBasedConfig event_config;                           // how a detection counts as correct
  // Classes with fewer reference events in the tune split keep the base setting: a threshold
  // fitted on one or two events fits chance and is usually worse on new data.
  int min_events = 5;
  // A second pass in which each class tries every setting again with the others at theirs,
  // keeping a change only if the F1 over all classes rises and its own stays at least at its
  // base (classes interact in the whole events stage). Costs (classes x settings) passes over the files instead of (settings).
  bool refine = true;
  // Files are found on this many threads at once (the events stage of one detector is const).
  int threads = 1;
  // Called before each pass over the files (done of total passes); may be empty.
  std::function<void(size_t done, size_t total)> progress;

  // 0.05, 0.10, ..., 0.90.
  static std::vector<double> default_thresholds();
  // Throws earmark::Error naming the bad setting.
  void validate() const;
};

// One file: its name as in the reference, its score grid after the label configuration (one
// column per class that can be reported), and its audio length.
struct TuneFile {
  std::string name;
  FrameScores scores;
  double duration_s = 0;
};

struct ClassTuning {
  std::string label;
  long n_ref = 0;          // reference events of the class in the tune split
  bool tuned = false;      // false: the base setting is kept (see `note`)
  ClassThreshold setting;  // the chosen on/off/median_s (tuned only)
  double f1_base = 0;      // event-based F1 of the class on the tune split, base setting (NaN as 0)
  double f1_tuned = 0;     // ... chosen setting (= f1_base when not tuned)
  std::string note;        // why not tuned
};

struct TuneResult {
  EventsConfig events;  // the base with per_class entries for the tuned classes
  std::vector<ClassTuning> classes;  // in score-column order
};

// Seeded shuffle of file indices 0..n-1, then the first round(holdout x n) are held out (at
// least one when holdout > 0 and n >= 2; never all, one file is always left to tune on). Both
// lists come back sorted. The shuffle is our own Fisher-Yates on std::mt19937_64 so the split
// is the same with every standard library.
struct Split {
  std::vector<size_t> tune, holdout;
};
Split split_files(size_t n, double holdout, uint64_t seed);

// Tunes every score column of `files` (all grids must share labels and hop) against `ref`
// (reference events by file name; files absent from it have no events). Throws earmark::Error
// for inconsistent grids or a bad configuration.
// The events of files[i] under `events`.
using FindEvents = std::function<std::vector<Event>(size_t i, const EventsConfig& events)>;
TuneResult tune_events(const std::vector<TuneFile>& files, const EventTable& ref, const EventsConfig& base,
                       const TuneConfig& config, const FindEvents& find = {});

// Events of every file under `events` (file names as given): `find`, or detect::find_events on
// the score grids.
EventTable detect_all(const std::vector<TuneFile>& files, const EventsConfig& events, const FindEvents& find = {},
                      int threads = 1);

// The reference restricted to `files` (each registered, with or without events).
EventTable restrict_files(const EventTable& ref, const std::vector<TuneFile>& files);

}  // namespace earmark::eval
