// decode: known signals through the whole reader (downmix, resampling, streaming), every
// container/codec the ffmpeg CLI can make here, per-sample-format downmix, and bad input.
extern "C" {
#include <libavutil/samplefmt.h>
}

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <limits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "decode/decoder.hpp"
#include "decode/downmix.hpp"
#include "test_support.hpp"

namespace {

using namespace earmark;
using namespace earmark::testing;
using decode::AudioReader;
using decode::decode_file;

bool have_ffmpeg() {
  static const bool ok = std::system("ffmpeg -version > /dev/null 2>&1") == 0;
  return ok;
}

// Runs the ffmpeg CLI quietly; returns true on success.
bool ffmpeg(const std::string& args) {
  return std::system(("ffmpeg -nostdin -y -hide_banner -loglevel error " + args).c_str()) == 0;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

double rms(const std::vector<float>& x, size_t from = 0, size_t to = SIZE_MAX) {
  to = std::min(to, x.size());
  double s = 0;
  for (size_t i = from; i < to; ++i) s += double(x[i]) * x[i];
  return to > from ? std::sqrt(s / double(to - from)) : 0.0;
}

size_t zero_crossings(const std::vector<float>& x, size_t from, size_t to) {
  size_t n = 0;
  for (size_t i = from + 1; i < to; ++i) n += (x[i - 1] < 0) != (x[i] < 0);
  return n;
}

std::vector<float> interleave(const std::vector<float>& l, const std::vector<float>& r) {
  std::vector<float> v(l.size() * 2);
  for (size_t i = 0; i < l.size(); ++i) {
    v[2 * i] = l[i];
    v[2 * i + 1] = r[i];
  }
  return v;
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Pearson correlation of a[i] and b[i + lag] over [from, to) of a.
double correlation(const std::vector<float>& a, const std::vector<float>& b, size_t from, size_t to, long lag) {
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = from; i < to; ++i) {
    const long j = long(i) + lag;
    const double y = (j >= 0 && size_t(j) < b.size()) ? b[size_t(j)] : 0.0;
    sab += a[i] * y;
    saa += double(a[i]) * a[i];
    sbb += y * y;
  }
  return (saa > 0 && sbb > 0) ? sab / std::sqrt(saa * sbb) : 0.0;
}

// Best correlation over lags in [-max_lag, max_lag], on a 2 s window in the middle of `a`.
double best_correlation(const std::vector<float>& a, const std::vector<float>& b, long max_lag, long* best_lag) {
  const size_t from = a.size() / 2 - 32000, to = a.size() / 2 + 32000;
  double best = -1;
  for (long lag = -max_lag; lag <= max_lag; ++lag) {
    const double c = correlation(a, b, from, to, lag);
    if (c > best) {
      best = c;
      *best_lag = lag;
    }
  }
  return best;
}

double db(double ratio) { return 20.0 * std::log10(ratio); }

// Expects `fn` to throw earmark::Error whose message names `path` and contains `cause`.
template <typename Fn>
void expect_error(Fn fn, const fs::path& path, const std::string& cause) {
  try {
    fn();
    ADD_FAILURE() << "no error for " << path;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(cause), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

// ---------------------------------------------------------------------------------------------
// Known signals

TEST(Decode, SineStereo44kTo32kMono) {
  TempDir tmp;
  const double seconds = 2.0;
  const auto s = sine(1000.0, seconds, 44100, 0.5);
  const auto path = tmp / "sine.wav";
  write_wav16(path, interleave(s, s), 44100, 2);

  AudioInfo info;
  const auto x = decode_file(path.string(), 32000, &info);
  // 2 s * 32000 = 64000 samples; soxr's flush gives the exact ratio up to rounding.
  EXPECT_NEAR(double(x.size()), 64000.0, 4.0);
  EXPECT_EQ(info.container, "wav");
  EXPECT_EQ(info.codec, "pcm_s16le");
  EXPECT_EQ(info.source_rate, 44100);
  EXPECT_EQ(info.source_channels, 2);
  EXPECT_NEAR(info.duration_s, double(x.size()) / 32000.0, 1e-9);

  // Amplitude 0.5 -> RMS 0.5/sqrt(2) = 0.35355 (away from the edges, where the filter rings).
  EXPECT_NEAR(rms(x, 3200, x.size() - 3200), 0.5 / std::sqrt(2.0), 0.002);
  // 1 kHz crosses zero 2000 times a second: count over exactly 1 s (32000 samples).
  const size_t zc = zero_crossings(x, 16000, 16000 + 32000);
  EXPECT_NEAR(double(zc), 2000.0, 2.0);
}

TEST(Decode, SameRateIsBitExactPassThrough) {
  TempDir tmp;
  const auto s = sine(440.0, 0.5, 32000, 0.7);
  const auto path = tmp / "mono32k.wav";
  write_wav16(path, s, 32000, 1);
  const auto x = decode_file(path.string(), 32000);
  ASSERT_EQ(x.size(), s.size());
  // write_wav16 stores lrint(v * 32767); the decoder maps int16 k to k / 32768.
  for (size_t i = 0; i < s.size(); ++i)
    ASSERT_EQ(x[i], float(std::lrint(s[i] * 32767.0f)) / 32768.0f) << "sample " << i;
}

TEST(Decode, StereoDownmixAveragesChannels) {
  TempDir tmp;
  const auto s = sine(1000.0, 1.0, 44100, 0.5);
  std::vector<float> neg(s.size()), zero(s.size(), 0.0f);
  for (size_t i = 0; i < s.size(); ++i) neg[i] = -s[i];

  const auto opposite = tmp / "opposite.wav";
  write_wav16(opposite, interleave(s, neg), 44100, 2);
  const auto x = decode_file(opposite.string());
  ASSERT_GT(x.size(), 30000u);
  // int16 rounding is symmetric (lrint(-v) = -lrint(v)), so the average is exactly zero.
  EXPECT_LT(rms(x), 1e-6);

  const auto left = tmp / "left.wav";
  write_wav16(left, interleave(s, zero), 44100, 2);
  const auto y = decode_file(left.string());
  // Half the amplitude: 0.25 / sqrt(2) = 0.17678.
  EXPECT_NEAR(rms(y, 3200, y.size() - 3200), 0.25 / std::sqrt(2.0), 0.001);
}

TEST(Decode, SixChannelsAverage) {
  TempDir tmp;
  const auto s = sine(500.0, 1.0, 48000, 1.0);
  const double amp[6] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
  std::vector<float> v(s.size() * 6);
  for (size_t i = 0; i < s.size(); ++i)
    for (size_t c = 0; c < 6; ++c) v[i * 6 + c] = float(amp[c] * s[i]);
  const auto path = tmp / "six.wav";
  write_wav16(path, v, 48000, 6);
  AudioInfo info;
  const auto x = decode_file(path.string(), 32000, &info);
  EXPECT_EQ(info.source_channels, 6);
  EXPECT_NEAR(double(x.size()), 32000.0, 4.0);
  // Mean amplitude (0.1+...+0.6)/6 = 0.35 -> RMS 0.35/sqrt(2) = 0.24749.
  EXPECT_NEAR(rms(x, 3200, x.size() - 3200), 0.35 / std::sqrt(2.0), 0.002);
}

// The per-format mixer on hand-made planes: L = {0.5, -0.25, 0}, R = {0.25, 0.25, -1}, so the
// mono average is {0.375, 0, -0.5} in every format (all values exact in each).
TEST(Decode, DownmixEverySampleFormat) {
  const double L[3] = {0.5, -0.25, 0.0}, R[3] = {0.25, 0.25, -1.0};
  const float expect[3] = {0.375f, 0.0f, -0.5f};
  auto run = [&](AVSampleFormat fmt, auto encode) {
    using T = decltype(encode(0.0));
    const bool planar = av_sample_fmt_is_planar(fmt) != 0;
    std::vector<T> packed, left, right;
    for (int i = 0; i < 3; ++i) {
      packed.push_back(encode(L[i]));
      packed.push_back(encode(R[i]));
      left.push_back(encode(L[i]));
      right.push_back(encode(R[i]));
    }
    const uint8_t* planes[2];
    if (planar) {
      planes[0] = reinterpret_cast<const uint8_t*>(left.data());
      planes[1] = reinterpret_cast<const uint8_t*>(right.data());
    } else {
      planes[0] = reinterpret_cast<const uint8_t*>(packed.data());
      planes[1] = nullptr;
    }
    float out[3] = {9, 9, 9};
    ASSERT_TRUE(decode::detail::downmix_to_mono(planes, fmt, 2, 3, out)) << av_get_sample_fmt_name(fmt);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(out[i], expect[i]) << av_get_sample_fmt_name(fmt) << " sample " << i;
    // One channel (a conversion of its own): the left channel as it is.
    const uint8_t* mono[1] = {reinterpret_cast<const uint8_t*>(left.data())};
    ASSERT_TRUE(decode::detail::downmix_to_mono(mono, fmt, 1, 3, out)) << av_get_sample_fmt_name(fmt);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(out[i], float(L[i])) << av_get_sample_fmt_name(fmt) << " mono sample " << i;
  };
  // Offset binary for u8: 0.5 -> 192, -1 -> 0; the others scale by 2^(bits-1).
  auto u8 = [](double v) { return uint8_t(std::lrint(v * 128 + 128)); };
  auto s16 = [](double v) { return int16_t(std::lrint(v * 32768)); };
  auto s32 = [](double v) { return int32_t(std::llrint(v * 2147483648.0)); };
  auto s64 = [](double v) { return int64_t(std::ldexp(v, 63)); };
  auto f32 = [](double v) { return float(v); };
  auto f64 = [](double v) { return v; };
  for (bool planar : {false, true}) {
    auto pick = [&](AVSampleFormat f) { return planar ? av_get_planar_sample_fmt(f) : f; };
    run(pick(AV_SAMPLE_FMT_U8), u8);
    run(pick(AV_SAMPLE_FMT_S16), s16);
    run(pick(AV_SAMPLE_FMT_S32), s32);
    run(pick(AV_SAMPLE_FMT_S64), s64);
    run(pick(AV_SAMPLE_FMT_FLT), f32);
    run(pick(AV_SAMPLE_FMT_DBL), f64);
  }
  // Damaged float samples become 0 and are counted, with one channel as with two.
  for (int channels : {1, 2}) {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const std::vector<float> damaged = {nan, 0.25f, inf, 0.25f, 3e6f, 0.25f, 0.5f, 0.5f};
    const uint8_t* planes[1] = {reinterpret_cast<const uint8_t*>(damaged.data())};
    std::vector<float> out(damaged.size() / size_t(channels), 9.0f);
    size_t bad = 0;
    ASSERT_TRUE(decode::detail::downmix_to_mono(planes, AV_SAMPLE_FMT_FLT, channels, out.size(), out.data(), &bad));
    const std::vector<float> expect_out = channels == 1 ? std::vector<float>{0, 0.25f, 0, 0.25f, 0, 0.25f, 0.5f, 0.5f}
                                                       : std::vector<float>{0, 0, 0, 0.5f};
    EXPECT_EQ(out, expect_out) << channels << " channel(s)";
    EXPECT_EQ(bad, 3u) << channels << " channel(s)";
  }
  float out[1];
  const uint8_t* none[1] = {nullptr};
  EXPECT_FALSE(decode::detail::downmix_to_mono(none, AV_SAMPLE_FMT_NONE, 1, 0, out));
  EXPECT_FALSE(decode::detail::downmix_to_mono(none, AV_SAMPLE_FMT_S16, 0, 0, out));
}

// ---------------------------------------------------------------------------------------------
// Streaming

class DecodeStreaming : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir;
    // 60 s of 44.1 kHz stereo: a slow chirp plus seeded noise, different in each channel, so
    // the resampler and the downmix both have real work and any misordered block would show.
    const int rate = 44100;
    const size_t n = size_t(60 * rate);
    std::mt19937 rng(7);
    std::vector<float> v(2 * n);
    for (size_t i = 0; i < n; ++i) {
      const double t = double(i) / rate;
      const double chirp = 0.3 * std::sin(2 * M_PI * (200 * t + 50 * t * t));
      v[2 * i] = float(chirp + (double(rng() % 2001) - 1000.0) * 1e-4);
      v[2 * i + 1] = float(-0.5 * chirp + (double(rng() % 2001) - 1000.0) * 1e-4);
    }
    write_wav16(path(), v, rate, 2);
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  static fs::path path() { return *tmp_ / "long.wav"; }

  // Reads the whole file in blocks of `block`; checks each block is full except the last.
  static std::vector<float> read_blocks(size_t block) {
    AudioReader reader(path().string());
    std::vector<float> out;
    size_t got = 0;
    bool short_seen = false;
    while ((got = reader.read(out, block)) > 0) {
      EXPECT_FALSE(short_seen) << "a short block came before the end (block " << block << ")";
      EXPECT_LE(got, block);
      if (got < block) short_seen = true;
    }
    EXPECT_EQ(reader.read(out, block), 0u) << "end stays the end";
    EXPECT_TRUE(reader.warnings().empty());
    return out;
  }

  static TempDir* tmp_;
};
TempDir* DecodeStreaming::tmp_ = nullptr;

TEST_F(DecodeStreaming, BlocksMatchWholeFileBitForBit) {
  AudioInfo info;
  const auto whole = decode_file(path().string(), 32000, &info);
  // 60 s at 32 kHz = 1,920,000 samples.
  EXPECT_NEAR(double(whole.size()), 1920000.0, 4.0);
  EXPECT_NEAR(info.duration_s, 60.0, 1e-3);

  for (size_t block : {size_t(4096), size_t(1), size_t(777), size_t(100000), size_t(3000000)}) {
    const auto blocks = read_blocks(block);
    ASSERT_EQ(blocks.size(), whole.size()) << "block " << block;
    EXPECT_EQ(std::memcmp(blocks.data(), whole.data(), whole.size() * sizeof(float)), 0) << "block " << block;
  }
}

TEST_F(DecodeStreaming, DurationIsEstimateUntilTheEnd) {
  AudioReader reader(path().string());
  // The WAV header's data size says exactly 60 s.
  EXPECT_NEAR(reader.info().duration_s, 60.0, 1e-6);
  std::vector<float> out;
  EXPECT_EQ(reader.read(out, 0), 0u);
  EXPECT_EQ(reader.read(out, 32000), 32000u);
  EXPECT_NEAR(reader.info().duration_s, 60.0, 1e-6);
  while (reader.read(out, 1 << 16) > 0) {
  }
  EXPECT_EQ(reader.info().duration_s, double(out.size()) / 32000.0);
}

// ---------------------------------------------------------------------------------------------
// Containers and codecs made by the ffmpeg CLI from a real recording

class DecodeCodecs : public ::testing::Test {
 protected:
  void SetUp() override {
    EARMARK_REQUIRE_SHARED();
    EARMARK_REQUIRE_TOOL(have_ffmpeg(), "the ffmpeg CLI");
    src_ = shared_dir() / "audio" / "speech.wav";
    original_ = decode_file(src_.string());
    ASSERT_EQ(original_.size(), 320000u);  // 10 s at 32 kHz, stored as such
  }
  // Converts the original with `args` into `name` and decodes it.
  std::vector<float> convert(const std::string& name, const std::string& args, AudioInfo* info) {
    const auto out = tmp_ / name;
    EXPECT_TRUE(ffmpeg("-i " + q(src_) + " " + args + " " + q(out))) << name;
    AudioReader reader(out.string());
    std::vector<float> x;
    while (reader.read(x, 8192) > 0) {
    }
    *info = reader.info();
    EXPECT_TRUE(reader.warnings().empty()) << name << ": " << reader.warnings().front();
    return x;
  }

  TempDir tmp_;
  fs::path src_;
  std::vector<float> original_;
};

TEST_F(DecodeCodecs, LosslessMatchTheOriginal) {
  struct Case {
    const char* name;
    const char* args;
    const char* container;
    const char* codec;
  };
  for (const Case& c : {Case{"s.flac", "", "flac", "flac"}, Case{"s.aiff", "", "aiff", "pcm_s16be"},
                        Case{"s.w64", "", "w64", "pcm_s16le"}, Case{"s.mka", "-c:a flac", "matroska", "flac"},
                        Case{"s24.wav", "-c:a pcm_s24le", "wav", "pcm_s24le"},
                        Case{"f32.wav", "-c:a pcm_f32le", "wav", "pcm_f32le"},
                        Case{"f64.wav", "-c:a pcm_f64le", "wav", "pcm_f64le"},
                        Case{"s.caf", "", "caf", "pcm_s16be"}, Case{"s.au", "", "au", "pcm_s16be"},
                        Case{"s.wv", "", "wv", "wavpack"}}) {
    AudioInfo info;
    const auto x = convert(c.name, c.args, &info);
    EXPECT_EQ(info.container, c.container) << c.name;
    EXPECT_EQ(info.codec, c.codec) << c.name;
    EXPECT_EQ(info.source_rate, 32000) << c.name;
    ASSERT_EQ(x.size(), original_.size()) << c.name;
    float max_abs = 0;
    for (size_t i = 0; i < x.size(); ++i) max_abs = std::max(max_abs, std::fabs(x[i] - original_[i]));
    EXPECT_LT(max_abs, 1e-3f) << c.name;
  }
}

TEST_F(DecodeCodecs, UnsignedEightBit) {
  AudioInfo info;
  const auto x = convert("u8.wav", "-c:a pcm_u8", &info);
  EXPECT_EQ(info.codec, "pcm_u8");
  ASSERT_EQ(x.size(), original_.size());
  // 8-bit quantisation: steps of 1/128, so errors up to half a step plus dither-free rounding.
  float max_abs = 0;
  for (size_t i = 0; i < x.size(); ++i) max_abs = std::max(max_abs, std::fabs(x[i] - original_[i]));
  EXPECT_LT(max_abs, 1.0f / 128.0f);
}

TEST_F(DecodeCodecs, Stereo48kResampledBack) {
  AudioInfo info;
  // pan copies the mono channel at unit gain; FFmpeg's plain "-ac 2" would put it 3 dB down.
  const auto x = convert("s48.wav", "-af 'pan=stereo|c0=c0|c1=c0' -ar 48000", &info);
  EXPECT_EQ(info.source_rate, 48000);
  EXPECT_EQ(info.source_channels, 2);
  EXPECT_NEAR(double(x.size()), 320000.0, 4.0);
  // Two resamplers in a row (FFmpeg's up, soxr down) differ near Nyquist only: the
  // difference must stay 30 dB below the signal.
  const size_t n = std::min(x.size(), original_.size());
  std::vector<float> diff(n);
  for (size_t i = 0; i < n; ++i) diff[i] = x[i] - original_[i];
  EXPECT_LT(db(rms(diff) / rms(original_)), -30.0);
}

TEST_F(DecodeCodecs, LossyKeepTheSignal) {
  struct Case {
    const char* name;
    const char* args;
    const char* container;
    const char* codec;
  };
  for (const Case& c : {Case{"s.ogg", "-c:a libvorbis", "ogg", "vorbis"}, Case{"s.opus", "-c:a libopus", "ogg", "opus"},
                        Case{"s.mp3", "-c:a libmp3lame", "mp3", "mp3"}, Case{"s.m4a", "-c:a aac", "m4a", "aac"},
                        Case{"s.webm", "-c:a libopus", "webm", "opus"}, Case{"s.aac", "-c:a aac", "aac", "aac"},
                        Case{"s.wma", "-c:a wmav2", "asf", "wmav2"}, Case{"s.ac3", "-c:a ac3", "ac3", "ac3"}}) {
    AudioInfo info;
    const auto x = convert(c.name, c.args, &info);
    EXPECT_EQ(info.container, c.container) << c.name;
    EXPECT_EQ(info.codec, c.codec) << c.name;
    EXPECT_NEAR(info.duration_s, 10.0, 0.1) << c.name;
    long lag = 0;
    const double corr = best_correlation(original_, x, 3000, &lag);
    EXPECT_GT(corr, 0.9) << c.name << " (lag " << lag << ")";
    EXPECT_NEAR(db(rms(x) / rms(original_)), 0.0, 1.0) << c.name;
  }
}

// ---------------------------------------------------------------------------------------------
// Bad input

TEST(DecodeErrors, MissingDirectoryEmpty) {
  TempDir tmp;
  const auto missing = tmp / "nope.wav";
  expect_error([&] { decode_file(missing.string()); }, missing, "no such file");
  expect_error([&] { AudioReader r(tmp.path().string()); }, tmp.path(), "directory");
  const auto empty = tmp / "empty.flac";
  write_bytes(empty, "");
  expect_error([&] { decode_file(empty.string()); }, empty, "empty file");
}

// FFmpeg reads some 300 formats; earmark lets it use the common audio ones only, so a crafted
// file cannot reach a rare demuxer's code (13 bytes named .vqe made FFmpeg's VQF demuxer leak,
// found by fuzz_upload). The message names what FFmpeg took the file for.
TEST(DecodeErrors, RareFormatRefused) {
  TempDir tmp;
  const auto vqe = tmp / "a.vqe";
  write_bytes(vqe, std::string("RIFF\xea\x0cNF\xf8\0UUU", 13));
  expect_error([&] { decode_file(vqe.string()); }, vqe, "'vqf', a format earmark does not read");
}

TEST(DecodeErrors, NotAudio) {
  TempDir tmp;
  const auto text = tmp / "notes.wav";
  write_bytes(text, "This is a text file, not a RIFF/WAVE file.\nSecond line.\n");
  expect_error([&] { decode_file(text.string()); }, text, "");

  // Random bytes named .mp3 (fixed seed): either unrecognised or nothing decodable.
  const auto noise = tmp / "noise.mp3";
  std::mt19937 rng(1234);
  std::string bytes(8192, '\0');
  for (auto& b : bytes) b = char(rng() & 0xff);
  write_bytes(noise, bytes);
  expect_error([&] { decode_file(noise.string()); }, noise, "");
}

TEST(DecodeErrors, ZeroSampleWavIsAnError) {
  TempDir tmp;
  const auto path = tmp / "zero.wav";
  write_wav16(path, {}, 32000, 1);
  expect_error([&] { decode_file(path.string()); }, path, "no audio");
}

TEST(DecodeErrors, TruncatedWavKeepsWhatIsThere) {
  TempDir tmp;
  const auto path = tmp / "cut.wav";
  write_wav16(path, sine(1000.0, 2.0, 32000, 0.5), 32000, 1);
  // Keep the 44-byte header and the first second: 44 + 32000 * 2 bytes.
  const std::string bytes = read_bytes(path).substr(0, 44 + 64000);
  write_bytes(path, bytes);
  AudioReader reader(path.string());
  std::vector<float> x;
  while (reader.read(x, 4096) > 0) {
  }
  EXPECT_EQ(x.size(), 32000u);
  EXPECT_EQ(reader.info().duration_s, 1.0);
  ASSERT_EQ(reader.warnings().size(), 1u);
  // Header: 2 s = 128000 bytes of data, file: 64000 of them -> 50% missing.
  EXPECT_NE(reader.warnings()[0].find("truncated"), std::string::npos) << reader.warnings()[0];
  EXPECT_NE(reader.warnings()[0].find("50.0%"), std::string::npos) << reader.warnings()[0];
  EXPECT_NE(reader.warnings()[0].find(path.string()), std::string::npos);
}

TEST(DecodeErrors, EncodedFilesCutTo100Bytes) {
  EARMARK_REQUIRE_SHARED();
  EARMARK_REQUIRE_TOOL(have_ffmpeg(), "the ffmpeg CLI");
  TempDir tmp;
  const auto src = shared_dir() / "audio" / "speech.wav";
  for (const char* name : {"cut.flac", "cut.mp3", "cut.ogg", "cut.m4a"}) {
    const auto path = tmp / name;
    ASSERT_TRUE(ffmpeg("-i " + q(src) + " -t 1 " + q(path)));
    write_bytes(path, read_bytes(path).substr(0, 100));
    try {
      const auto x = decode_file(path.string());
      // Partial output is allowed, but 100 bytes cannot hold more than a few frames.
      EXPECT_LT(x.size(), 32000u) << name;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
  }
}

TEST(DecodeErrors, FfmpegLogsStayOffStderr) {
  TempDir tmp;
  const auto text = tmp / "junk.mp3";
  std::string bytes(4096, '\0');
  std::mt19937 rng(99);
  for (auto& b : bytes) b = char(rng() & 0xff);
  write_bytes(text, bytes);
  const auto cut = tmp / "cut.wav";
  write_wav16(cut, sine(300.0, 1.0, 16000, 0.5), 16000, 1);
  write_bytes(cut, read_bytes(cut).substr(0, 1000));
  ::testing::internal::CaptureStderr();
  try {
    decode_file(text.string());
  } catch (const Error&) {
  }
  try {
    decode_file(cut.string());
  } catch (const Error&) {
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

// A small fuzz: ~200 seeded mutations of real encoded files. Each must decode to finite
// samples or throw earmark::Error naming the file; a crash or hang fails the test binary.
TEST(DecodeErrors, MutatedFilesNeverCrash) {
  EARMARK_REQUIRE_SHARED();
  EARMARK_REQUIRE_TOOL(have_ffmpeg(), "the ffmpeg CLI");
  TempDir tmp;
  const auto src = shared_dir() / "audio" / "speech.wav";
  std::mt19937_64 rng(20240601);
  int decoded = 0, rejected = 0;
  for (const char* name : {"f.flac", "f.mp3", "f.ogg", "f.wav"}) {
    const auto clean = tmp / name;
    ASSERT_TRUE(ffmpeg("-ss 4 -t 1 -i " + q(src) + " " + q(clean)));
    const std::string original = read_bytes(clean);
    ASSERT_GT(original.size(), 1000u);
    const auto path = tmp / (std::string("mut-") + name);
    for (int m = 0; m < 50; ++m) {
      std::string bytes = original;
      // Header bytes matter most: half the edits land in the first 256 bytes.
      const int edits = 1 + int(rng() % 8);
      for (int e = 0; e < edits; ++e) {
        const size_t span = (rng() % 2 == 0) ? std::min<size_t>(256, bytes.size()) : bytes.size();
        const size_t pos = size_t(rng() % span);
        if (rng() % 2 == 0)
          bytes[pos] = char(bytes[pos] ^ char(1u << (rng() % 8)));
        else
          bytes[pos] = char(rng() & 0xff);
      }
      if (m % 10 == 9) bytes.resize(size_t(rng() % bytes.size()) + 1);
      write_bytes(path, bytes);
      try {
        const auto x = decode_file(path.string());
        ++decoded;
        // One second of source at any plausible rate cannot grow beyond a minute at 32 kHz.
        EXPECT_LT(x.size(), size_t(60 * 32000)) << name << " mutation " << m;
        EXPECT_TRUE(std::all_of(x.begin(), x.end(), [](float v) { return std::isfinite(v); }))
            << name << " mutation " << m;
      } catch (const Error& e) {
        ++rejected;
        EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
      }
    }
  }
  EXPECT_EQ(decoded + rejected, 200);
  // Most single-byte damage in audio data is survivable: many mutations must still decode.
  EXPECT_GT(decoded, 50);
}

// ---------------------------------------------------------------------------------------------
// Hostile input (issue 14 item 9)

// A 32-bit float WAV (format 3) of `x`, mono.
void write_wav_f32(const fs::path& p, const std::vector<float>& x, int rate) {
  std::string b;
  auto u32 = [&](uint32_t v) { for (int i = 0; i < 4; ++i) b += char((v >> (8 * i)) & 0xff); };
  auto u16 = [&](uint16_t v) { for (int i = 0; i < 2; ++i) b += char((v >> (8 * i)) & 0xff); };
  const uint32_t data = uint32_t(x.size() * 4);
  b += "RIFF";
  u32(36 + data);
  b += "WAVEfmt ";
  u32(16);
  u16(3);  // IEEE float
  u16(1);
  u32(uint32_t(rate));
  u32(uint32_t(rate) * 4);
  u16(4);
  u16(32);
  b += "data";
  u32(data);
  b.append(reinterpret_cast<const char*>(x.data()), x.size() * 4);
  write_bytes(p, b);
}

TEST(DecodeHostile, NamedPipeIsRefusedNotWaitedOn) {
  TempDir tmp;
  const auto fifo = tmp / "pipe.wav";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto opened = std::async(std::launch::async, [&] {
    return earmark::testing::error_of([&] { AudioReader r(fifo.string()); });
  });
  if (opened.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    // Unblock the reader (open and close the other end, as often as it opens the pipe again)
    // so that the test ends, then fail.
    while (opened.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
      const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) ::close(fd);
    }
    FAIL() << "AudioReader blocked on a named pipe";
  }
  const std::string msg = opened.get();
  EXPECT_NE(msg.find(fifo.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
  expect_error([&] { decode_file("/dev/zero"); }, "/dev/zero", "not a regular file");
}

TEST(DecodeHostile, AllNanOrInfFloatAudioIsAnError) {
  TempDir tmp;
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    const auto path = tmp / "bad.wav";
    write_wav_f32(path, std::vector<float>(32000 * 2, bad), 32000);
    expect_error([&] { decode_file(path.string()); }, path, "NaN or infinite");
  }
}

// Found by fuzz/fuzz_upload: a 333-byte WAV (WAVE_FORMAT_EXTENSIBLE, a LIST chunk claiming 2 GB)
// made FFmpeg's demuxer zero-fill a 1.7 GB buffer while opening it: one small upload could
// exhaust the service's memory. FFmpeg's single allocations are capped now; the file is refused
// with a clear error and the process does not grow.
TEST(DecodeHostile, AHeaderClaimingGigabytesAllocatesNothingLarge) {
  static const unsigned char bytes[] = {
      0x52, 0x49, 0x46, 0x46, 0xea, 0x0c, 0x00, 0x00, 0x57, 0x41, 0x56, 0x45, 0x66, 0x6d, 0x74, 0x20,
      0x28, 0x00, 0x00, 0x00, 0xfe, 0xff, 0x02, 0x00, 0x40, 0x1f, 0x00, 0x00, 0x00, 0xfa, 0x00, 0x00,
      0x08, 0x00, 0x01, 0x00, 0x60, 0xd0, 0x00, 0x01, 0x70, 0xbb, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71, 0x66, 0x61, 0x63, 0x74,
      0x04, 0x00, 0x00, 0x00, 0x90, 0x01, 0x00, 0x00, 0x4c, 0x49, 0x53, 0x54, 0x1a, 0x00, 0x00, 0x80,
      0x49, 0x4e, 0x46, 0x4f, 0x49, 0x53, 0x46, 0x54, 0x0e, 0x00, 0x00, 0x00, 0x4c, 0x61, 0x76, 0x66,
      0x2e, 0x77, 0x61, 0x76, 0x0a, 0x52, 0x49, 0x46, 0x46, 0xea, 0x0c, 0x00, 0x00, 0x57, 0x41, 0x56,
      0x45, 0x66, 0x6d, 0x74, 0x20, 0x28, 0x00, 0x00, 0x00, 0xfe, 0xff, 0x02, 0x00, 0x40, 0x1f, 0x00,
      0x00, 0x00, 0xfa, 0x00, 0x00, 0x08, 0x00, 0x01, 0x00, 0x60, 0xd0, 0x00, 0x01, 0x70, 0xbb, 0x00,
      0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b,
      0x71, 0x66, 0x61, 0x63, 0x74, 0x04, 0x00, 0x00, 0x00, 0x90, 0x01, 0x00, 0x00, 0x4c, 0x49, 0x53,
      0x54, 0x1a, 0x00, 0x00, 0x80, 0x49, 0x4e, 0x46, 0x4f, 0x49, 0x53, 0x46, 0x54, 0x0e, 0x00, 0x00,
      0x00, 0x4c, 0x61, 0x76, 0x66, 0x35, 0x39, 0x2e, 0x32, 0x37, 0x2e, 0x31, 0x30, 0x30, 0x28, 0x00,
      0x64, 0x61, 0x74, 0x61, 0x80, 0x0c, 0x00, 0x00, 0xff, 0xff, 0xff, 0xfb, 0x00, 0x00, 0x84, 0x84,
      0xb0, 0x61, 0x4b, 0xbd, 0xb0, 0x4b, 0xbd, 0x51, 0x6a, 0x92, 0xbd, 0xd0, 0x00, 0x0c, 0xea, 0xf1,
      0xbd, 0xf3, 0xc3, 0xb2, 0xbd, 0x0c, 0xcb, 0xb1, 0xbd, 0x0c, 0xcb, 0xb1, 0x66, 0x35, 0x39, 0x2e,
      0x32, 0x37, 0x2e, 0x31, 0x30, 0x30, 0x28, 0x00, 0x64, 0x61, 0x74, 0x61, 0x80, 0x0c, 0x00, 0x00,
      0xff, 0xff, 0xff, 0xfb, 0x00, 0x00, 0x84, 0x84, 0xb0, 0x61, 0x4b, 0xbd, 0xb0, 0x4b, 0xbd, 0x51,
      0x6a, 0x92, 0xbd, 0xd0, 0x00, 0x0c, 0xea, 0xf1, 0xbd, 0xf3, 0xc3, 0xb2, 0xbd, 0x0c, 0xcb, 0xb1,
      0xbd, 0x0c, 0xcb, 0xb1, 0xbd, 0xd2, 0xc8, 0x9b, 0xbd, 0xd2, 0xc8, 0x9b, 0xbd, 0x2f, 0xc8, 0x66,
      0xbd, 0x2f, 0xc8, 0x66, 0xbd, 0xb5, 0x5d, 0xf5, 0xbc, 0xb5, 0x5d, 0xf5, 0xbc,
  };
  TempDir tmp;
  const auto path = tmp / "list-2gb.wav";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes), sizeof bytes);
  auto peak_mb = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_maxrss) / 1024.0;
  };
  const double before = peak_mb();
  const std::string error = earmark::testing::error_of([&] { decode_file(path.string()); });
  EXPECT_NE(error.find("list-2gb.wav"), std::string::npos) << error;
  EXPECT_NE(error.find("header"), std::string::npos) << error;
  EXPECT_LT(peak_mb() - before, 256.0) << "opening a 333-byte file raised the peak memory";
}

// Found by fuzz/fuzz_decode: finite but huge float samples (3e38) came out of the resampler
// as infinity.
TEST(DecodeHostile, HugeFloatSamplesAreDamageNotAudio) {
  TempDir tmp;
  const auto path = tmp / "huge.wav";
  auto x = sine(440.0, 1.0, 8000, 0.5);
  for (size_t i = 0; i < x.size(); i += 2) x[i] = 3e38f;
  write_wav_f32(path, x, 8000);
  AudioReader reader(path.string(), 32000);
  std::vector<float> y;
  while (reader.read(y, 4096) > 0) {
  }
  ASSERT_GT(y.size(), 0u);
  for (float v : y) ASSERT_TRUE(std::isfinite(v));
  ASSERT_EQ(reader.warnings().size(), 1u);
  EXPECT_NE(reader.warnings()[0].find("4000 of 8000 samples"), std::string::npos) << reader.warnings()[0];
  const auto all = tmp / "all-huge.wav";
  write_wav_f32(all, std::vector<float>(8000, -1e30f), 8000);
  expect_error([&] { decode_file(all.string()); }, all, "NaN or infinite");
}

TEST(DecodeHostile, SomeNanSamplesAreAWarning) {
  TempDir tmp;
  const auto path = tmp / "some.wav";
  auto x = sine(440.0, 2.0, 32000, 0.5);
  for (size_t i = 0; i < 3200; ++i) x[i] = std::numeric_limits<float>::quiet_NaN();
  write_wav_f32(path, x, 32000);
  AudioReader reader(path.string());
  std::vector<float> y;
  while (reader.read(y, 4096) > 0) {
  }
  ASSERT_EQ(y.size(), x.size());
  for (float v : y) ASSERT_TRUE(std::isfinite(v));
  ASSERT_EQ(reader.warnings().size(), 1u);
  EXPECT_NE(reader.warnings()[0].find("3200 of 64000 samples"), std::string::npos) << reader.warnings()[0];
  EXPECT_NE(reader.warnings()[0].find(path.string()), std::string::npos);
}

TEST(DecodeHostile, ContentNotExtensionPicksTheDemuxer) {
  TempDir tmp;
  const auto x = sine(440.0, 1.0, 32000, 0.5);
  for (const char* name : {"wav.mp3", "wav.flac", "wav.ogg", "wav.m4a", "wav.opus"}) {
    const auto path = tmp / name;
    write_wav16(path, x, 32000, 1);
    AudioInfo info;
    std::vector<float> y;
    ASSERT_NO_THROW(y = decode_file(path.string(), 32000, &info)) << name;
    EXPECT_EQ(y.size(), x.size()) << name;
    EXPECT_EQ(info.container, "wav") << name;
  }
}

TEST(DecodeHostile, TruncatedOggIsReported) {
  EARMARK_REQUIRE_TOOL(have_ffmpeg(), "the ffmpeg CLI");
  TempDir tmp;
  const auto wav = tmp / "src.wav";
  // Long and noisy enough that the cuts below fall in the audio, not in the codec's headers.
  write_wav16(wav, white_noise(32000 * 20, 0.1), 32000, 1);
  for (const char* codec : {"libvorbis", "libopus", "flac"}) {
    const auto ogg = tmp / (std::string(codec) + ".ogg");
    ASSERT_TRUE(ffmpeg("-i " + q(wav) + " -c:a " + codec + " " + q(ogg))) << codec;
    {
      AudioReader whole(ogg.string());
      std::vector<float> y;
      while (whole.read(y, 8192) > 0) {
      }
      for (const auto& w : whole.warnings()) EXPECT_EQ(w.find("truncated"), std::string::npos) << codec << ": " << w;
    }
    const std::string bytes = read_bytes(ogg);
    for (const double keep : {0.5, 0.9}) {
      const auto cut = tmp / (std::string(codec) + "-cut.ogg");
      write_bytes(cut, bytes.substr(0, size_t(double(bytes.size()) * keep)));
      AudioReader reader(cut.string());
      std::vector<float> y;
      while (reader.read(y, 8192) > 0) {
      }
      bool said = false;
      for (const auto& w : reader.warnings()) said = said || w.find("truncated") != std::string::npos;
      EXPECT_TRUE(said) << codec << " cut to " << keep;
      EXPECT_GT(y.size(), 0u);
    }
  }
}

// ---------------------------------------------------------------------------------------------

TEST(Decode, AudioExtensions) {
  using decode::has_audio_extension;
  for (const char* yes : {"a.wav", "b.FLAC", "dir/c.Ogg", "d.oga", "e.opus", "f.mp3", "g.m4a", "h.aac", "i.mp4",
                          "j.webm", "k.mka", "l.aif", "m.AIFF", "n.wma", "o.caf", "p.au", "q.w64"})
    EXPECT_TRUE(has_audio_extension(yes)) << yes;
  for (const char* no : {"a.txt", "noext", "wav", ".wav", "x.wav.bak", "dir.wav/readme", "a.png", "a.mkv"})
    EXPECT_FALSE(has_audio_extension(no)) << no;
}

}  // namespace
