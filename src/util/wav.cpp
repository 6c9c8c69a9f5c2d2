// util: RIFF/WAVE writer. Bytes are assembled explicitly little-endian so the output is the
// same on any host.
#include "util/wav.hpp"

#include <cmath>
#include <cstring>
#include <cstdint>
#include <fstream>
#include <limits>
#include <vector>

#include "earmark/earmark.hpp"

namespace earmark::util {

namespace {

void put16(std::vector<unsigned char>& b, uint32_t v) {
  b.push_back(static_cast<unsigned char>(v & 0xff));
  b.push_back(static_cast<unsigned char>((v >> 8) & 0xff));
}
void put32(std::vector<unsigned char>& b, uint32_t v) {
  put16(b, v & 0xffff);
  put16(b, v >> 16);
}
void tag(std::vector<unsigned char>& b, const char* t) { b.insert(b.end(), t, t + 4); }

}  // namespace

void write_wav(const std::string& path, std::span<const float> interleaved, int rate, int channels, WavFormat format) {
  if (rate <= 0 || channels <= 0 || channels > 64) throw Error(path + ": invalid WAV layout (rate or channels)");
  if (interleaved.size() % size_t(channels) != 0)
    throw Error(path + ": sample count is not a multiple of the channel count");
  const bool is_float = format == WavFormat::float32;
  const uint32_t bytes_per_sample = is_float ? 4 : 2;
  const uint64_t data_bytes = uint64_t(interleaved.size()) * bytes_per_sample;
  // RIFF sizes are 32-bit; leave room for the header chunks.
  if (data_bytes > std::numeric_limits<uint32_t>::max() - 1024)
    throw Error(path + ": audio too long for a WAV file (over 4 GiB); write shorter files");

  std::vector<unsigned char> hdr;
  const uint32_t fmt_size = is_float ? 18 : 16;  // float: WAVEFORMATEX with cbSize = 0
  const uint32_t fact_size = is_float ? 12 : 0;
  tag(hdr, "RIFF");
  put32(hdr, uint32_t(4 + (8 + fmt_size) + fact_size + 8 + data_bytes));
  tag(hdr, "WAVE");
  tag(hdr, "fmt ");
  put32(hdr, fmt_size);
  put16(hdr, is_float ? 3 : 1);
  put16(hdr, uint32_t(channels));
  put32(hdr, uint32_t(rate));
  put32(hdr, uint32_t(rate) * uint32_t(channels) * bytes_per_sample);
  put16(hdr, uint32_t(channels) * bytes_per_sample);
  put16(hdr, bytes_per_sample * 8);
  if (is_float) {
    put16(hdr, 0);
    tag(hdr, "fact");
    put32(hdr, 4);
    put32(hdr, uint32_t(interleaved.size() / size_t(channels)));
  }
  tag(hdr, "data");
  put32(hdr, uint32_t(data_bytes));

  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error(path + ": cannot create the file; check that the folder exists and is writable");
  f.write(reinterpret_cast<const char*>(hdr.data()), std::streamsize(hdr.size()));

  std::vector<unsigned char> buf;
  buf.reserve(65536 * bytes_per_sample);
  for (size_t i = 0; i < interleaved.size(); ++i) {
    const float x = interleaved[i];
    if (is_float) {
      uint32_t bits = 0;
      static_assert(sizeof(float) == sizeof(uint32_t));
      std::memcpy(&bits, &x, 4);
      put32(buf, bits);
    } else {
      // NaN maps to 0; everything else is clamped (a writer never wraps around).
      const float c = std::isnan(x) ? 0.0f : std::fmax(-1.0f, std::fmin(1.0f, x));
      put16(buf, uint32_t(uint16_t(int16_t(std::lrint(c * 32767.0f)))));
    }
    if (buf.size() >= 65536 * bytes_per_sample || i + 1 == interleaved.size()) {
      f.write(reinterpret_cast<const char*>(buf.data()), std::streamsize(buf.size()));
      buf.clear();
    }
  }
  f.flush();
  if (!f) throw Error(path + ": write failed (disk full?)");
}

}  // namespace earmark::util

namespace earmark {

WavFormat parse_wav_format(const std::string& name) {
  if (name == "s16") return WavFormat::pcm16;
  if (name == "f32") return WavFormat::float32;
  throw Error("WAV sample format '" + name + "' is unknown; use s16 or f32");
}

const char* wav_format_name(WavFormat f) { return f == WavFormat::float32 ? "f32" : "s16"; }

}  // namespace earmark
