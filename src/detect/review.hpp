// detect: a second look at a file's detections, listing what a person should double-check.
// Works on a finished FileResult (events, frame scores, spectrogram); adds nothing to the
// events themselves.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"

namespace earmark::detect {

struct ReviewConfig {
  // The on-threshold the events were found with (EventsConfig::threshold_on), and per-class
  // overrides by label (EventsConfig::per_class[..].on where set).
  double threshold_on = 0.30;
  std::map<std::string, double> per_class_on;

  // low_confidence (events): confidence below the class's on-threshold + this margin; such
  // an event would vanish with a slightly stricter threshold.
  double low_confidence_margin = 0.10;
  // low_confidence (frames): the best class score stays within [uncertain_low, uncertain_high)
  // for at least uncertain_min_s: something is there but no class is convincing.
  double uncertain_low = 0.20;
  double uncertain_high = 0.40;
  double uncertain_min_s = 5.0;

  // flicker: at least flicker_min_events events of one class, each shorter than
  // flicker_max_event_s, one after another with gaps of at most flicker_max_gap_s.
  int flicker_min_events = 5;
  double flicker_max_event_s = 1.0;
  double flicker_max_gap_s = 5.0;

  // overlap: events of two different classes sharing at least overlap_min_s (one finding per
  // pair of classes, spanning their first to last overlap).
  double overlap_min_s = 0.5;

  // background_only: no event for at least this long (file start and end included).
  double background_min_s = 30.0;

  // unknown_sound: spectrogram columns whose mean level is at least unknown_energy_db above
  // the file's median column level while the best class score is below unknown_max_score,
  // for at least unknown_min_s.
  double unknown_energy_db = 10.0;
  double unknown_max_score = 0.20;
  double unknown_min_s = 1.0;

  // At most this many findings of each kind are listed; a last one says how many were left out.
  int max_per_kind = 20;

  // Takes threshold_on and per-class on-thresholds from the events config.
  static ReviewConfig from(const EventsConfig& events);
  // Throws earmark::Error naming the field ("review.<field>") and what to do.
  void validate() const;
};

// Detection-side anomalies of one file (kinds low_confidence, flicker, overlap,
// background_only, unknown_sound), sorted by start time, then one summary per kind that hit
// max_per_kind (spanning the whole file). A failed file gives none. Needs only
// what is present: without frame scores the frame-based checks are skipped, without a
// spectrogram so is unknown_sound.
std::vector<Anomaly> review_detections(const FileResult& result, const ReviewConfig& config = {});

}  // namespace earmark::detect
