// util: a minimal RIFF/WAVE writer (mono or interleaved), 16-bit PCM or 32-bit float.
// Reading goes through decode/ (FFmpeg); writing is simple enough not to need it.
#pragma once

#include <span>
#include <string>

#include "earmark/synth.hpp"

namespace earmark::util {

using WavFormat = earmark::WavFormat;

// Writes `interleaved` (channels samples per frame) to `path`. pcm16 rounds x * 32767 and
// clamps to [-32767, 32767]; float32 stores the values unchanged (IEEE float, format tag 3,
// with the "fact" chunk the spec asks for). Throws earmark::Error("<path>: ...") when the file
// cannot be written or the data does not fit a RIFF file (4 GiB).
void write_wav(const std::string& path, std::span<const float> interleaved, int rate, int channels = 1,
               WavFormat format = WavFormat::pcm16);

using earmark::parse_wav_format;  // declared in earmark/synth.hpp
using earmark::wav_format_name;

}  // namespace earmark::util
