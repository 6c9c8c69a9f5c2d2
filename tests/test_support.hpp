// Helpers shared by the tests: where ../shared is, temp folders, small signal makers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/wait.h>

#include "earmark/earmark.hpp"

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

// A test that needs an outside tool (ffmpeg, chromium, redis-server, the S3 test server...)
// skips without it, but fails where EARMARK_REQUIRE_TEST_TOOLS is set (scripts/test sets it
// after scripts/install-deps installed them): in CI a missing tool is an error, not a skip.
#define EARMARK_REQUIRE_TOOL(available, what)                                                 \
  do {                                                                                        \
    if (!(available)) {                                                                       \
      if (std::getenv("EARMARK_REQUIRE_TEST_TOOLS"))                                          \
        FAIL() << what << " is missing; scripts/install-deps installs it";                  \
      GTEST_SKIP() << what << " is not installed (scripts/install-deps installs it)";        \
    }                                                                                         \
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

// Reads a 16-bit PCM WAV file (any channel count; channels are averaged to mono), for tests
// that need real audio without depending on the decoder. Fails the calling test on a file it
// cannot read.
inline std::vector<float> read_wav16(const fs::path& p, int* rate = nullptr) {
  std::ifstream f(p, std::ios::binary);
  std::vector<float> out;
  if (!f) {
    ADD_FAILURE() << "cannot open " << p;
    return out;
  }
  auto u32 = [&]() { uint32_t v = 0; f.read(reinterpret_cast<char*>(&v), 4); return v; };
  auto u16 = [&]() { uint16_t v = 0; f.read(reinterpret_cast<char*>(&v), 2); return v; };
  char id[4];
  f.read(id, 4);
  u32();
  char wave[4];
  f.read(wave, 4);
  if (!f || std::string(id, 4) != "RIFF" || std::string(wave, 4) != "WAVE") {
    ADD_FAILURE() << p << " is not a RIFF/WAVE file";
    return out;
  }
  uint16_t channels = 0, bits = 0, format = 0;
  uint32_t sample_rate = 0;
  while (f.read(id, 4)) {
    const uint32_t size = u32();
    const std::string chunk(id, 4);
    if (chunk == "fmt ") {
      format = u16(); channels = u16(); sample_rate = u32(); u32(); u16(); bits = u16();
      f.seekg(std::streamoff(size) - 16 + (size & 1), std::ios::cur);
    } else if (chunk == "data") {
      if (format != 1 || bits != 16 || channels == 0) {
        ADD_FAILURE() << p << ": only 16-bit PCM is supported here";
        return out;
      }
      std::vector<int16_t> pcm(size / 2);
      f.read(reinterpret_cast<char*>(pcm.data()), std::streamsize(pcm.size() * 2));
      pcm.resize(size_t(f.gcount()) / 2);
      out.resize(pcm.size() / channels);
      for (size_t i = 0; i < out.size(); ++i) {
        float acc = 0;
        for (size_t c = 0; c < channels; ++c) acc += float(pcm[i * channels + c]) / 32768.0f;
        out[i] = acc / float(channels);
      }
      if (rate) *rate = int(sample_rate);
      return out;
    } else {
      f.seekg(std::streamoff(size) + (size & 1), std::ios::cur);
    }
  }
  ADD_FAILURE() << p << ": no data chunk";
  return out;
}

// Deterministic noise for signal-processing tests (fixed seed; std::mt19937 is specified
// bit-exactly, and the uniform-to-Gaussian step below is ours, so every platform gets the
// same samples). Each generator scales its output to the requested RMS.
inline std::vector<float> scale_to_rms(std::vector<double> v, double rms) {
  double mean = 0, e = 0;
  for (double x : v) mean += x;
  mean /= double(std::max<size_t>(v.size(), 1));
  for (double& x : v) x -= mean, e += x * x;
  const double g = e > 0 ? rms / std::sqrt(e / double(v.size())) : 0.0;
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<float>(v[i] * g);
  return out;
}

class Gaussian {
 public:
  explicit Gaussian(uint32_t seed) : rng_(seed) {}
  // Box-Muller on two 32-bit uniforms in (0, 1).
  double operator()() {
    if (have_) { have_ = false; return spare_; }
    const double u1 = (double(rng_()) + 1.0) / 4294967297.0, u2 = (double(rng_()) + 1.0) / 4294967297.0;
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2 * M_PI * u2);
    have_ = true;
    return r * std::cos(2 * M_PI * u2);
  }

 private:
  std::mt19937 rng_;
  double spare_ = 0;
  bool have_ = false;
};

inline std::vector<float> white_noise(size_t n, double rms, uint32_t seed = 1) {
  Gaussian g(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = g();
  return scale_to_rms(std::move(v), rms);
}

// Voss-McCartney: 16 rows of random values, row k refreshed every 2^k samples (the row picked
// by the number of trailing zeros of the sample counter), plus a fresh white value each
// sample; the sum has a 1/f power spectrum (-3 dB/octave) over the audio band.
inline std::vector<float> pink_noise(size_t n, double rms, uint32_t seed = 2) {
  Gaussian g(seed);
  constexpr int kRows = 16;
  double rows[kRows];
  double total = 0;
  for (double& r : rows) total += (r = g());
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t c = uint64_t(i) + 1;
    int k = 0;
    while (k < kRows - 1 && ((c >> k) & 1u) == 0) ++k;
    total -= rows[k];
    total += (rows[k] = g());
    v[i] = total + g();
  }
  return scale_to_rms(std::move(v), rms);
}

// Brown (red) noise: white noise through a leaky integrator whose corner (about 5 Hz) lies
// well below the audio band, giving 1/f^2 power (-6 dB/octave) above it.
inline std::vector<float> brown_noise(size_t n, double rms, uint32_t seed = 3) {
  Gaussian g(seed);
  std::vector<double> v(n);
  double y = 0;
  for (auto& x : v) x = (y = 0.999 * y + g());
  return scale_to_rms(std::move(v), rms);
}

// The message of the earmark::Error that `f` throws, or "<no error>" when it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const earmark::Error& e) {
    return e.what();
  }
  return "<no error>";
}

// shared/audio/speech.wav (10 s, 32 kHz mono: speech with a door slam) as floats.
inline std::vector<float> shared_speech() {
  int rate = 0;
  auto v = read_wav16(shared_dir() / "audio" / "speech.wav", &rate);
  EXPECT_EQ(rate, earmark::kSampleRate);
  EXPECT_EQ(v.size(), size_t(10 * earmark::kSampleRate));
  return v;
}

// Runs a shell command; returns its stdout and stderr together and sets *status to its exit
// status (-1 if it did not exit normally).
inline std::string run(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  const int rc = p ? pclose(p) : -1;
  *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

}  // namespace earmark::testing
