// detect/boundaries: event boundaries from the signal, on constructed signals with known
// onsets and offsets (white and brown noise beds, 0 dB SNR, at -1 and -40 dBFS peak).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "detect/boundaries.hpp"
#include "features/logmel.hpp"
#include "synth/soundscape.hpp"

namespace {

using namespace earmark;
constexpr int kRate = kSampleRate;

// A harmonic sound (200 Hz fundamental, 12 partials falling 3 dB each) from `on` to `off`
// seconds, with 5 ms ramps, into `x`, at RMS `rms` over its span.
void add_sound(std::vector<float>& x, double on, double off, double rms) {
  const size_t a = size_t(on * kRate), b = size_t(off * kRate), ramp = size_t(0.005 * kRate);
  std::vector<double> s(b - a);
  double ss = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const double t = double(i) / kRate;
    double v = 0;
    for (int k = 1; k <= 12; ++k) v += std::pow(10.0, -3.0 * (k - 1) / 20.0) * std::sin(2 * M_PI * 200.0 * k * t + k);
    const double g = std::min({1.0, double(i) / double(ramp), double(s.size() - i) / double(ramp)});
    s[i] = v * g;
    ss += s[i] * s[i];
  }
  const double gain = rms / std::sqrt(ss / double(s.size()));
  for (size_t i = 0; i < s.size(); ++i) x[a + i] += float(gain * s[i]);
}

struct Scene {
  std::vector<float> audio;
  detect::BandEnvelope env;
};

// `seconds` of `colour` noise with sounds at `spans`, each at `snr_db` against the bed's RMS,
// the whole scaled to `peak_dbfs`; the envelope from the same log-mel the detector computes.
Scene make_scene(const std::string& colour, double seconds, const std::vector<std::pair<double, double>>& spans,
                 double snr_db, double peak_dbfs) {
  Scene s;
  const double bed_rms = 0.05;
  s.audio = synth::make_noise(colour, size_t(seconds * kRate), kRate, 7);
  for (auto& v : s.audio) v *= float(bed_rms);
  for (const auto& [on, off] : spans) add_sound(s.audio, on, off, bed_rms * std::pow(10.0, snr_db / 20.0));
  float peak = 0;
  for (float v : s.audio) peak = std::max(peak, std::fabs(v));
  const float g = float(std::pow(10.0, peak_dbfs / 20.0) / peak);
  for (auto& v : s.audio) v *= g;
  size_t frames = 0;
  const auto mel = features::log_mel(s.audio, &frames);  // mel-major
  std::vector<float> frame_major(frames * features::kNumMels);
  for (size_t t = 0; t < frames; ++t)
    for (int m = 0; m < features::kNumMels; ++m)
      frame_major[t * features::kNumMels + size_t(m)] = mel[size_t(m) * frames + t];
  s.env.push(frame_major, frames);
  return s;
}

Event coarse(double on, double off, const std::string& label = "Sound") {
  Event e;
  e.onset = on;
  e.offset = off;
  e.label = label;
  e.class_index = 0;
  e.confidence = 0.8f;
  return e;
}

struct Case {
  std::string colour;
  double peak_dbfs;
};

class Boundaries : public ::testing::TestWithParam<Case> {};

// The score grid's boundaries are a few tenths of a second off (early onset, late offset, as
// pooling and median filtering leave them); refined, both are within 20 ms.
TEST_P(Boundaries, OnsetAndOffsetWithin20ms) {
  const auto& c = GetParam();
  const auto s = make_scene(c.colour, 12.0, {{4.03, 5.71}}, 0.0, c.peak_dbfs);
  for (const auto& [on, off] : std::vector<std::pair<double, double>>{{3.71, 5.95}, {4.35, 5.45}, {3.55, 6.4}}) {
    const auto r = detect::refine_boundaries({coarse(on, off)}, s.env, {}, 12.0);
    ASSERT_EQ(r.size(), 1u) << c.colour << " coarse " << on << "-" << off;
    EXPECT_NEAR(r[0].onset, 4.03, 0.02) << c.colour << " " << c.peak_dbfs << " coarse " << on;
    EXPECT_NEAR(r[0].offset, 5.71, 0.02) << c.colour << " " << c.peak_dbfs << " coarse " << off;
    EXPECT_EQ(r[0].label, "Sound");
    EXPECT_FLOAT_EQ(r[0].confidence, 0.8f);
  }
}

// Three sounds with one-second pauses under one coarse event are three events.
TEST_P(Boundaries, PausesSplitOneCoarseEvent) {
  const auto& c = GetParam();
  const std::vector<std::pair<double, double>> truth = {{3.0, 3.4}, {4.4, 4.8}, {5.8, 6.2}};
  const auto s = make_scene(c.colour, 12.0, truth, 0.0, c.peak_dbfs);
  const auto r = detect::refine_boundaries({coarse(2.88, 6.4)}, s.env, {}, 12.0);
  ASSERT_EQ(r.size(), 3u) << c.colour;
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_NEAR(r[k].onset, truth[k].first, 0.02) << k;
    EXPECT_NEAR(r[k].offset, truth[k].second, 0.02) << k;
  }
}

// A sound that goes on after the score grid's event ends is followed to where it stops.
TEST_P(Boundaries, EventIsNotEndedWhileItsSoundGoesOn) {
  const auto& c = GetParam();
  const auto s = make_scene(c.colour, 14.0, {{3.0, 8.0}}, 0.0, c.peak_dbfs);
  const auto r = detect::refine_boundaries({coarse(2.9, 6.6)}, s.env, {}, 14.0);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_NEAR(r[0].onset, 3.0, 0.02);
  EXPECT_NEAR(r[0].offset, 8.0, 0.02);
}

INSTANTIATE_TEST_SUITE_P(NoiseBeds, Boundaries,
                         ::testing::Values(Case{"white", -1.0}, Case{"white", -40.0}, Case{"brown", -1.0},
                                           Case{"brown", -40.0}),
                         [](const ::testing::TestParamInfo<Case>& p) {
                           return p.param.colour + (p.param.peak_dbfs < -20 ? "_quiet" : "_loud");
                         });

// Nothing in the signal stands out where the network heard something (a sound under the bed):
// the event keeps the grid's boundaries rather than vanishing.
TEST(BoundariesEdge, NoContrastKeepsTheCoarseEvent) {
  const auto s = make_scene("white", 10.0, {}, 0.0, -1.0);
  const auto r = detect::refine_boundaries({coarse(4.0, 5.0)}, s.env, {}, 10.0);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_DOUBLE_EQ(r[0].onset, 4.0);
  EXPECT_DOUBLE_EQ(r[0].offset, 5.0);
}

// Two different classes on the same sound keep their own labels; same-class events that meet
// after refinement are merged; an empty envelope changes nothing.
TEST(BoundariesEdge, ClassesStaySeparateAndSameClassMerges) {
  const auto s = make_scene("pink", 10.0, {{2.0, 5.0}}, 6.0, -1.0);
  auto a = coarse(1.8, 3.3, "Dog");
  auto b = coarse(3.6, 5.3, "Dog");
  auto d = coarse(2.2, 4.8, "Animal");
  d.class_index = 1;
  const auto r = detect::refine_boundaries({a, b, d}, s.env, {}, 10.0);
  ASSERT_EQ(r.size(), 2u);
  for (const auto& e : r) {
    EXPECT_NEAR(e.onset, 2.0, 0.02) << e.label;
    EXPECT_NEAR(e.offset, 5.0, 0.02) << e.label;
  }
  EXPECT_EQ(detect::refine_boundaries({a}, detect::BandEnvelope{}, {}, 10.0).front().onset, a.onset);
}

}  // namespace

// A long file's envelope moves to a temporary file (model.spill_after_s) and reads back the same.
TEST(BoundariesEdge, ASpilledEnvelopeReadsBackTheSame) {
  std::vector<float> frames(size_t(features::kNumMels) * 5000);
  for (size_t i = 0; i < frames.size(); ++i) frames[i] = float(std::sin(double(i) * 0.37) - 0.5);
  detect::BandEnvelope memory, disk;
  disk.spill_after(100);
  for (size_t at = 0; at < 5000; at += 700) {  // in uneven blocks, as the front half hands them on
    const size_t n = std::min<size_t>(700, 5000 - at);
    const std::span<const float> block(frames.data() + at * features::kNumMels, n * features::kNumMels);
    memory.push(block, n);
    disk.push(block, n);
  }
  ASSERT_EQ(disk.frames(), 5000u);
  ASSERT_EQ(memory.frames(), 5000u);
  for (size_t f = 0; f < 5000; ++f)
    for (int b = 0; b < detect::kEnvelopeBands; ++b) ASSERT_EQ(disk.db(f, b), memory.db(f, b)) << f << " " << b;
  for (size_t f = 4999; f-- > 0;)  // backwards, as a boundary search goes
    ASSERT_EQ(disk.db(f, 3), memory.db(f, 3)) << f;
}
