// detect: the naive baseline a notebook would write, kept as the yardstick the real event
// detector is measured against (bench/dev-benchmark).
//
// On a score grid from the windows method with window_s = 0.96 and hop_s = 0.48 (each frame is
// one 0.96 s network input, one per 0.48 s step): each frame's single best class is taken; if
// its score is at or above a global threshold the frame becomes an event of that class
// spanning the frame; consecutive frames of the same class are merged into one event. No
// smoothing, no hysteresis, no per-class thresholds, and at most one class at a time.
#pragma once

#include <vector>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"

namespace earmark::detect {

// The frames settings the baseline is defined on (method windows, 0.96 s window, 0.48 s hop).
FramesConfig naive_frames_config();

// Events of the naive baseline, sorted by onset. Frame f spans [f*hop_s, (f+1)*hop_s), the last
// event cut at `duration_s` (frames starting at or after it are ignored). The argmax takes the
// first class among equal scores; non-finite scores count as 0. `confidence` is the event's
// highest frame score. Throws earmark::Error for a threshold outside [0, 1] or an
// inconsistent grid.
std::vector<Event> naive_events(const FrameScores& scores, double threshold, double duration_s);

}  // namespace earmark::detect
