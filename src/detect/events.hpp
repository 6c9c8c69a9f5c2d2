// detect: frame scores -> events. Several classes at once; each class on its own track with
// median filtering, hysteresis thresholds, gap merging and minimum duration.
#pragma once

#include <string>
#include <vector>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"

namespace earmark::detect {

// Checks every name the events config refers to (group members, allow, deny, per_class keys)
// against the model's `labels` (case-insensitive; allow/deny/per_class may also name a group).
// Throws earmark::Error naming the first unknown name and the closest existing ones. Meant to
// run once before any file is processed so that a typo fails the run early.
void validate_label_names(const std::vector<std::string>& labels, const EventsConfig& cfg);

// Applies label groups (max over members), allow/deny lists to a score grid. The result's
// labels are what events will be named by. Unknown names in groups/allow/deny/per_class throw
// earmark::Error naming the label (see validate_label_names). Non-finite scores become 0.
//  - A group is reported under its own name; its members are no longer reported on their own
//    unless allow names them explicitly. A group named like a model label (e.g. "Dog" with
//    Bark, Yip) includes that label as an implicit member and takes its place.
//  - allow (if not empty) keeps only the labels/groups it names; deny drops names and wins
//    over allow. A denied label still counts towards its groups.
//  - Output order: the model's labels in their order, then the groups by name.
FrameScores apply_label_config(const FrameScores& scores, const EventsConfig& cfg);
// The same, reusing `scores`' memory when the config keeps every label as it is (no groups,
// allow or deny): a long file's grid is then not copied.
FrameScores apply_label_config(FrameScores&& scores, const EventsConfig& cfg);

// Turns a score grid into events, sorted by onset then label. `duration_s` clips the last
// event's offset to the file length (events starting at or after it are dropped).
// Per class: median filter of round(median_s / hop_s) frames (made odd by adding one), then
// hysteresis (a run of frames >= off containing a frame >= on), then same-class events closer
// than merge_gap_s are merged, then events shorter than min_duration_s (measured after
// clipping) are dropped. per_class entries whose label is not in this grid (e.g. removed by
// allow/deny) are ignored: names are checked by validate_label_names/apply_label_config.
// Non-finite scores count as 0. Throws earmark::Error for an inconsistent grid.
std::vector<Event> find_events(const FrameScores& scores, const EventsConfig& cfg, double duration_s);

// The order every event list is reported in: by onset, then label, then offset.
bool reported_order(const Event& a, const Event& b);

// Median filter of odd length `width` (>= 1) with edge replication; NaN counts as 0.
// An even or non-positive width throws earmark::Error.
std::vector<float> median_filter(const std::vector<float>& x, int width);

}  // namespace earmark::detect
