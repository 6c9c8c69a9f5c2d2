// detect: frame scores -> events. Several classes at once; each class on its own track with
// median filtering, hysteresis thresholds, gap merging and minimum duration.
#pragma once

#include <vector>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"

namespace earmark::detect {

// Applies label groups (max over members), allow/deny lists to a score grid. The result's
// labels are what events will be named by. Unknown names in groups/allow/deny throw
// earmark::Error naming the label.
FrameScores apply_label_config(const FrameScores& scores, const EventsConfig& cfg);

// Turns a score grid into events, sorted by onset then label. `duration_s` clips the last
// event's offset to the file length.
std::vector<Event> find_events(const FrameScores& scores, const EventsConfig& cfg, double duration_s);

// Median filter of odd length `width` (>= 1) with edge replication.
std::vector<float> median_filter(const std::vector<float>& x, int width);

}  // namespace earmark::detect
