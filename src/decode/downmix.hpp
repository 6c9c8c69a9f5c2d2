// Internal to decode: one decoded frame of any FFmpeg sample format and channel count -> mono
// float. Kept apart from the reader so the format handling can be tested sample by sample.
#pragma once

#include <cstddef>
#include <cstdint>

namespace earmark::decode::detail {

// `format` is an AVSampleFormat value. `planes` holds `channels` pointers for planar formats
// and one (interleaved) pointer otherwise. Writes `samples` values, each the average of the
// channels scaled to [-1, 1) (u8 is offset binary: 128 is silence). Returns false for a format
// it does not know (nothing is written then).
bool downmix_to_mono(const uint8_t* const* planes, int format, int channels, size_t samples, float* out);

}  // namespace earmark::decode::detail
