// detect: no label bursts. At a loud transient or a change of scene many unrelated classes rise
// together for a moment (66 labels within 0.64 s were seen at one moment of a 20-minute file:
// Accordion, Aircraft engine, Bass guitar, Blues, Boat, ...). One sound, or two or three at
// once, is what a listener hears there.
//
// The rule, on a file's events after the ontology roll-up (so related labels of one sound are
// already one event): events are grouped by onset (each group spans at most `window_s` from its
// first onset); in a group of more than `max_events`, the events are ranked by their support,
// the peak score over the class's own on-threshold (how clearly the class fired, on a scale
// that is the same for a class with a raised threshold and one without), ties by longer
// duration, and only the best `max_events` are kept. True overlaps (two or three sounds starting
// together) are within the limit and untouched. Background segments are never removed.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"

namespace earmark::detect {

struct BurstParams {
  int max_events = 4;   // 0: off
  double window_s = 0.64;
  double default_on = 0.3;
  std::map<std::string, double> on;  // per-class on-thresholds by label
  static BurstParams from(const EventsConfig& cfg);
};

// One sound, several names. Boundaries refined from the signal put every label the network
// gives one sound on the same 10 ms frames (a bleat as Bleat, "Domestic animals, pets", Crunch
// and Writing, all 36.845-37.965 s), whether or not the labels are related in the ontology.
// Events whose onsets and offsets both lie within `tolerance_s` of each other are one sound:
// among those whose support (score over the class's on-threshold) is at least `ratio` times
// the best, the most specific (deepest, by `depth`; then the best supported) names it and the
// others go to its Event::also. Background segments are left alone.
std::vector<Event> merge_coincident(const std::vector<Event>& events, const BurstParams& params, double tolerance_s,
                                    double ratio, const std::function<int(const std::string&)>& depth);

// Events with bursts thinned as above, in reported order; `removed` (if given) counts what went.
std::vector<Event> suppress_bursts(const std::vector<Event>& events, const BurstParams& params, size_t* removed = nullptr);

}  // namespace earmark::detect
