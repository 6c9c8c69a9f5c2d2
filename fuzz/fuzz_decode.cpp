// Fuzzes the decoder front door (decode::AudioReader): bytes of any container through FFmpeg,
// our downmix and soxr. Input: one byte that picks the file name's extension (a hint only:
// the content decides the demuxer), then the file's bytes.
// Properties: only earmark::Error escapes; every sample is finite; the reported duration and
// layout are sane. Reading stops after ~2 minutes of audio (a long file is not a finding).
#include <cmath>
#include <string>
#include <vector>

#include "decode/decoder.hpp"
#include "earmark/earmark.hpp"
#include "fuzz_support.hpp"

namespace {
const char* const kExt[] = {"wav", "flac", "ogg", "mp3", "m4a", "opus", "aiff", "webm", "caf", "w64", "bin"};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string ext = kExt[data[0] % (sizeof kExt / sizeof kExt[0])];
  const auto path = earmark::fuzz::scratch() / ("input." + ext);
  earmark::fuzz::write_file(path, std::string(reinterpret_cast<const char*>(data + 1), size - 1));
  try {
    earmark::decode::AudioReader reader(path.string(), 16000);
    std::vector<float> block;
    size_t total = 0;
    while (total < size_t(16000) * 120) {
      block.clear();
      const size_t got = reader.read(block, 8192);
      if (got == 0) break;
      EARMARK_FUZZ_CHECK(got == block.size() && got <= 8192);
      for (float v : block) EARMARK_FUZZ_CHECK(std::isfinite(v));
      total += got;
    }
    const auto& info = reader.info();
    EARMARK_FUZZ_CHECK(std::isfinite(info.duration_s) && info.duration_s >= 0);
    EARMARK_FUZZ_CHECK(info.source_channels >= 0);
  } catch (const earmark::Error&) {
  }
  return 0;
}
