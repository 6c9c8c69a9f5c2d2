// detect: backgrounds as backgrounds. A steady sound (noise, hum, rain, an engine, a TV or
// music bed) keeps its class score near the threshold for minutes, so the events stage cuts it
// into many short events wherever the score dips: 60 s of brown noise became 11 "Pink noise"
// events. A listener hears one background. This stage finds, per class, the stretches where the
// class is on most of the time and reports each as one background segment (Event::kind
// background), never fragmented; the events that remain are what stands out from it.
//
// Present: a class's score is at least `floor` times its off-threshold. A train's clatter or
// rain on a window keeps its class present between the moments it crosses the on-threshold; a
// dog between its barks, a door slam or a cough (the sounds a listener calls events) do not.
// Measured on the dev benchmark's tune split: of the estimated events in background-only
// stretches, 190 of 303 belong to a class present in at least a fifth of the file, and none of
// the events that found a reference sound (docs/false-alarms.md).
//
// The rules, per class, on find_events' output (before boundary refinement):
//  1. Recurring presence (needs the score grid): where the class is present in at least
//     `presence` of the window_s around each moment, for at least min_s (first to last present
//     frame), and present in at least `outside` of that stretch outside its own events, the
//     stretch is a background segment that takes in the class's events lying mostly inside it.
//  2. A long chain: the class's remaining events with gaps under bridge_s, spanning at least
//     min_s, in which the class is present (or inside its events) at least `coverage` of the
//     time.
//  A segment replaces the events it takes in; its confidence is the highest of theirs; one
//  that takes in no event (a bed that never reached the threshold) is not reported. Segments of
//  one class closer than bridge_s are one segment.
// Events of other classes inside a segment stay events (a dog over the rain).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"

namespace earmark::detect {

struct BackgroundParams {
  bool enabled = true;
  double min_s = 20.0;
  double coverage = 0.5;
  double bridge_s = 8.0;
  double floor = 0.5;
  double window_s = 60.0;
  double presence = 0.2;
  double outside = 0.02;
  double default_off = 0.15;           // the off-threshold of classes without their own
  std::map<std::string, double> off;   // per-class off-thresholds by label
  static BackgroundParams from(const EventsConfig& cfg);
};

// Events with each class's steady stretches replaced by background segments (see above),
// in reported order. Events already marked background are kept as they are. `scores` (the grid
// the events were found on; may be null) gives the presence between events.
std::vector<Event> mark_backgrounds(const std::vector<Event>& events, const BackgroundParams& params,
                                    const FrameScores* scores = nullptr);

// Events that lie mostly (at least half their length) inside a background segment whose label is
// `related` to theirs (the same label, or the same kind of sound: "Rain on surface" in a Raindrop
// background), and whose own class is present (as in rule 1) in at least params.presence of the
// segment, are that background, not something standing out from it: they are removed from
// `events` and listed in the segment's Event::also. A bleat inside an "Animal" stretch is not
// present between its bleats and stays an event. Without `scores` only the same label counts.
void absorb_related(std::vector<Event>& events, std::vector<Event>& backgrounds,
                    const std::function<bool(const std::string&, const std::string&)>& related,
                    const BackgroundParams& params, const FrameScores* scores);

// Share of the `context_s` on each side of `e` (outside it, within the file) in which e's class
// is present (score at least params.floor x its off-threshold); 0 when `scores` lacks the class.
double presence_around(const FrameScores& scores, const Event& e, const BackgroundParams& params, double context_s);

// Splits a list into its events and its background segments (order kept).
void split_kinds(const std::vector<Event>& all, std::vector<Event>& events, std::vector<Event>& backgrounds);

}  // namespace earmark::detect
