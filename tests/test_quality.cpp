// Signal quality analysis: K-weighting and loudness against BS.1770, and each anomaly kind
// detected on real speech with the defect injected (or on generated signals), at the right
// times, while the clean recording raises none.
#include <algorithm>
#include <cmath>
#include <numeric>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "condition/filters.hpp"
#include "condition/quality.hpp"
#include "earmark/earmark.hpp"
#include "test_support.hpp"

namespace {

using namespace earmark::condition;
using namespace earmark::testing;
constexpr int kRate = earmark::kSampleRate;

double rms_of(std::span<const float> v) {
  double e = 0;
  for (float x : v) e += double(x) * x;
  return std::sqrt(e / double(v.size()));
}

std::string kinds(const QualityReport& r) {
  std::string s;
  for (const auto& a : r.anomalies) s += std::string(to_string(a.kind)) + ": " + a.message + "\n";
  return s.empty() ? "(none)" : s;
}

// ---- K-weighting and loudness ------------------------------------------------------------

TEST(KWeighting, ReproducesTheStandards48kTable) {
  const auto table = k_weighting_48k_table();
  const auto ours = k_weighting(48000);
  for (int s = 0; s < 2; ++s) {
    EXPECT_NEAR(ours[s].b0, table[s].b0, 1e-11) << "stage " << s;
    EXPECT_NEAR(ours[s].b1, table[s].b1, 1e-11) << "stage " << s;
    EXPECT_NEAR(ours[s].b2, table[s].b2, 1e-11) << "stage " << s;
    EXPECT_NEAR(ours[s].a1, table[s].a1, 1e-11) << "stage " << s;
    EXPECT_NEAR(ours[s].a2, table[s].a2, 1e-11) << "stage " << s;
  }
  // The recovered analog prototype: a ~4 dB shelf near 1.68 kHz and a ~38 Hz high-pass.
  const auto p = k_weighting_prototype();
  EXPECT_NEAR(p.shelf_f0_hz, 1681.97, 0.01);
  EXPECT_NEAR(20 * std::log10(p.shelf_vh), 4.0, 0.001);
  EXPECT_NEAR(p.hp_f0_hz, 38.135, 0.001);
  EXPECT_NEAR(p.hp_q, 0.5003, 0.0001);
}

TEST(KWeighting, At32kHzHasTheResponseOfThe48kFilter) {
  const auto ref = k_weighting_48k_table();
  const auto ours = k_weighting(kRate);
  // Prewarping pins the characteristic frequencies; elsewhere the two bilinear maps differ
  // only by frequency warping, which stays small well below 16 kHz.
  for (double f : {20.0, 38.0, 100.0, 500.0, 997.0, 1682.0, 3000.0, 6000.0, 10000.0}) {
    const double r48 = biquad_response_db(ref[0], 48000, f) + biquad_response_db(ref[1], 48000, f);
    const double r32 = biquad_response_db(ours[0], kRate, f) + biquad_response_db(ours[1], kRate, f);
    EXPECT_NEAR(r32, r48, 0.1) << f << " Hz";
  }
}

TEST(Loudness, FullScale997HzSineReadsMinus3Lufs) {
  // BS.1770: a 0 dBFS 997 Hz sine reads -3.01 LKFS (mean square 1/2 -> -3.01 dB; the
  // -0.691 offset cancels the K-weighting gain of +0.691 dB at 997 Hz).
  auto r = analyze(sine(997, 5.0, kRate, 1.0));
  EXPECT_NEAR(r.loudness_lufs, -3.01, 0.05);
  // -20 dB of amplitude is -20 LU.
  auto r20 = analyze(sine(997, 5.0, kRate, 0.1));
  EXPECT_NEAR(r20.loudness_lufs, -23.01, 0.05);
  EXPECT_NEAR(r20.peak_dbfs, -20.0, 0.01);
  EXPECT_NEAR(r20.rms_dbfs, -23.01, 0.01);
}

TEST(Loudness, RelativeGateIgnoresQuietParts) {
  // 10 s of a -20 dBFS tone (-23.01 LUFS) then 10 s of the same tone 40 dB lower. Blocks are
  // 400 ms every 100 ms: 97 lie in the loud half, then 3 straddle the change with 3/4, 2/4
  // and 1/4 of their energy (all within 10 LU of the loud ones: -1.2, -3.0, -6.0 LU), and
  // the rest are quiet, 40 LU down, and fall under the relative gate. Gated mean energy:
  // (97 + 0.75 + 0.5 + 0.25) / 100 = 0.985 of the loud one -> -23.01 - 0.066 = -23.076 LUFS
  // (ungated it would be about half: -26.0).
  auto loud = sine(997, 10.0, kRate, 0.1);
  auto quiet = sine(997, 10.0, kRate, 0.001);
  loud.insert(loud.end(), quiet.begin(), quiet.end());
  EXPECT_NEAR(analyze(loud).loudness_lufs, -23.076, 0.01);
  // Below the absolute gate (-70 LUFS) nothing is measurable.
  EXPECT_EQ(analyze(sine(997, 2.0, kRate, 1e-4)).loudness_lufs, kUnmeasurableDb);
}

// ---- the real recording ------------------------------------------------------------------

TEST(Quality, CleanSpeechHasNoAnomalies) {
  EARMARK_REQUIRE_SHARED();
  const auto x = shared_speech();
  const auto r = analyze(x);
  std::cout << to_markdown(r, "speech.wav");
  // Reference values from numpy on the same samples: peak 18339/32768 -> -5.04 dBFS,
  // RMS -33.23 dBFS, 10th/95th percentile of 50 ms frame levels -50.1 / -27.1 dBFS.
  EXPECT_NEAR(r.duration_s, 10.0, 1e-9);
  EXPECT_NEAR(r.peak_dbfs, -5.04, 0.01);
  EXPECT_NEAR(r.rms_dbfs, -33.23, 0.01);
  EXPECT_NEAR(r.noise_floor_dbfs, -50.1, 0.1);
  EXPECT_NEAR(r.signal_level_dbfs, -27.1, 0.1);
  EXPECT_NEAR(r.snr_db, 23.0, 0.2);
  EXPECT_EQ(r.clipped_samples, 0);
  EXPECT_FALSE(r.hum_detected);
  EXPECT_LT(r.hum_prominence_db, 6.0);
  EXPECT_TRUE(r.anomalies.empty()) << kinds(r);
}

TEST(Quality, ClippingIsFoundWhereTheAmplifiedSpeechHitsFullScale) {
  EARMARK_REQUIRE_SHARED();
  auto x = shared_speech();
  for (float& v : x) v = std::clamp(v * 20.0f, -1.0f, 1.0f);
  const auto r = analyze(x);

  // Independent count: samples at |x| >= 0.999 in runs of at least 3.
  int64_t expected = 0, first = -1, last = -1;
  for (size_t i = 0; i < x.size();) {
    size_t j = i;
    while (j < x.size() && std::fabs(x[j]) >= 0.999f) ++j;
    if (j - i >= 3) {
      expected += int64_t(j - i);
      if (first < 0) first = int64_t(i);
      last = int64_t(j);
    }
    i = j + 1;
  }
  ASSERT_GT(expected, 1000);
  EXPECT_EQ(r.clipped_samples, expected);
  ASSERT_TRUE(r.has(AnomalyKind::clipping)) << kinds(r);
  ASSERT_FALSE(r.clipped_regions.empty());
  EXPECT_NEAR(r.clipped_regions.front().start_s, double(first) / kRate, 1e-9);
  EXPECT_NEAR(r.clipped_regions.back().end_s, double(last) / kRate, 1e-9);
  // Every clipped sample lies inside a listed region, regions are ordered and at least the
  // merge gap apart.
  int64_t inside = 0;
  for (size_t k = 0; k < r.clipped_regions.size(); ++k) {
    const auto& reg = r.clipped_regions[k];
    inside += reg.samples;
    if (k > 0) {
      EXPECT_GT(reg.start_s - r.clipped_regions[k - 1].end_s, 1.0);
    }
  }
  EXPECT_EQ(inside, expected);
  const auto clips = r.find(AnomalyKind::clipping);
  EXPECT_EQ(clips.size(), r.clipped_regions.size());
  EXPECT_NE(clips.front()->message.find("samples at full scale between"), std::string::npos);
  std::cout << kinds(r);
}

TEST(Quality, TypingRecordingHasItsRealShortClips) {
  EARMARK_REQUIRE_SHARED();
  int rate = 0;
  const auto x = read_wav16(shared_dir() / "audio" / "typing.wav", &rate);
  const auto r = analyze(x);
  // Found with numpy: key strikes hit -32768 in runs of 3 (from sample 100997, 3.156 s),
  // 4 (233615, 7.300 s) and 4 (272989, 8.531 s); two runs of 2 near 5.90 s are below
  // clip_min_run. 3 + 4 + 4 = 11.
  EXPECT_EQ(r.clipped_samples, 11);
  ASSERT_EQ(r.clipped_regions.size(), 3u);
  EXPECT_NEAR(r.clipped_regions[0].start_s, 100997.0 / kRate, 1e-9);
  EXPECT_NEAR(r.clipped_regions[1].start_s, 233615.0 / kRate, 1e-9);
  EXPECT_NEAR(r.clipped_regions[2].end_s, 272993.0 / kRate, 1e-9);
  EXPECT_EQ(r.find(AnomalyKind::clipping)[0]->message, "Clipping: 3 samples at full scale at 3.156 s");
  // 11 of 320,000 samples is under the 0.1 % error limit.
  EXPECT_EQ(r.find(AnomalyKind::clipping)[0]->severity, Severity::warning);
}

TEST(Quality, InsertedDigitalSilenceIsReportedWithItsTimes) {
  EARMARK_REQUIRE_SHARED();
  auto x = shared_speech();
  // 2 s of zeros inserted at 4.0 s: silence from 4.0 s to 6.0 s of a 12 s file.
  x.insert(x.begin() + 4 * kRate, size_t(2 * kRate), 0.0f);
  const auto r = analyze(x);
  const auto s = r.find(AnomalyKind::silence);
  ASSERT_EQ(s.size(), 1u) << kinds(r);
  // speech.wav has no exact zeros at the edges of the cut, so the run is exactly the insert
  // give or take a zero crossing.
  EXPECT_NEAR(s[0]->start_s, 4.0, 0.05);
  EXPECT_NEAR(s[0]->end_s, 6.0, 0.05);
  EXPECT_NEAR(r.silence_s, 2.0, 0.05);
  EXPECT_FALSE(r.has(AnomalyKind::dropout));
  // The silent frames are not part of the noise floor.
  EXPECT_NEAR(r.noise_floor_dbfs, -50.1, 1.0);
}

TEST(Quality, HumAt50And60HzIsDetectedWithItsFrequencyAndLevel) {
  EARMARK_REQUIRE_SHARED();
  for (double mains : {50.0, 60.0}) {
    auto x = shared_speech();
    // Peak -30 dBFS: amplitude 10^(-30/20) = 0.0316, RMS -33.0 dBFS.
    const auto hum = sine(mains, 10.0, kRate, std::pow(10.0, -30.0 / 20));
    for (size_t i = 0; i < x.size(); ++i) x[i] += hum[i];
    const auto r = analyze(x);
    ASSERT_TRUE(r.has(AnomalyKind::hum)) << mains << " Hz\n" << kinds(r);
    EXPECT_NEAR(r.hum_frequency_hz, mains, 0.1);
    EXPECT_NEAR(r.hum_level_dbfs, -33.0, 1.0);
    EXPECT_GT(r.hum_prominence_db, 20.0);
    std::cout << r.find(AnomalyKind::hum)[0]->message << "\n";
  }
}

TEST(Quality, QuietSpeechIsLowLevel) {
  EARMARK_REQUIRE_SHARED();
  auto x = shared_speech();
  // Scale the -5.04 dBFS peak to -45 dBFS.
  const float g = float(std::pow(10.0, (-45.0 + 5.04) / 20));
  for (float& v : x) v *= g;
  const auto r = analyze(x);
  EXPECT_NEAR(r.peak_dbfs, -45.0, 0.05);
  ASSERT_TRUE(r.has(AnomalyKind::low_level)) << kinds(r);
  EXPECT_NE(r.find(AnomalyKind::low_level)[0]->message.find("-45.0 dBFS"), std::string::npos);
}

TEST(Quality, SpeechInHeavyNoiseIsFlaggedAndItsSnrDrops) {
  EARMARK_REQUIRE_SHARED();
  auto x = shared_speech();
  const auto clean = analyze(x);
  // White noise 5 dB louder than the speech (SNR -5 dB over the whole file).
  const auto n = white_noise(x.size(), rms_of(x) * std::pow(10.0, 5.0 / 20), 7);
  for (size_t i = 0; i < x.size(); ++i) x[i] += n[i];
  const auto r = analyze(x);
  ASSERT_TRUE(r.has(AnomalyKind::heavy_noise)) << kinds(r);
  EXPECT_LT(r.snr_db, clean.snr_db - 10.0);
  EXPECT_EQ(r.noise_colour, NoiseColour::white);
  std::cout << "SNR estimate clean " << clean.snr_db << " dB, noisy " << r.snr_db << " dB\n";
}

TEST(Quality, NoiseColourOfGeneratedNoise) {
  const size_t n = size_t(10 * kRate);
  struct Case {
    std::vector<float> x;
    NoiseColour want;
    double slope;
  };
  const Case cases[] = {{white_noise(n, 0.05), NoiseColour::white, 0.0},
                        {pink_noise(n, 0.05), NoiseColour::pink, -3.0},
                        {brown_noise(n, 0.05), NoiseColour::brown, -6.0}};
  for (const auto& c : cases) {
    const auto r = analyze(c.x);
    std::cout << to_string(r.noise_colour) << " slope " << r.noise_slope_db_per_octave << " dB/octave\n";
    EXPECT_EQ(r.noise_colour, c.want) << r.noise_slope_db_per_octave;
    EXPECT_NEAR(r.noise_slope_db_per_octave, c.slope, 0.75);
    EXPECT_FALSE(r.hum_detected) << r.hum_prominence_db;
  }
  // White noise alone is all background: its frame levels spread by well under a dB, so the
  // SNR estimate is near 0 dB. (Pink and brown noise carry most of their power in slow
  // low-frequency swings, so their 50 ms levels spread by 7-11 dB and read as a modest SNR.)
  const auto w = analyze(cases[0].x);
  EXPECT_LT(w.snr_db, 1.5);
  EXPECT_TRUE(w.has(AnomalyKind::heavy_noise));
}

TEST(Quality, DcOffset) {
  EARMARK_REQUIRE_SHARED();
  auto x = shared_speech();
  for (float& v : x) v += 0.05f;
  const auto r = analyze(x);
  // speech.wav's own mean is -1.5e-5.
  EXPECT_NEAR(r.dc_offset, 0.05, 1e-4);
  ASSERT_TRUE(r.has(AnomalyKind::dc_offset)) << kinds(r);
  EXPECT_FALSE(analyze(shared_speech()).has(AnomalyKind::dc_offset));
}

TEST(Quality, ShortDropoutInsideSpeech) {
  EARMARK_REQUIRE_SHARED();
  auto x = shared_speech();
  // The loudest 50 ms frame of the file is inside speech; zero 30 ms in its middle.
  size_t best = 0;
  double best_e = -1;
  for (size_t f = 0; f + 1600 <= x.size(); f += 1600) {
    const double e = rms_of(std::span<const float>(x).subspan(f, 1600));
    if (e > best_e) best_e = e, best = f;
  }
  const size_t start = best + 320, len = size_t(0.03 * kRate);
  std::fill(x.begin() + std::ptrdiff_t(start), x.begin() + std::ptrdiff_t(start + len), 0.0f);
  const auto r = analyze(x);
  const auto d = r.find(AnomalyKind::dropout);
  ASSERT_EQ(d.size(), 1u) << kinds(r);
  EXPECT_NEAR(d[0]->start_s, double(start) / kRate, 0.002);
  EXPECT_NEAR(d[0]->end_s, double(start + len) / kRate, 0.002);
  EXPECT_EQ(d[0]->severity, Severity::error);
  EXPECT_FALSE(r.has(AnomalyKind::silence));
}

TEST(Quality, LongPausesBetweenBursts) {
  // 12 s of white noise at -60 dBFS with -20 dBFS tone bursts at 0-1 s, 5-6 s and 11-12 s:
  // the noise alone from 1 to 5 s (4 s) and 6 to 11 s (5 s) is a long pause (>= 3 s).
  auto x = white_noise(size_t(12 * kRate), std::pow(10.0, -60.0 / 20), 11);
  const auto tone = sine(440, 1.0, kRate, 0.1);
  for (double t : {0.0, 5.0, 11.0})
    for (size_t i = 0; i < tone.size(); ++i) x[size_t(t * kRate) + i] += tone[i];
  const auto r = analyze(x);
  const auto p = r.find(AnomalyKind::long_pause);
  ASSERT_EQ(p.size(), 2u) << kinds(r);
  EXPECT_NEAR(p[0]->start_s, 1.0, 0.06);
  EXPECT_NEAR(p[0]->end_s, 5.0, 0.06);
  EXPECT_NEAR(p[1]->start_s, 6.0, 0.06);
  EXPECT_NEAR(p[1]->end_s, 11.0, 0.06);
  EXPECT_EQ(p[0]->severity, Severity::info);
  // The noise alone has no quiet background to pause in (its SNR estimate is about 0.5 dB).
  const auto noise = analyze(white_noise(size_t(12 * kRate), std::pow(10.0, -60.0 / 20), 11));
  EXPECT_FALSE(noise.has(AnomalyKind::long_pause)) << kinds(noise);
}

TEST(Quality, ReportDoesNotDependOnBlockSize) {
  EARMARK_REQUIRE_SHARED();
  auto x = shared_speech();
  for (size_t i = 100000; i < 100000 + 20000; ++i) x[i] = 0;  // a silence, for more state
  const auto whole = to_json(analyze(x)).dump();
  for (size_t block : {1u, 1000u, 4096u}) {
    QualityAnalyzer qa;
    for (size_t i = 0; i < x.size(); i += block)
      qa.push(std::span<const float>(x).subspan(i, std::min(block, x.size() - i)));
    EXPECT_EQ(to_json(qa.finish()).dump(), whole) << "block " << block;
  }
}

TEST(Quality, EmptyShortAndNonFiniteInputs) {
  const auto empty = analyze({});
  EXPECT_EQ(empty.samples, 0);
  EXPECT_TRUE(empty.anomalies.empty());
  EXPECT_EQ(empty.loudness_lufs, kUnmeasurableDb);

  const auto zeros = analyze(std::vector<float>(size_t(kRate), 0.0f));
  EXPECT_TRUE(zeros.has(AnomalyKind::silence));
  EXPECT_TRUE(zeros.has(AnomalyKind::low_level));
  EXPECT_EQ(zeros.peak_dbfs, kUnmeasurableDb);

  const auto tiny = analyze(sine(1000, 0.01, kRate, 0.5));  // 320 samples, shorter than a frame
  EXPECT_NEAR(tiny.peak_dbfs, -6.02, 0.05);
  EXPECT_GT(tiny.loudness_lufs, -12.0);

  auto bad = sine(1000, 1.0, kRate, 0.5);
  bad[100] = std::nanf("");
  bad[200] = INFINITY;
  const auto r = analyze(bad);
  EXPECT_NEAR(r.peak_dbfs, -6.02, 0.05);
  EXPECT_TRUE(std::isfinite(r.rms_dbfs));
  EXPECT_NO_THROW((void)to_json(r).dump());

  QualityAnalyzer qa;
  qa.push(bad);
  (void)qa.finish();
  EXPECT_THROW(qa.push(bad), earmark::Error);
}

TEST(Quality, ConfigValidationNamesTheKey) {
  QualityConfig c;
  EXPECT_NO_THROW(c.validate());
  c.clip_level = 1.5;
  try {
    c.validate();
    FAIL() << "expected earmark::Error";
  } catch (const earmark::Error& e) {
    EXPECT_NE(std::string(e.what()).find("quality.clip_level"), std::string::npos) << e.what();
  }
  c = {};
  c.dropout_min_s = 1.0;  // not shorter than silence_min_s
  EXPECT_THROW(c.validate(), earmark::Error);
  c = {};
  c.frame_s = 0;
  EXPECT_THROW(QualityAnalyzer{c}, earmark::Error);
  EXPECT_THROW((QualityAnalyzer{QualityConfig{}, 100}), earmark::Error);
}

TEST(Quality, JsonAndMarkdown) {
  EARMARK_REQUIRE_SHARED();
  auto x = shared_speech();
  for (float& v : x) v = std::clamp(v * 20.0f, -1.0f, 1.0f);
  const auto r = analyze(x);
  const auto j = to_json(r);
  EXPECT_EQ(j["samples"], 320000);
  EXPECT_EQ(j["clipping"]["samples"], r.clipped_samples);
  ASSERT_FALSE(j["anomalies"].empty());
  EXPECT_EQ(j["anomalies"][0]["kind"], to_string(r.anomalies[0].kind));
  EXPECT_TRUE(j["hum"].contains("frequency_hz"));
  const auto md = to_markdown(r);
  EXPECT_NE(md.find("| Peak |"), std::string::npos);
  EXPECT_NE(md.find("`clipping`"), std::string::npos);
  // Counts in messages carry thousands separators.
  const auto clips = r.find(AnomalyKind::clipping);
  for (size_t k = 0; k < r.clipped_regions.size(); ++k)
    if (r.clipped_regions[k].samples >= 1000) {
      EXPECT_NE(clips[k]->message.find(','), std::string::npos) << clips[k]->message;
    }
}

}  // namespace
