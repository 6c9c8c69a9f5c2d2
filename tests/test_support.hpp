// Helpers shared by the tests: where ../shared is, temp folders, small signal makers.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace earmark::testing {

namespace fs = std::filesystem;

// $EARMARK_SHARED or ../shared beside the checkout.
inline fs::path shared_dir() {
  if (const char* s = std::getenv("EARMARK_SHARED"); s && *s) return s;
  return EARMARK_SHARED_DIR_DEFAULT;
}
// $EARMARK_MODELS or <shared>/models/efficientat.
inline fs::path models_dir() {
  if (const char* s = std::getenv("EARMARK_MODELS"); s && *s) return s;
  return shared_dir() / "models" / "efficientat";
}
inline fs::path source_dir() { return EARMARK_SOURCE_DIR; }
inline fs::path cli_path() { return EARMARK_CLI_PATH; }

// Skips (with a reason) when the shared data is absent, e.g. a build outside the workspace.
#define EARMARK_REQUIRE_SHARED()                                                              \
  do {                                                                                        \
    if (!std::filesystem::exists(::earmark::testing::shared_dir() / "README.md"))             \
      GTEST_SKIP() << "shared data not found at " << ::earmark::testing::shared_dir()          \
                   << " (set EARMARK_SHARED)";                                                \
  } while (0)

// A fresh, empty temporary folder removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("earmark-test-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline std::vector<float> read_f32(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  f.seekg(0, std::ios::end);
  const auto n = static_cast<size_t>(f.tellg()) / sizeof(float);
  f.seekg(0);
  std::vector<float> v(n);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(float)));
  return v;
}

inline std::vector<float> sine(double freq, double seconds, int rate, double amp = 0.5) {
  std::vector<float> v(static_cast<size_t>(seconds * rate));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(amp * std::sin(2 * M_PI * freq * double(i) / rate));
  return v;
}

// Writes 16-bit PCM mono/multichannel WAV (interleaved), for decoder tests.
inline void write_wav16(const fs::path& p, const std::vector<float>& interleaved, int rate, int channels) {
  std::ofstream f(p, std::ios::binary);
  auto u32 = [&](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  const uint32_t data_bytes = static_cast<uint32_t>(interleaved.size() * 2);
  f.write("RIFF", 4); u32(36 + data_bytes); f.write("WAVE", 4);
  f.write("fmt ", 4); u32(16); u16(1); u16(static_cast<uint16_t>(channels)); u32(static_cast<uint32_t>(rate));
  u32(static_cast<uint32_t>(rate * channels * 2)); u16(static_cast<uint16_t>(channels * 2)); u16(16);
  f.write("data", 4); u32(data_bytes);
  for (float x : interleaved) {
    const float c = std::max(-1.0f, std::min(1.0f, x));
    u16(static_cast<uint16_t>(static_cast<int16_t>(std::lrint(c * 32767.0f))));
  }
}

// Reads a 16-bit PCM WAV (any channel count, interleaved) without the library's decoder, so
// tests can check the decoder against it. Returns an empty vector if the file is not one.
inline std::vector<float> read_wav_pcm16(const fs::path& p, int* rate = nullptr, int* channels = nullptr) {
  std::ifstream f(p, std::ios::binary);
  std::vector<char> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto u32 = [&](size_t o) { uint32_t v; std::memcpy(&v, &b[o], 4); return v; };
  auto u16 = [&](size_t o) { uint16_t v; std::memcpy(&v, &b[o], 2); return v; };
  if (b.size() < 12 || std::memcmp(b.data(), "RIFF", 4) || std::memcmp(b.data() + 8, "WAVE", 4)) return {};
  int ch = 0, sr = 0, bits = 0;
  for (size_t o = 12; o + 8 <= b.size();) {
    const uint32_t len = u32(o + 4);
    if (!std::memcmp(&b[o], "fmt ", 4)) {
      ch = u16(o + 10), sr = int(u32(o + 12)), bits = u16(o + 22);
    } else if (!std::memcmp(&b[o], "data", 4)) {
      if (bits != 16) return {};
      const size_t n = std::min<size_t>(len, b.size() - o - 8) / 2;
      std::vector<float> v(n);
      for (size_t i = 0; i < n; ++i) v[i] = float(int16_t(u16(o + 8 + 2 * i))) / 32768.0f;
      if (rate) *rate = sr;
      if (channels) *channels = ch;
      return v;
    }
    o += 8 + len + (len & 1);
  }
  return {};
}

}  // namespace earmark::testing
