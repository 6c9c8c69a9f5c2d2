// synth: where a placed sound is audible, for references a listener agrees with.
//
// A clip's file span is not the sound: clips have leading and trailing silence, pauses between
// barks, and tails that sink under the bed. The reference events of a soundscape are the
// stretches where the placed clip can be heard:
//   1. The clip and the bed under it are cut into frames (32 ms Hann windows every 10 ms) and
//      each frame's energy is measured in `bands` log-spaced bands (60 Hz .. 15 kHz).
//   2. A frame is audible where, in at least one band, the clip's energy is
//        - within `below_peak_db` of the clip's own loudest band-frame (not its silence or a
//          faint recording noise), and
//        - at least the bed's energy in that band and frame plus `masked_db` (negative: the
//          clip may sit a little under the bed and still be heard, as a sound is in a critical
//          band at about -4 dB; more buried than that it is masked).
//   3. Audible runs closer than `bridge_s` are joined (the gaps inside one bark or one word),
//      and runs shorter than `min_run_s` are dropped (clicks, bits of a masked tail).
// The same rule names each resulting run an event: three barks a second apart are three
// events; a masked tail is not annotated; a clip buried everywhere gives no event.
#pragma once

#include <span>
#include <utility>
#include <vector>

namespace earmark::synth {

struct AudibleRule {
  int bands = 16;
  double below_peak_db = 35.0;
  double masked_db = -3.0;
  double bridge_s = 0.25;
  double min_run_s = 0.05;
};

// `event` and `bed` are the same length (the event's span), at `rate`, at the levels they are
// mixed at. Returns the audible stretches in seconds from the start of the span, in order.
std::vector<std::pair<double, double>> audible_extent(std::span<const float> event, std::span<const float> bed,
                                                      int rate, const AudibleRule& rule = {});

}  // namespace earmark::synth
