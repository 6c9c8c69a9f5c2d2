// Internal to decode: one decoded frame of any FFmpeg sample format and channel count -> mono
// float. Kept apart from the reader so the format handling can be tested sample by sample.
#pragma once

#include <cstddef>
#include <cstdint>

namespace earmark::decode::detail {

// `format` is an AVSampleFormat value. `planes` holds `channels` pointers for planar formats
// and one (interleaved) pointer otherwise. Writes `samples` values, each the average of the
// channels scaled to [-1, 1) (u8 is offset binary: 128 is silence). Returns false for a format
// it does not know (nothing is written then). A sample that is NaN, infinite or beyond 1e6 in
// magnitude (a damaged or hostile float stream; no audio) is written as 0; `nonfinite`, when given, is increased by their count
// so that the reader can say so instead of passing the file off as silence.
bool downmix_to_mono(const uint8_t* const* planes, int format, int channels, size_t samples, float* out,
                     size_t* nonfinite = nullptr);

}  // namespace earmark::decode::detail
