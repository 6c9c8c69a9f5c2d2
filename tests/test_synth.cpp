// synth: soundscapes from the real clips in shared/sounds (reproducibility, ground truth,
// levels, noise colours), plus the small I/O helpers it relies on (WAV writer, CSV reader).
#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <tuple>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "decode/decoder.hpp"
#include "synth/audible.hpp"
#include "synth/soundscape.hpp"
#include "test_support.hpp"
#include "util/csv.hpp"
#include "util/wav.hpp"

namespace {

using namespace earmark;
using namespace earmark::testing;
using synth::SoundscapeSpec;

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}

struct TsvRow {
  std::string file;
  double onset, offset;
  std::string label;
};

std::vector<TsvRow> read_tsv(const fs::path& p) {
  std::ifstream f(p);
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, "filename\tonset\toffset\tevent_label");
  std::vector<TsvRow> rows;
  while (std::getline(f, line)) {
    std::stringstream ss(line);
    TsvRow r;
    std::string on, off;
    std::getline(ss, r.file, '\t');
    std::getline(ss, on, '\t');
    std::getline(ss, off, '\t');
    std::getline(ss, r.label, '\t');
    r.onset = std::stod(on);
    r.offset = std::stod(off);
    rows.push_back(r);
  }
  return rows;
}

double energy(const std::vector<float>& x, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += double(x[i]) * x[i];
  return s;
}

class Synth : public ::testing::Test {
 protected:
  void SetUp() override {
    EARMARK_REQUIRE_SHARED();
    sounds_ = (shared_dir() / "sounds").string();
    if (!lib_) lib_ = new synth::SoundLibrary(synth::SoundLibrary::load(sounds_));
  }
  static void TearDownTestSuite() {
    delete lib_;
    lib_ = nullptr;
  }
  // A short soundscape over rain with frequent events, so tests see many of them quickly.
  SoundscapeSpec base() const {
    SoundscapeSpec s;
    s.sounds_dir = sounds_;
    s.duration_s = 60;
    s.events.mean_gap_s = 3;
    s.events.min_gap_s = 0.5;
    s.background.file = "rain";
    return s;
  }
  std::string sounds_;
  static synth::SoundLibrary* lib_;
};
synth::SoundLibrary* Synth::lib_ = nullptr;

TEST_F(Synth, LibraryTables) {
  // shared/sounds/README.md: 237 clips in 25 classes, 11 backgrounds (3 of them TV beds).
  EXPECT_EQ(lib_->clips.size(), 237u);
  std::set<std::string> classes;
  for (const auto& c : lib_->clips) classes.insert(c.label);
  EXPECT_EQ(classes.size(), 25u);
  EXPECT_EQ(lib_->backgrounds.size(), 11u);
  EXPECT_EQ(std::count_if(lib_->backgrounds.begin(), lib_->backgrounds.end(),
                          [](const synth::Background& b) { return b.kind == "tv"; }),
            3);
  const auto door = std::find_if(lib_->clips.begin(), lib_->clips.end(), [](const synth::Clip& c) { return c.label == "doorslam"; });
  ASSERT_NE(door, lib_->clips.end());
  EXPECT_EQ(door->audioset_labels, (std::vector<std::string>{"Door", "Slam"}));
}

TEST_F(Synth, SameSeedSameBytesDifferentSeedDiffers) {
  auto spec = base();
  spec.count = 2;
  spec.tv.file = "random";
  spec.noise.color = "pink";
  spec.events.overlap_prob = 0.3;
  TempDir a, b, c;
  const auto pa = synth::synthesize(spec, a.path().string());
  const auto pb = synth::synthesize(spec, b.path().string());
  // Two soundscapes (wav, tsv, json each) and the combined TSV.
  ASSERT_EQ(pa.size(), 7u);
  for (const auto& name : {"soundscape-000.wav", "soundscape-000.tsv", "soundscape-000.json", "soundscape-001.wav",
                           "soundscape-001.tsv", "soundscape-001.json", "soundscape.tsv"}) {
    ASSERT_TRUE(fs::exists(a / name)) << name;
    EXPECT_EQ(read_bytes(a / name), read_bytes(b / name)) << name;
  }
  // File 1 uses seed + 1, so the two files of one run differ as well.
  EXPECT_NE(read_bytes(a / "soundscape-000.wav"), read_bytes(a / "soundscape-001.wav"));

  spec.seed = 2;
  synth::synthesize(spec, c.path().string());
  EXPECT_NE(read_bytes(a / "soundscape-000.wav"), read_bytes(c / "soundscape-000.wav"));
  EXPECT_NE(read_bytes(a / "soundscape-000.tsv"), read_bytes(c / "soundscape-000.tsv"));
  // seed 2's first file is seed 1's second file.
  EXPECT_EQ(read_bytes(a / "soundscape-001.wav"), read_bytes(c / "soundscape-000.wav"));
}

TEST_F(Synth, GroundTruthWithinFileAndConsistent) {
  auto spec = base();
  spec.events.overlap_prob = 0.25;
  spec.annotation = "clip";  // the clips' whole spans; the audible extents are tested below
  TempDir tmp;
  synth::synthesize(spec, tmp.path().string());
  const auto rows = read_tsv(tmp / "soundscape.tsv");
  const auto manifest = nlohmann::json::parse(read_bytes(tmp / "soundscape.json"));
  // 60 s with a 3 s mean pause and ~1 s clips: a dozen or more events.
  ASSERT_GE(rows.size(), 8u);
  ASSERT_EQ(rows.size(), manifest["events"].size());
  AudioInfo info;
  const auto audio = decode::decode_file((tmp / "soundscape.wav").string(), 32000, &info);
  EXPECT_EQ(audio.size(), 60u * 32000u);
  std::map<std::string, double> clip_seconds;
  for (const auto& c : lib_->clips) clip_seconds[c.file] = c.duration_s;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const auto& m = manifest["events"][i];
    EXPECT_EQ(r.file, "soundscape.wav");
    EXPECT_GE(r.onset, 0.0);
    EXPECT_LT(r.onset, r.offset);
    EXPECT_LE(r.offset, 60.0);
    EXPECT_EQ(r.label, m["event_label"].get<std::string>());
    EXPECT_NEAR(r.onset, m["onset"].get<double>(), 0.0006);  // printed to the millisecond
    // The event lasts as long as its clip (events.csv gives durations to the millisecond).
    EXPECT_NEAR(r.offset - r.onset, clip_seconds.at(m["clip"].get<std::string>()), 0.002) << m["clip"];
    if (i > 0) {
      EXPECT_GE(r.onset, rows[i - 1].onset);
    }
  }
  EXPECT_EQ(manifest["seed"], 1);
  EXPECT_EQ(manifest["spec"]["events"]["overlap_prob"], 0.25);
  EXPECT_EQ(manifest["background"]["file"], "backgrounds/rain.flac");
}

// Default references: where each placed clip can be heard. Every TSV row lies inside its clip's
// span and equals one of the manifest's audible stretches; together they cover less than the
// clip spans (leading/trailing silence and pauses are gone) but most events keep some stretch.
TEST_F(Synth, AudibleReferencesInsideTheClipSpans) {
  auto spec = base();
  spec.events.overlap_prob = 0.25;
  TempDir tmp;
  synth::synthesize(spec, tmp.path().string());
  const auto rows = read_tsv(tmp / "soundscape.tsv");
  const auto manifest = nlohmann::json::parse(read_bytes(tmp / "soundscape.json"));
  EXPECT_EQ(manifest["spec"]["annotation"], "audible");
  size_t stretches = 0, with_stretch = 0;
  double clip_total = 0, audible_total = 0;
  std::vector<TsvRow> expected;
  for (const auto& e : manifest["events"]) {
    const double on = e["onset"].get<double>(), off = e["offset"].get<double>();
    clip_total += off - on;
    with_stretch += e["audible"].empty() ? 0 : 1;
    double prev_end = -1;
    for (const auto& a : e["audible"]) {
      const double a0 = a[0].get<double>(), a1 = a[1].get<double>();
      EXPECT_GE(a0, on - 1e-9);
      EXPECT_LE(a1, off + 1e-9);
      EXPECT_GE(a1 - a0, 0.05 - 1e-9);       // no run shorter than min_run_s
      EXPECT_GE(a0 - prev_end, prev_end < 0 ? 0.0 : 0.25 - 1e-9);  // gaps under bridge_s were joined
      prev_end = a1;
      audible_total += a1 - a0;
      expected.push_back({"", a0, a1, e["event_label"].get<std::string>()});
      ++stretches;
    }
  }
  ASSERT_EQ(rows.size(), stretches);
  for (const auto& r : rows) {
    // Printed to the millisecond.
    const auto it = std::find_if(expected.begin(), expected.end(), [&](const TsvRow& x) {
      return std::abs(x.onset - r.onset) < 6e-4 && std::abs(x.offset - r.offset) < 6e-4 && x.label == r.label;
    });
    ASSERT_NE(it, expected.end()) << r.onset << " " << r.offset << " " << r.label;
    expected.erase(it);
  }
  EXPECT_LT(audible_total, clip_total);
  EXPECT_GE(double(with_stretch), 0.8 * double(manifest["events"].size()));
}

// The audibility rule on constructed signals (synth/audible.hpp).
namespace audible_signals {
constexpr int kRate = 32000;
std::vector<float> tone(double seconds, double hz, double amp, double decay_s = 0) {
  std::vector<float> x(size_t(seconds * kRate));
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = double(i) / kRate;
    x[i] = float(amp * std::sin(2 * M_PI * hz * t) * (decay_s > 0 ? std::exp(-t / decay_s) : 1.0));
  }
  return x;
}
std::vector<float> white(size_t n, double rms, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> d(0.0, rms);
  std::vector<float> x(n);
  for (auto& v : x) v = float(d(g));
  return x;
}
void put(std::vector<float>& x, const std::vector<float>& y, double at_s) {
  const size_t at = size_t(at_s * kRate);
  for (size_t i = 0; i < y.size() && at + i < x.size(); ++i) x[at + i] += y[i];
}
}  // namespace audible_signals

TEST(SynthAudible, LeadingAndTrailingSilenceAreNotTheEvent) {
  using namespace audible_signals;
  std::vector<float> ev(size_t(3.0 * kRate), 0.0f);
  put(ev, tone(1.0, 1000, 0.1), 0.8);
  const auto bed = white(ev.size(), 0.001, 1);  // 37 dB under the tone
  const auto a = synth::audible_extent(ev, bed, kRate);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_NEAR(a[0].first, 0.8, 0.02);
  EXPECT_NEAR(a[0].second, 1.8, 0.02);
}

TEST(SynthAudible, ThreeBurstsWithPausesAreThreeEvents) {
  using namespace audible_signals;
  std::vector<float> ev(size_t(3.5 * kRate), 0.0f);
  for (double at : {0.2, 1.5, 2.8}) put(ev, tone(0.3, 700, 0.2), at);
  const std::vector<float> bed(ev.size(), 0.0f);  // no bed at all: only the clip's own peak matters
  const auto a = synth::audible_extent(ev, bed, kRate);
  ASSERT_EQ(a.size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_NEAR(a[k].first, 0.2 + 1.3 * double(k), 0.02) << k;
    EXPECT_NEAR(a[k].second, 0.5 + 1.3 * double(k), 0.02) << k;
  }
  // Pauses shorter than bridge_s are inside one event.
  std::vector<float> close(size_t(2.0 * kRate), 0.0f);
  for (double at : {0.2, 0.6, 1.0}) put(close, tone(0.3, 700, 0.2), at);
  const auto c = synth::audible_extent(close, std::vector<float>(close.size(), 0.0f), kRate);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_NEAR(c[0].first, 0.2, 0.02);
  EXPECT_NEAR(c[0].second, 1.3, 0.02);
}

TEST(SynthAudible, ATailUnderTheBedIsNotAnnotated) {
  using namespace audible_signals;
  // A 1 kHz tone decaying by 8.7 dB per 0.25 s: with no bed it is annotated until it falls
  // 35 dB under its peak (t = 0.25 s * 35 / 8.69 = 1.007 s).
  const auto ev = tone(3.0, 1000, 0.3, 0.25);
  const auto quiet = synth::audible_extent(ev, std::vector<float>(ev.size(), 0.0f), kRate);
  ASSERT_EQ(quiet.size(), 1u);
  EXPECT_NEAR(quiet[0].first, 0.0, 0.02);
  EXPECT_NEAR(quiet[0].second, 1.007, 0.03);
  // Over white noise the tail goes under the bed earlier, and the louder the bed the earlier.
  const auto soft = synth::audible_extent(ev, white(ev.size(), 0.1, 2), kRate);
  const auto loud = synth::audible_extent(ev, white(ev.size(), 0.5, 3), kRate);
  ASSERT_EQ(soft.size(), 1u);
  ASSERT_EQ(loud.size(), 1u);
  EXPECT_LT(soft[0].second, quiet[0].second - 0.05);
  EXPECT_LT(loud[0].second, soft[0].second - 0.2);
  EXPECT_GT(loud[0].second, 0.1);
  // Buried everywhere: no event at all.
  EXPECT_TRUE(synth::audible_extent(tone(1.0, 1000, 0.001), white(32000, 0.3, 4), kRate).empty());
}

// mix - bed is the events alone; in each event's span its energy over the bed's must be the
// drawn SNR (no overlaps here, so each span holds one event).
TEST_F(Synth, LocalSnrAsRequested) {
  auto spec = base();
  spec.events.snr_min_db = -5;
  spec.events.snr_max_db = 15;
  spec.noise.color = "white";
  spec.noise.snr_db = 5;
  const auto s = synth::render(spec, *lib_, 11, true);
  ASSERT_GE(s.events.size(), 8u);
  ASSERT_EQ(s.bed.size(), s.audio.size());
  double lo = 99, hi = -99;
  for (const auto& e : s.events) {
    ASSERT_FALSE(e.overlaps_previous);
    const size_t a = size_t(std::llround(e.onset * 32000)), b = size_t(std::llround(e.offset * 32000));
    double ev = 0;
    for (size_t i = a; i < b; ++i) {
      const double d = double(s.audio[i]) - s.bed[i];
      ev += d * d;
    }
    const double measured = 10 * std::log10(ev / energy(s.bed, a, b));
    EXPECT_NEAR(measured, e.snr_db, 1.0) << e.clip << " at " << e.onset;
    EXPECT_GE(e.snr_db, -5.0);
    EXPECT_LE(e.snr_db, 15.0);
    lo = std::min(lo, e.snr_db);
    hi = std::max(hi, e.snr_db);
  }
  // The draws spread over the range rather than sitting at one value.
  EXPECT_GT(hi - lo, 5.0);
}

TEST_F(Synth, GlobalSnrAsRequested) {
  auto spec = base();
  spec.events.snr_reference = "global";
  spec.events.snr_min_db = 0;
  spec.events.snr_max_db = 10;
  const auto s = synth::render(spec, *lib_, 5, true);
  ASSERT_GE(s.events.size(), 8u);
  const double bed_power = energy(s.bed, 0, s.bed.size()) / double(s.bed.size());
  for (const auto& e : s.events) {
    const size_t a = size_t(std::llround(e.onset * 32000)), b = size_t(std::llround(e.offset * 32000));
    double ev = 0;
    for (size_t i = a; i < b; ++i) {
      const double d = double(s.audio[i]) - s.bed[i];
      ev += d * d;
    }
    EXPECT_NEAR(10 * std::log10(ev / double(b - a) / bed_power), e.snr_db, 1.0) << e.clip;
  }
}

// The bed comes from its own random streams: event settings must not change it.
TEST_F(Synth, BedDoesNotDependOnEventSettings) {
  auto spec = base();
  spec.tv.file = "random";
  spec.noise.color = "brown";
  const auto a = synth::render(spec, *lib_, 3, true);
  spec.events.snr_min_db = 20;
  spec.events.snr_max_db = 30;
  spec.events.classes = {"cough"};
  const auto b = synth::render(spec, *lib_, 3, true);
  ASSERT_EQ(a.bed.size(), b.bed.size());
  const double ga = std::pow(10.0, a.mix_gain_db / 20), gb = std::pow(10.0, b.mix_gain_db / 20);
  double max_rel = 0, peak = 0;
  for (size_t i = 0; i < a.bed.size(); ++i) {
    max_rel = std::max(max_rel, std::fabs(a.bed[i] / ga - b.bed[i] / gb));
    peak = std::max(peak, std::fabs(a.bed[i] / ga));
  }
  EXPECT_LT(max_rel / peak, 1e-5);
}

TEST_F(Synth, QuietLevelAndNoClipping) {
  TempDir tmp;
  auto spec = base();
  spec.peak_dbfs = -40;
  spec.name = "quiet";
  synth::synthesize(spec, tmp.path().string());
  const auto quiet = decode::decode_file((tmp / "quiet.wav").string());
  float peak = 0;
  for (float v : quiet) peak = std::max(peak, std::fabs(v));
  // -40 dBFS = 0.01 -> stored as lrint(0.01 * 32767) = 328, read back as 328 / 32768.
  EXPECT_NEAR(20 * std::log10(peak), -40.0, 0.1);

  // Loud, overlapping events against the default -1 dBFS peak: nothing reaches full scale.
  spec.peak_dbfs = -1;
  spec.name = "loud";
  spec.events.snr_min_db = 25;
  spec.events.snr_max_db = 30;
  spec.events.overlap_prob = 0.8;
  synth::synthesize(spec, tmp.path().string());
  const std::string bytes = read_bytes(tmp / "loud.wav");
  int16_t max_abs = 0;
  for (size_t i = 44; i + 1 < bytes.size(); i += 2) {
    const auto v = int16_t(uint16_t(uint8_t(bytes[i])) | uint16_t(uint8_t(bytes[i + 1])) << 8);
    max_abs = std::max<int16_t>(max_abs, int16_t(std::abs(int(v))));
  }
  // -1 dBFS peak = 0.89125 -> 29204 of 32767.
  EXPECT_NEAR(double(max_abs), 29204.0, 1.0);
}

TEST_F(Synth, ClassAndClipSubsets) {
  auto spec = base();
  spec.events.classes = {"cough", "doorslam"};
  auto s = synth::render(spec, *lib_, 1);
  ASSERT_GE(s.events.size(), 8u);
  std::set<std::string> seen;
  for (const auto& e : s.events) seen.insert(e.label);
  EXPECT_EQ(seen, (std::set<std::string>{"cough", "doorslam"}));

  // A held-out fold: two clips named in the spec (one by its path, one by its file name) and
  // a third from a list file; nothing else may appear.
  std::vector<std::string> allowed;
  for (const auto& c : lib_->clips)
    if (c.label == "knock" && allowed.size() < 3) allowed.push_back(c.file);
  ASSERT_EQ(allowed.size(), 3u);
  TempDir tmp;
  write_text(tmp / "fold.txt", "# held-out fold\n\n  " + allowed[2] + "\r\n");
  spec = base();
  spec.events.clips = {allowed[0], fs::path(allowed[1]).filename().string()};
  spec.events.clips_file = (tmp / "fold.txt").string();
  s = synth::render(spec, *lib_, 1);
  ASSERT_GE(s.events.size(), 8u);
  std::set<std::string> clips;
  for (const auto& e : s.events) clips.insert(e.clip);
  EXPECT_EQ(clips, std::set<std::string>(allowed.begin(), allowed.end()));

  spec.events.clips = {"no-such-clip.flac"};
  try {
    synth::render(spec, *lib_, 1);
    ADD_FAILURE() << "unknown clip accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-clip.flac"), std::string::npos) << e.what();
  }
  spec = base();
  spec.events.classes = {"unicorn"};
  EXPECT_THROW(synth::render(spec, *lib_, 1), Error);
  spec = base();
  spec.background.file = "the-moon";
  EXPECT_THROW(synth::render(spec, *lib_, 1), Error);
}

TEST_F(Synth, TimingFollowsTheSpec) {
  // No overlaps: events are disjoint, pauses >= min_gap and on average mean_gap. Over 600 s
  // with a 5 s mean pause there are ~90 pauses; the exponential part (mean 4 s, sd 4 s) gives
  // a standard error of about 4 / sqrt(90) = 0.42 s, so +-1.3 s is three of them.
  auto spec = base();
  spec.duration_s = 600;
  spec.background.file = "none";
  spec.noise.color = "white";
  spec.events.mean_gap_s = 5;
  spec.events.min_gap_s = 1;
  auto s = synth::render(spec, *lib_, 21);
  ASSERT_GT(s.events.size(), 50u);
  double sum = 0;
  for (size_t i = 1; i < s.events.size(); ++i) {
    const double gap = s.events[i].onset - s.events[i - 1].offset;
    EXPECT_GE(gap, 1.0 - 1e-9);
    sum += gap;
  }
  EXPECT_NEAR(sum / double(s.events.size() - 1), 5.0, 1.3);

  // Always overlapping: each event starts 10-90 % into the previous one.
  spec.events.overlap_prob = 1.0;
  spec.events.max_events = 10;
  s = synth::render(spec, *lib_, 21);
  ASSERT_EQ(s.events.size(), 10u);
  for (size_t i = 1; i < s.events.size(); ++i) {
    const auto& p = s.events[i - 1];
    const double into = (s.events[i].onset - p.onset) / (p.offset - p.onset);
    EXPECT_TRUE(s.events[i].overlaps_previous);
    EXPECT_GE(into, 0.1 - 1e-6);
    EXPECT_LE(into, 0.9 + 1e-6);
  }
}

// Welch PSD (4096-point Hann frames, half overlap) averaged in third-octave bands from 100 Hz
// to `f_hi`; returns the least-squares slope of band level (dB) against log2(frequency).
double spectral_slope_db_per_octave(const std::vector<float>& x, int rate, double f_hi) {
  const int n = 4096;
  std::vector<double> psd(n / 2 + 1, 0.0), in(n);
  std::vector<fftw_complex> out(n / 2 + 1);
  fftw_plan plan = fftw_plan_dft_r2c_1d(n, in.data(), out.data(), FFTW_ESTIMATE);
  for (size_t start = 0; start + n <= x.size(); start += n / 2) {
    for (int i = 0; i < n; ++i) in[size_t(i)] = x[start + size_t(i)] * (0.5 - 0.5 * std::cos(2 * M_PI * i / n));
    fftw_execute(plan);
    for (size_t k = 0; k < psd.size(); ++k) psd[k] += out[k][0] * out[k][0] + out[k][1] * out[k][1];
  }
  fftw_destroy_plan(plan);
  std::vector<double> xs, ys;
  for (double lo = 100.0; lo * std::cbrt(2.0) <= f_hi; lo *= std::cbrt(2.0)) {
    const double hi = lo * std::cbrt(2.0);
    double sum = 0;
    int count = 0;
    for (size_t k = 0; k < psd.size(); ++k) {
      const double f = double(k) * rate / n;
      if (f >= lo && f < hi) {
        sum += psd[k];
        ++count;
      }
    }
    if (count == 0) continue;
    xs.push_back(std::log2(std::sqrt(lo * hi)));
    ys.push_back(10 * std::log10(sum / count));
  }
  const double mx = std::accumulate(xs.begin(), xs.end(), 0.0) / double(xs.size());
  const double my = std::accumulate(ys.begin(), ys.end(), 0.0) / double(ys.size());
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) * (xs[i] - mx);
  }
  return sxy / sxx;
}

TEST(SynthNoise, ColoursHaveTheirSlopes) {
  const size_t n = size_t(1) << 20;  // ~33 s at 32 kHz: ~500 Welch frames
  for (const auto& [colour, slope, f_hi] : {std::tuple{"white", 0.0, 12000.0}, std::tuple{"pink", -3.01, 8000.0},
                                           std::tuple{"brown", -6.02, 4000.0}}) {
    const auto x = synth::make_noise(colour, n, 32000, 42);
    // Unit RMS as documented.
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    EXPECT_NEAR(std::sqrt(ss / double(n)), 1.0, 1e-4) << colour;
    // Power falls 10*log10(2) = 3.01 dB per octave for 1/f, 6.02 dB for 1/f^2. The coloured
    // ones are fitted below 8 and 4 kHz: their discrete filters flatten towards Nyquist.
    EXPECT_NEAR(spectral_slope_db_per_octave(x, 32000, f_hi), slope, 0.2) << colour;
  }
  EXPECT_EQ(synth::make_noise("pink", 1000, 32000, 7), synth::make_noise("pink", 1000, 32000, 7));
  EXPECT_NE(synth::make_noise("pink", 1000, 32000, 7), synth::make_noise("pink", 1000, 32000, 8));
  EXPECT_THROW(synth::make_noise("purple", 10, 32000, 1), Error);
}

TEST(SynthSpec, YamlKeysAndValidation) {
  TempDir tmp;
  fs::create_directories(tmp / "specs");
  write_text(tmp / "specs" / "s.yaml", R"(
seed: 77
name: quiet-office
count: 3
duration_s: 1800
format: f32
peak_dbfs: -40
sounds_dir: ../sounds
events:
  mean_gap_s: 60
  min_gap_s: 5
  snr_db: [-5, 15]
  snr_reference: global
  overlap_prob: 0.1
  classes: [cough, knock]
  clips_file: fold1.txt
background: {file: fireplace}
tv: {file: random, level_db: -20}
noise: {color: pink, snr_db: 0}
)");
  const auto s = SoundscapeSpec::from_file((tmp / "specs" / "s.yaml").string());
  EXPECT_EQ(s.seed, 77u);
  EXPECT_EQ(s.name, "quiet-office");
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(s.duration_s, 1800);
  EXPECT_EQ(s.format, util::WavFormat::float32);
  EXPECT_EQ(s.peak_dbfs, -40);
  // Relative paths are taken from the spec file's folder.
  EXPECT_EQ(fs::path(s.sounds_dir), (tmp.path() / "sounds").lexically_normal());
  EXPECT_EQ(fs::path(s.events.clips_file), (tmp.path() / "specs" / "fold1.txt").lexically_normal());
  EXPECT_EQ(s.events.snr_min_db, -5);
  EXPECT_EQ(s.events.snr_max_db, 15);
  EXPECT_EQ(s.events.snr_reference, "global");
  EXPECT_EQ(s.events.classes, (std::vector<std::string>{"cough", "knock"}));
  EXPECT_EQ(s.background.file, "fireplace");
  EXPECT_EQ(s.tv.level_db, -20);
  EXPECT_EQ(s.noise.color, "pink");
  EXPECT_NO_THROW(s.validate());
  // The manifest's copy of the spec reads back to the same values.
  const auto j = nlohmann::json::parse(s.to_json());
  EXPECT_EQ(j["events"]["snr_db"], nlohmann::json::array({-5.0, 15.0}));
  EXPECT_EQ(j["noise"]["color"], "pink");

  EXPECT_EQ(SoundscapeSpec::from_yaml_text("events: {snr_db: 6}").events.snr_max_db, 6);

  auto expect_key_error = [](const std::string& yaml, const std::string& key) {
    try {
      SoundscapeSpec::from_yaml_text(yaml).validate();
      ADD_FAILURE() << "accepted: " << yaml;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  expect_key_error("events: {overlap_prob: 1.5}", "events.overlap_prob");
  expect_key_error("events: {snr_db: [10, 0]}", "events.snr_db");
  expect_key_error("events: {mean_gap_s: 1, min_gap_s: 2}", "events.mean_gap_s");
  expect_key_error("events: {snr_reference: peak}", "events.snr_reference");
  expect_key_error("noise: {color: purple}", "noise.color");
  expect_key_error("duration_s: 0", "duration_s");
  expect_key_error("peak_dbfs: 3", "peak_dbfs");
  expect_key_error("name: a/b", "name");
  expect_key_error("format: s24", "format");
  expect_key_error("events: {gap: 3}", "events.gap");
  expect_key_error("colour: pink", "colour");
  expect_key_error("duration_s: [1, 2]", "duration_s");
}

TEST_F(Synth, OtherRateAndFloatOutput) {
  auto spec = base();
  spec.sample_rate = 16000;
  spec.format = util::WavFormat::float32;
  spec.duration_s = 10;
  TempDir tmp;
  synth::synthesize(spec, tmp.path().string());
  AudioInfo info;
  const auto x = decode::decode_file((tmp / "soundscape.wav").string(), 16000, &info);
  EXPECT_EQ(info.codec, "pcm_f32le");
  EXPECT_EQ(info.source_rate, 16000);
  EXPECT_EQ(x.size(), 160000u);
  // float32 output and a same-rate decode: the rendered samples come back bit for bit.
  const auto s = synth::render(spec, *lib_, spec.seed);
  EXPECT_EQ(x, s.audio);
}

TEST_F(Synth, CommandLine) {
  TempDir tmp;
  write_text(tmp / "spec.yaml", "duration_s: 20\nevents: {mean_gap_s: 2, min_gap_s: 0.5}\nbackground: {file: wind}\n");
  const std::string cmd = "'" + cli_path().string() + "' synth --spec '" + (tmp / "spec.yaml").string() + "' -o '" +
                          (tmp / "out").string() + "' --sounds '" + sounds_ + "' --seed 9 --name cli --noise pink " +
                          "--noise-snr 3 --classes knock,cough --snr 0 5 > '" + (tmp / "log.txt").string() + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_bytes(tmp / "log.txt");
  for (const char* f : {"cli.wav", "cli.tsv", "cli.json"}) EXPECT_TRUE(fs::exists(tmp / "out" / f)) << f;
  const auto m = nlohmann::json::parse(read_bytes(tmp / "out" / "cli.json"));
  EXPECT_EQ(m["seed"], 9);
  EXPECT_EQ(m["spec"]["noise"]["color"], "pink");
  EXPECT_EQ(m["spec"]["events"]["snr_db"], nlohmann::json::array({0.0, 5.0}));
  EXPECT_EQ(m["spec"]["background"]["file"], "wind");
  for (const auto& e : m["events"]) {
    const auto label = e["event_label"].get<std::string>();
    EXPECT_TRUE(label == "knock" || label == "cough") << label;
  }

  const std::string bad = "'" + cli_path().string() + "' synth -o '" + (tmp / "bad").string() + "' --sounds '" +
                          sounds_ + "' --overlap 2 > '" + (tmp / "err.txt").string() + "' 2>&1";
  EXPECT_NE(std::system(bad.c_str()), 0);
  EXPECT_NE(read_bytes(tmp / "err.txt").find("events.overlap_prob"), std::string::npos) << read_bytes(tmp / "err.txt");
}

// ---------------------------------------------------------------------------------------------
// The helpers

TEST(WavWriter, RoundTripsThroughTheDecoder) {
  TempDir tmp;
  const auto s = sine(1000.0, 0.25, 32000, 0.9);
  util::write_wav((tmp / "f.wav").string(), s, 32000, 1, util::WavFormat::float32);
  EXPECT_EQ(decode::decode_file((tmp / "f.wav").string()), s);
  // 8000 samples * 4 bytes + RIFF(12) + fmt(8 + 18) + fact(12) + data(8) header bytes = 32058.
  EXPECT_EQ(fs::file_size(tmp / "f.wav"), 32058u);

  std::vector<float> clipped = {0.0f, 0.5f, -0.5f, 1.5f, -1.5f, 1.0f};
  util::write_wav((tmp / "s.wav").string(), clipped, 32000, 1, util::WavFormat::pcm16);
  const auto x = decode::decode_file((tmp / "s.wav").string());
  ASSERT_EQ(x.size(), clipped.size());
  // lrint(0.5 * 32767) = 16384 (round half to even), read back / 32768; out of range clamps to +-32767.
  const std::vector<float> expect = {0.0f, 16384 / 32768.0f, -16384 / 32768.0f, 32767 / 32768.0f, -32767 / 32768.0f,
                                     32767 / 32768.0f};
  EXPECT_EQ(x, expect);

  EXPECT_THROW(util::write_wav((tmp / "no" / "such" / "dir.wav").string(), s, 32000), Error);
  EXPECT_THROW(util::write_wav((tmp / "odd.wav").string(), clipped, 32000, 4), Error);
}

TEST(Csv, QuotesCommasAndLineEnds) {
  const auto rows = util::parse_csv("a,b,c\r\n1,\"x, y\",\"say \"\"hi\"\"\"\n\n2,,\"multi\nline\"\n3,last,");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"1", "x, y", "say \"hi\""}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"2", "", "multi\nline"}));
  EXPECT_EQ(rows[3], (std::vector<std::string>{"3", "last", ""}));
  try {
    util::parse_csv("a,b\n1,\"open\n", "t.csv");
    ADD_FAILURE() << "unterminated quote accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.csv: line 2"), std::string::npos) << e.what();
  }
  TempDir tmp;
  write_text(tmp / "t.csv", "file,class\nx.flac,cough\ny.flac\n");
  EXPECT_THROW(util::read_csv_table((tmp / "t.csv").string()), Error);
}

}  // namespace
