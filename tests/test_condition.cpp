// Conditioning: each step does what it says and nothing else, the stream is sample-exact
// whatever the block size, and the denoiser measurably removes noise from real speech.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <tuple>

#include <gtest/gtest.h>

#include "condition/conditioner.hpp"
#include "condition/denoiser.hpp"
#include "condition/filters.hpp"
#include "condition/quality.hpp"
#include "earmark/earmark.hpp"
#include "test_support.hpp"

namespace {

using namespace earmark::condition;
using namespace earmark::testing;
constexpr int kRate = earmark::kSampleRate;

double energy(std::span<const float> v) {
  double e = 0;
  for (float x : v) e += double(x) * x;
  return e;
}
double rms_db(std::span<const float> v) { return 10 * std::log10(energy(v) / double(v.size())); }

// 10 log10(sum s^2 / sum (y - s)^2): everything in y that is not the clean reference counts
// as noise, including what the denoiser did to the speech itself.
double snr_db(std::span<const float> clean, std::span<const float> y) {
  double e = 0, d = 0;
  for (size_t i = 0; i < clean.size(); ++i) {
    e += double(clean[i]) * clean[i];
    d += (double(y[i]) - clean[i]) * (double(y[i]) - clean[i]);
  }
  return 10 * std::log10(e / d);
}

// Mean over 20 ms frames where the clean speech is within 40 dB of its loudest frame, each
// frame's SNR clamped to [-10, 35] dB (the usual segmental SNR).
double segmental_snr_db(std::span<const float> clean, std::span<const float> y) {
  const size_t f = 640;
  double max_e = 0;
  for (size_t i = 0; i + f <= clean.size(); i += f) max_e = std::max(max_e, energy(clean.subspan(i, f)));
  double sum = 0;
  int n = 0;
  for (size_t i = 0; i + f <= clean.size(); i += f) {
    const double e = energy(clean.subspan(i, f));
    if (e < max_e * 1e-4) continue;
    double d = 0;
    for (size_t k = i; k < i + f; ++k) d += (double(y[k]) - clean[k]) * (double(y[k]) - clean[k]);
    sum += std::clamp(10 * std::log10(e / std::max(d, 1e-20)), -10.0, 35.0);
    ++n;
  }
  return sum / n;
}

std::vector<float> run_stream(const ConditionConfig& cfg, std::span<const float> x, size_t block) {
  Conditioner c(cfg);
  std::vector<float> out;
  for (size_t i = 0; i < x.size(); i += block) c.process(x.subspan(i, std::min(block, x.size() - i)), out);
  c.flush(out);
  return out;
}

// Every step off (the defaults switch loudness normalisation on), so that a test sees only
// the step it enables.
ConditionConfig steps_off() {
  ConditionConfig c;
  c.normalize.mode = "off";
  return c;
}

ConditionConfig denoise_only() {
  ConditionConfig c = steps_off();
  c.denoise.enabled = true;
  return c;
}

// ---- pass-through and stream mechanics ----------------------------------------------------

TEST(Condition, AllStepsOffIsBitExact) {
  auto x = white_noise(50000, 0.3, 5);
  x[10] = 1.5f;  // out-of-range and odd values pass untouched too
  x[11] = -0.0f;
  EXPECT_TRUE(ConditionConfig{}.any_enabled());  // loudness normalisation is on by default
  const ConditionConfig off = steps_off();
  EXPECT_FALSE(off.any_enabled());
  for (size_t block : {1u, 999u, 50000u}) {
    const auto y = run_stream(off, x, block);
    ASSERT_EQ(y.size(), x.size());
    EXPECT_EQ(0, std::memcmp(y.data(), x.data(), x.size() * sizeof(float))) << "block " << block;
  }
  const auto y = condition_buffer(x, off);
  EXPECT_EQ(0, std::memcmp(y.data(), x.data(), x.size() * sizeof(float)));
}

TEST(Condition, OutputLengthEqualsInputLength) {
  ConditionConfig cfg = steps_off();
  cfg.dc_remove.enabled = true;
  cfg.highpass.enabled = true;
  cfg.denoise.enabled = true;
  cfg.normalize.mode = "loudness";
  cfg.normalize.analysis_s = 1.0;
  for (size_t n : {0u, 1u, 255u, 256u, 767u, 768u, 1023u, 1024u, 1025u, 32001u, 100000u}) {
    const auto x = white_noise(n, 0.1, 9);
    for (size_t block : {7u, 1000u, 4096u})
      EXPECT_EQ(run_stream(cfg, x, block).size(), n) << "n " << n << " block " << block;
    EXPECT_EQ(condition_buffer(x, cfg).size(), n) << "n " << n;
  }
}

TEST(Condition, BlockSizeDoesNotChangeTheOutput) {
  EARMARK_REQUIRE_SHARED();
  auto x = shared_speech();
  const auto n = white_noise(x.size(), 0.01, 21);
  for (size_t i = 0; i < x.size(); ++i) x[i] += n[i] + 0.02f;
  ConditionConfig cfg = steps_off();
  cfg.dc_remove.enabled = true;
  cfg.highpass.enabled = true;
  cfg.denoise.enabled = true;
  cfg.normalize.mode = "loudness";
  cfg.normalize.analysis_s = 3.0;
  const auto whole = run_stream(cfg, x, x.size());
  ASSERT_EQ(whole.size(), x.size());
  for (size_t block : {1000u, 4096u}) {
    const auto y = run_stream(cfg, x, block);
    ASSERT_EQ(y.size(), x.size());
    double worst = 0;
    for (size_t i = 0; i < y.size(); ++i) worst = std::max(worst, double(std::fabs(y[i] - whole[i])));
    EXPECT_LE(worst, 1e-6) << "block " << block;
  }
}

TEST(Condition, NonFiniteInputBecomesSilenceNotNaN) {
  auto x = white_noise(40000, 0.1, 3);
  x[1000] = std::nanf("");
  x[2000] = INFINITY;
  ConditionConfig cfg = steps_off();
  cfg.highpass.enabled = true;
  cfg.denoise.enabled = true;
  const auto y = run_stream(cfg, x, 4096);
  ASSERT_EQ(y.size(), x.size());
  EXPECT_TRUE(std::all_of(y.begin(), y.end(), [](float v) { return std::isfinite(v); }));
}

TEST(Condition, MisuseIsAnErrorNotACrash) {
  Conditioner c(steps_off());
  std::vector<float> out;
  c.process(std::vector<float>(10, 0.1f), out);
  EXPECT_THROW(c.set_normalization_gain(3.0), earmark::Error);
  c.flush(out);
  EXPECT_THROW(c.flush(out), earmark::Error);
  EXPECT_THROW(c.process(std::vector<float>(10), out), earmark::Error);
  EXPECT_THROW(Conditioner(steps_off(), 0), earmark::Error);
}

TEST(Condition, ConfigValidationNamesTheKeyAndPrints) {
  ConditionConfig c = steps_off();
  EXPECT_NO_THROW(c.validate());
  c.denoise.hop = 300;  // does not divide 1024
  try {
    c.validate();
    FAIL() << "expected earmark::Error";
  } catch (const earmark::Error& e) {
    EXPECT_NE(std::string(e.what()).find("condition.denoise.hop"), std::string::npos) << e.what();
  }
  c = steps_off();
  c.normalize.mode = "rms";
  EXPECT_THROW(c.validate(), earmark::Error);
  c = steps_off();
  c.highpass.cutoff_hz = 5;
  EXPECT_THROW(c.validate(), earmark::Error);
  c = steps_off();
  c.denoise.fft_size = 1000;
  EXPECT_THROW(c.validate(), earmark::Error);
  c = steps_off();
  c.denoise.enabled = true;
  const auto text = c.to_string();
  EXPECT_NE(text.find("denoise:\n  enabled: true\n  fft_size: 1024\n  hop: 256\n"), std::string::npos) << text;
  EXPECT_NE(text.find("normalize:\n  mode: off\n"), std::string::npos) << text;
}

// ---- filters ------------------------------------------------------------------------------

TEST(Condition, DcRemovalRemovesAnOffset) {
  ConditionConfig cfg = steps_off();
  cfg.dc_remove.enabled = true;  // 5 Hz
  auto x = sine(440, 3.0, kRate, 0.3);
  for (float& v : x) v += 0.1f;
  const auto y = run_stream(cfg, x, 4096);
  // Mean over whole periods of the tone after the first second: the offset is gone...
  const size_t from = kRate, len = 2 * kRate;  // 880 full periods of 440 Hz
  const double mean = std::accumulate(y.begin() + from, y.begin() + from + len, 0.0) / double(len);
  EXPECT_LT(std::fabs(mean), 1e-4);
  // ...and the first sample already has no step (the filter starts from the first value).
  EXPECT_LT(std::fabs(y[0]), 1e-6);
  // The 440 Hz tone keeps its level: a one-pole high-pass at 5 Hz is -0.0006 dB at 440 Hz.
  EXPECT_NEAR(rms_db(std::span<const float>(y).subspan(from, len)), 20 * std::log10(0.3 / std::sqrt(2.0)), 0.01);
}

TEST(Condition, HighpassAttenuates30HzAndKeeps1kHz) {
  ConditionConfig cfg = steps_off();
  cfg.highpass.enabled = true;
  cfg.highpass.cutoff_hz = 100;
  // Steady state after 0.5 s. Butterworth, order 2: |H|^2 = r^4 / (1 + r^4) with r = f/fc:
  // 30 Hz: r^4 = 0.0081 -> -20.9 dB; 1 kHz: r^4 = 1e4 -> -0.0004 dB.
  for (auto [freq, lo, hi] : {std::tuple{30.0, -1e9, -12.0}, std::tuple{1000.0, -0.5, 0.5}}) {
    const auto x = sine(freq, 2.0, kRate, 0.5);
    const auto y = run_stream(cfg, x, 1000);
    const auto tail_in = std::span<const float>(x).subspan(kRate / 2);
    const auto tail_out = std::span<const float>(y).subspan(kRate / 2);
    const double g = rms_db(tail_out) - rms_db(tail_in);
    EXPECT_GT(g, lo) << freq << " Hz";
    EXPECT_LT(g, hi) << freq << " Hz";
    if (freq == 30.0) {
      EXPECT_NEAR(g, -20.9, 0.2);
    }
  }
  // The design itself: -3.01 dB at the cutoff.
  EXPECT_NEAR(biquad_response_db(butterworth_highpass(kRate, 100), kRate, 100), -3.01, 0.01);
}

// ---- denoiser -----------------------------------------------------------------------------

TEST(Denoiser, UnitGainReconstructsTheInput) {
  // Gain floor 0 dB forces every gain to 1: the STFT round trip alone must give the input
  // back (float rounding only), delayed by nothing.
  ConditionConfig cfg = denoise_only();
  cfg.denoise.gain_floor_db = 0;
  const auto x = white_noise(48000, 0.2, 4);
  const auto y = run_stream(cfg, x, 777);
  ASSERT_EQ(y.size(), x.size());
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, double(std::fabs(y[i] - x[i])));
  EXPECT_LT(worst, 1e-6);
}

TEST(Denoiser, ImprovesSnrOfSpeechInWhiteNoise) {
  EARMARK_REQUIRE_SHARED();
  const auto s = shared_speech();
  const double rms = std::sqrt(energy(s) / double(s.size()));
  const auto n = white_noise(s.size(), rms, 77);  // 0 dB SNR
  std::vector<float> x(s.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = s[i] + n[i];

  const auto y = run_stream(denoise_only(), x, 4096);
  ASSERT_EQ(y.size(), x.size());
  const double in_snr = snr_db(s, x), out_snr = snr_db(s, y);
  const double in_seg = segmental_snr_db(s, x), out_seg = segmental_snr_db(s, y);
  std::cout << "SNR " << in_snr << " -> " << out_snr << " dB (+" << out_snr - in_snr << "); segmental " << in_seg
            << " -> " << out_seg << " dB (+" << out_seg - in_seg << ")\n";
  EXPECT_NEAR(in_snr, 0.0, 0.1);
  EXPECT_GE(out_snr - in_snr, 5.0);
  EXPECT_GT(out_seg, in_seg);
  // And the analysis agrees that the noise floor went down.
  EXPECT_LT(analyze(y).noise_floor_dbfs, analyze(x).noise_floor_dbfs - 10.0);
}

TEST(Denoiser, ReducesStationaryNoiseByTenDecibels) {
  for (auto [name, noise] : {std::pair{"white", white_noise(size_t(10 * kRate), 0.05, 31)},
                             std::pair{"pink", pink_noise(size_t(10 * kRate), 0.05, 32)}}) {
    const auto y = run_stream(denoise_only(), noise, 4096);
    const double drop = rms_db(noise) - rms_db(y);
    std::cout << name << " noise: level down by " << drop << " dB\n";
    EXPECT_GE(drop, 10.0) << name;
  }
}

TEST(Denoiser, LeavesCleanSpeechLevelAlone) {
  EARMARK_REQUIRE_SHARED();
  const auto s = shared_speech();
  const auto y = run_stream(denoise_only(), s, 4096);
  const double change = rms_db(y) - rms_db(s);
  std::cout << "clean speech level change " << change << " dB, SNR vs input " << snr_db(s, y) << " dB\n";
  EXPECT_LT(std::fabs(change), 1.0);
}

TEST(Denoiser, FollowsANoiseLevelChange) {
  // 4 s of white noise at -40 dBFS RMS then 8 s at -30 dBFS: after the profile catches up
  // (update_time_s = 2 s) the louder noise is as suppressed as the first.
  auto x = white_noise(size_t(12 * kRate), 0.01, 41);
  for (size_t i = size_t(4 * kRate); i < x.size(); ++i) x[i] *= std::sqrt(10.0f);
  const auto y = run_stream(denoise_only(), x, 4096);
  const auto seg = [&](const std::vector<float>& v, double a, double b) {
    return rms_db(std::span<const float>(v).subspan(size_t(a * kRate), size_t((b - a) * kRate)));
  };
  const double first = seg(x, 1, 4) - seg(y, 1, 4);
  const double late = seg(x, 9, 12) - seg(y, 9, 12);
  std::cout << "suppression before " << first << " dB, after the change " << late << " dB\n";
  EXPECT_GE(first, 10.0);
  EXPECT_GE(late, 10.0);
}

TEST(Denoiser, LeadingDigitalSilenceDoesNotBreakTheEstimate) {
  // 5 s of zeros, longer than the 4 s the first estimate may wait for sound (twice
  // noise_init_s), then noise: the zeros pass as zeros, the estimate waits for the noise,
  // and the noise is suppressed.
  auto x = std::vector<float>(size_t(5 * kRate), 0.0f);
  const auto n = white_noise(size_t(8 * kRate), 0.05, 51);
  x.insert(x.end(), n.begin(), n.end());
  const auto y = run_stream(denoise_only(), x, 4096);
  ASSERT_EQ(y.size(), x.size());
  EXPECT_TRUE(std::all_of(y.begin(), y.begin() + 4 * kRate, [](float v) { return v == 0.0f; }));
  const auto tail = [&](const std::vector<float>& v) {
    return rms_db(std::span<const float>(v).subspan(size_t(7 * kRate)));
  };
  EXPECT_GE(tail(x) - tail(y), 10.0);
}

// ---- normalisation ------------------------------------------------------------------------

TEST(Normalize, PeakAndLoudnessTargets) {
  EARMARK_REQUIRE_SHARED();
  const auto s = shared_speech();  // peak -5.04 dBFS, loudness -31.9 LUFS, noise floor -50.1 dBFS
  ConditionConfig cfg = steps_off();
  cfg.normalize.mode = "peak";
  cfg.normalize.peak_target_dbfs = -3.0;
  cfg.normalize.max_noise_floor_dbfs = -30;  // the default -50 would allow only +0.1 dB here
  GainDecision d;
  auto y = condition_buffer(s, cfg, kRate, &d);
  EXPECT_NEAR(d.gain_db, 2.04, 0.01);
  EXPECT_TRUE(d.limited_by.empty());
  EXPECT_NEAR(analyze(y).peak_dbfs, -3.0, 0.01);

  // Loudness -23 wants +8.9 dB, the -1 dBFS peak ceiling allows only +4.04 dB.
  cfg.normalize.mode = "loudness";
  y = condition_buffer(s, cfg, kRate, &d);
  EXPECT_NEAR(d.wanted_db, -23.0 - analyze(s).loudness_lufs, 1e-9);
  EXPECT_EQ(d.limited_by, "peak_ceiling_dbfs");
  EXPECT_NEAR(analyze(y).peak_dbfs, -1.0, 0.01);

  // Loudness -35: attenuation, no guard involved.
  cfg.normalize.loudness_target_lufs = -35;
  y = condition_buffer(s, cfg, kRate, &d);
  EXPECT_LT(d.gain_db, 0);
  EXPECT_NEAR(analyze(y).loudness_lufs, -35.0, 0.05);

  // Streaming with a gain from a first analysis pass gives the two-pass result.
  Conditioner c(cfg);
  c.set_normalization_gain(normalization_gain(cfg.normalize, analyze(s)).gain_db);
  std::vector<float> z;
  c.process(s, z);
  c.flush(z);
  ASSERT_EQ(z.size(), y.size());
  for (size_t i = 0; i < z.size(); i += 997) ASSERT_FLOAT_EQ(z[i], y[i]);
}

TEST(Normalize, GuardsLimitTheGainOnNearSilentNoise) {
  // White noise at -70 dBFS RMS (peak about -58 dBFS) and nothing else.
  const auto x = white_noise(size_t(5 * kRate), std::pow(10.0, -70.0 / 20), 61);
  const auto r = analyze(x);
  ConditionConfig cfg = steps_off();
  cfg.normalize.mode = "peak";  // -1 dBFS wants about +57 dB
  cfg.normalize.max_gain_db = 20;
  cfg.normalize.max_noise_floor_dbfs = -30;  // allows ~+40 dB: max_gain_db is the limit
  GainDecision d;
  auto y = condition_buffer(x, cfg, kRate, &d);
  EXPECT_NEAR(d.wanted_db, -1.0 - r.peak_dbfs, 1e-9);
  EXPECT_GT(d.wanted_db, 50);
  EXPECT_EQ(d.gain_db, 20.0);
  EXPECT_EQ(d.limited_by, "max_gain_db");
  EXPECT_NEAR(rms_db(y) - rms_db(x), 20.0, 0.01);

  cfg.normalize.max_noise_floor_dbfs = -60;  // the floor (about -70.3) may rise by ~10 dB only
  y = condition_buffer(x, cfg, kRate, &d);
  EXPECT_EQ(d.limited_by, "max_noise_floor_dbfs");
  EXPECT_NEAR(d.gain_db, -60.0 - r.noise_floor_dbfs, 1e-9);
  EXPECT_NEAR(d.gain_db, 10.3, 0.5);
  EXPECT_NEAR(analyze(y).noise_floor_dbfs, -60.0, 0.05);

  // A floor already above the limit is not attenuated by the guard, just not amplified.
  cfg.normalize.max_noise_floor_dbfs = -80;
  (void)condition_buffer(x, cfg, kRate, &d);
  EXPECT_EQ(d.gain_db, 0.0);

  // Streaming with the leading analysis window applies the same guard.
  cfg.normalize.max_noise_floor_dbfs = -60;
  cfg.normalize.analysis_s = 2.0;
  Conditioner c(cfg);
  std::vector<float> out;
  c.process(x, out);
  c.flush(out);
  ASSERT_TRUE(c.normalization().has_value());
  EXPECT_EQ(c.normalization()->limited_by, "max_noise_floor_dbfs");
  EXPECT_NEAR(c.normalization()->gain_db, 10.3, 0.5);
}

TEST(Normalize, DigitalSilenceGetsNoGain) {
  ConditionConfig cfg = steps_off();
  cfg.normalize.mode = "loudness";
  GainDecision d;
  const auto y = condition_buffer(std::vector<float>(1000, 0.0f), cfg, kRate, &d);
  EXPECT_EQ(d.gain_db, 0.0);
  EXPECT_TRUE(std::all_of(y.begin(), y.end(), [](float v) { return v == 0.0f; }));
}

}  // namespace
