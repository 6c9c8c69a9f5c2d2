// Tuning of per-class thresholds/median filters and the naive baseline, on hand-built score
// grids whose best settings can be worked out by hand.
#include <cmath>
#include <set>

#include <gtest/gtest.h>

#include "detect/events.hpp"
#include "detect/naive.hpp"
#include "earmark/config.hpp"
#include "earmark/earmark.hpp"
#include "eval/metrics.hpp"
#include "eval/tune.hpp"
#include "earmark/synth.hpp"
#include "earmark/tune.hpp"
#include "test_support.hpp"

namespace earmark {
namespace {

using eval::EventTable;
using eval::TuneConfig;
using eval::TuneFile;

Event ev(double on, double off, const std::string& label) {
  Event e;
  e.onset = on, e.offset = off, e.label = label;
  return e;
}

// A grid of 40 frames x 0.5 s (20 s) with a background score of 0.05 and blocks set by the test.
struct Grid {
  FrameScores s;
  Grid(std::vector<std::string> labels, int frames = 40, double hop = 0.5) {
    s.hop_s = hop;
    s.frames = frames;
    s.labels = std::move(labels);
    s.values.assign(size_t(frames) * s.labels.size(), 0.05f);
  }
  Grid& set(int cls, int from, int to, float v) {  // frames [from, to], inclusive
    for (int f = from; f <= to; ++f) s.values[size_t(f) * s.labels.size() + size_t(cls)] = v;
    return *this;
  }
};

// Base with no merging and no minimum duration, so that only the searched settings matter.
EventsConfig plain_base() {
  EventsConfig e;
  e.threshold_on = 0.3;
  e.threshold_off = 0.15;
  e.median_s = 0;
  e.merge_gap_s = 0;
  e.min_duration_s = 0;
  return e;
}

// Class "bark": true events on frames 4-7 ([2, 4) s) and 20-23 ([10, 12) s) at 0.6, and two
// distractor bumps at 0.4 on frames 12-13 and 30-31 that the reference does not list.
void add_bark(Grid& g, int cls) { g.set(cls, 4, 7, 0.6f).set(cls, 20, 23, 0.6f).set(cls, 12, 13, 0.4f).set(cls, 30, 31, 0.4f); }
void ref_bark(EventTable& ref, const std::string& file) {
  ref.add(file, ev(2.0, 4.0, "bark"));
  ref.add(file, ev(10.0, 12.0, "bark"));
}
// Class "meow": one event on frames 4-11 ([2, 6) s) at 0.8 with a one-frame dropout (frame 8 at
// 0.05), and a one-frame spike at 0.9 on frame 25 that is not an event.
void add_meow(Grid& g, int cls) { g.set(cls, 4, 11, 0.8f).set(cls, 8, 8, 0.05f).set(cls, 25, 25, 0.9f); }
void ref_meow(EventTable& ref, const std::string& file) { ref.add(file, ev(2.0, 6.0, "meow")); }

TEST(Tune, PicksTheThresholdBetweenDistractorsAndEventsAndTheMiddleOfAPlateau) {
  Grid g({"bark"});
  add_bark(g, 0);
  EventTable ref;
  ref_bark(ref, "a.wav");
  TuneConfig tc;
  tc.min_events = 1;
  // on 0.2, 0.3 (off 0.1, 0.15): the 0.4 bumps become events too: 4 detections, 2 hits,
  //   P = 2/4, R = 2/2, F1 = 2PR/(P+R) = 2(0.5)(1)/1.5 = 0.667.
  // on 0.45, 0.5, 0.55 (off 0.225 .. 0.275): only the 0.6 blocks reach "on"; the bumps (0.4)
  //   are above "off" but a run needs one frame >= on: F1 = 1. Middle of the three: 0.5.
  // on 0.7: nothing is detected: F1 = 0.
  tc.thresholds = {0.2, 0.3, 0.45, 0.5, 0.55, 0.7};
  // Median 5 also reaches F1 = 1 (it erases the two-frame bumps: frame 12's window 10..14 holds
  // 0.05, 0.05, 0.4, 0.4, 0.05 -> 0.05) but only ties median 1, and the shorter filter wins ties.
  tc.median_frames = {1, 5};
  const auto r = eval::tune_events({{"a.wav", g.s, 20.0}}, ref, plain_base(), tc);
  ASSERT_EQ(r.classes.size(), 1u);
  const auto& c = r.classes[0];
  EXPECT_EQ(c.label, "bark");
  EXPECT_EQ(c.n_ref, 2);
  ASSERT_TRUE(c.tuned) << c.note;
  EXPECT_NEAR(c.f1_base, 2.0 / 3.0, 1e-9);  // base on 0.3: the F1 worked out above
  EXPECT_DOUBLE_EQ(c.f1_tuned, 1.0);
  EXPECT_DOUBLE_EQ(c.setting.on, 0.5);
  EXPECT_DOUBLE_EQ(c.setting.off, 0.25);      // 0.5 x off ratio 0.5
  EXPECT_DOUBLE_EQ(c.setting.median_s, 0.5);  // 1 frame x 0.5 s
  ASSERT_EQ(r.events.per_class.count("bark"), 1u);
  EXPECT_DOUBLE_EQ(r.events.per_class.at("bark").on, 0.5);
}

TEST(Tune, PicksTheMedianFilterThatBridgesADropoutAndRemovesASpike) {
  Grid g({"meow"});
  add_meow(g, 0);
  EventTable ref;
  ref_meow(ref, "a.wav");
  TuneConfig tc;
  tc.min_events = 1;
  tc.thresholds = {0.5};
  tc.median_frames = {1, 3};
  // Median 1: detections [2, 4), [4.5, 6), [12.5, 13). Against the reference [2, 6): the first
  //   has its offset 2 s off (tolerance max(0.2, 0.2 x 4 s) = 0.8 s), the second its onset 2.5
  //   s off: no hit, F1 = 0.
  // Median 3: frame 8's window holds 0.8, 0.05, 0.8 -> 0.8 (bridged); frame 25's 0.05, 0.9,
  //   0.05 -> 0.05 (gone); the block's edges keep 0.8 (two of three values): one detection
  //   [2, 6), F1 = 1.
  const auto r = eval::tune_events({{"a.wav", g.s, 20.0}}, ref, plain_base(), tc);
  ASSERT_EQ(r.classes.size(), 1u);
  ASSERT_TRUE(r.classes[0].tuned) << r.classes[0].note;
  EXPECT_DOUBLE_EQ(r.classes[0].f1_base, 0.0);  // base: median off, on 0.3 -> as median 1
  EXPECT_DOUBLE_EQ(r.classes[0].f1_tuned, 1.0);
  EXPECT_DOUBLE_EQ(r.classes[0].setting.median_s, 1.5);  // 3 frames x 0.5 s
  EXPECT_DOUBLE_EQ(r.classes[0].setting.on, 0.5);
}

TEST(Tune, TunedConfigurationReproducesTheSearchOnTheFullGrid) {
  // Two files, two classes, plus a class without reference events; the written per_class
  // entries must give the same result through find_events on the whole grid.
  Grid a({"bark", "meow", "quack"}), b({"bark", "meow", "quack"});
  add_bark(a, 0);
  add_meow(a, 1);
  add_meow(b, 1);
  a.set(2, 15, 16, 0.5f);  // quack scores high but is never in the reference
  EventTable ref;
  ref_bark(ref, "a.wav");
  ref_meow(ref, "a.wav");
  ref_meow(ref, "b.wav");
  TuneConfig tc;
  tc.min_events = 1;
  tc.thresholds = {0.2, 0.3, 0.45, 0.5, 0.55, 0.7};
  tc.median_frames = {1, 3};
  const std::vector<TuneFile> files = {{"a.wav", a.s, 20.0}, {"b.wav", b.s, 20.0}};
  std::vector<std::pair<size_t, size_t>> calls;
  tc.progress = [&](size_t done, size_t total) { calls.emplace_back(done, total); };
  const auto r = eval::tune_events(files, ref, plain_base(), tc);
  ASSERT_EQ(r.classes.size(), 3u);
  // Progress: the base, 6 x 2 settings for the two tuned classes at once, the start of pass 2,
  // then each of the two classes with every setting and its base one: 2 + 12 + 2 x 13 passes.
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), std::make_pair(size_t(39), size_t(40)));
  for (size_t i = 1; i < calls.size(); ++i) EXPECT_EQ(calls[i].first, calls[i - 1].first + 1);
  EXPECT_TRUE(r.classes[0].tuned);
  EXPECT_TRUE(r.classes[1].tuned);
  EXPECT_FALSE(r.classes[2].tuned);
  EXPECT_EQ(r.classes[2].n_ref, 0);
  EXPECT_EQ(r.classes[2].note, "no reference events in the tune split");
  EXPECT_EQ(r.events.per_class.count("quack"), 0u);
  // bark: median 3 keeps the bumps (frame 12: 0.05, 0.4, 0.4 -> 0.4) so it ties median 1 at
  // F1 = 1 and median 1 wins; meow needs median 3 (previous test) with on in 0.45..0.55
  // (0.2 and 0.3 also work for meow: its only sub-event score is 0.05) -> plateau 0.2..0.55,
  // middle of the five tied values 0.2, 0.3, 0.45, 0.5, 0.55 is 0.45.
  EXPECT_DOUBLE_EQ(r.events.per_class.at("bark").median_s, 0.5);
  EXPECT_DOUBLE_EQ(r.events.per_class.at("meow").median_s, 1.5);
  EXPECT_DOUBLE_EQ(r.events.per_class.at("meow").on, 0.45);

  const auto est = eval::detect_all(files, r.events);
  const auto res = eval::event_based(eval::restrict_files(ref, files), est);
  // quack's two-frame 0.5 block exceeds the base on-threshold 0.3: one false alarm left, in a
  // class that has no reference events (F1 NaN, out of the macro mean).
  EXPECT_EQ(res.micro.tp, 4);
  EXPECT_EQ(res.micro.fp, 1);
  EXPECT_DOUBLE_EQ(res.macro.f1, 1.0);
}

TEST(Tune, KeepsTheBaseWhenNothingBeatsItOrNothingIsFound) {
  Grid g({"bark"});
  add_bark(g, 0);
  EventTable ref;
  ref_bark(ref, "a.wav");
  EventsConfig base = plain_base();
  base.threshold_on = 0.5;  // already optimal (F1 = 1, see the first test)
  base.threshold_off = 0.25;
  TuneConfig tc;
  tc.min_events = 1;
  tc.thresholds = {0.2, 0.5};
  tc.median_frames = {1};
  auto r = eval::tune_events({{"a.wav", g.s, 20.0}}, ref, base, tc);
  EXPECT_FALSE(r.classes[0].tuned);
  EXPECT_EQ(r.classes[0].note, "no setting beats the base setting");
  EXPECT_DOUBLE_EQ(r.classes[0].f1_base, 1.0);
  EXPECT_TRUE(r.events.per_class.empty());

  tc.thresholds = {0.7, 0.9};  // above every score: nothing is ever detected
  r = eval::tune_events({{"a.wav", g.s, 20.0}}, ref, plain_base(), tc);
  EXPECT_FALSE(r.classes[0].tuned);
  EXPECT_EQ(r.classes[0].note, "no setting found any of its reference events");
}

TEST(Tune, ClassesWithTooFewEventsKeepTheBase) {
  Grid g({"bark"});
  add_bark(g, 0);
  EventTable ref;
  ref_bark(ref, "a.wav");  // two events; the first test shows tuning would find F1 = 1
  TuneConfig tc;
  tc.min_events = 3;
  const auto r = eval::tune_events({{"a.wav", g.s, 20.0}}, ref, plain_base(), tc);
  EXPECT_FALSE(r.classes[0].tuned);
  EXPECT_EQ(r.classes[0].n_ref, 2);
  EXPECT_EQ(r.classes[0].note, "only 2 reference event(s) in the tune split (minimum 3)");
  EXPECT_TRUE(r.events.per_class.empty());
}

TEST(Tune, BaseSettingOfAClassCountsAsItsBefore) {
  Grid g({"bark"});
  add_bark(g, 0);
  EventTable ref;
  ref_bark(ref, "a.wav");
  EventsConfig base = plain_base();  // global on 0.3 would give F1 0.667 ...
  base.per_class["BARK"] = {0.5, 0.25, -1, -1};  // ... but this class's own entry gives 1
  TuneConfig tc;
  tc.min_events = 1;
  tc.thresholds = {0.3};
  tc.median_frames = {1};
  const auto r = eval::tune_events({{"a.wav", g.s, 20.0}}, ref, base, tc);
  EXPECT_DOUBLE_EQ(r.classes[0].f1_base, 1.0);
  EXPECT_FALSE(r.classes[0].tuned);
  EXPECT_EQ(r.events.per_class.count("BARK"), 1u);  // left as it was
}

TEST(Tune, RefusesBadSettingsAndMismatchedGrids) {
  TuneConfig tc;
  tc.min_events = 1;
  tc.thresholds = {0.0};
  EXPECT_THROW(tc.validate(), Error);
  tc = {};
  tc.median_frames = {2};
  EXPECT_THROW(tc.validate(), Error);
  tc = {};
  tc.off_ratio = 1.5;
  EXPECT_THROW(tc.validate(), Error);
  tc = {};
  tc.min_events = 0;
  EXPECT_THROW(tc.validate(), Error);
  tc = {};
  EXPECT_NO_THROW(tc.validate());
  ASSERT_EQ(tc.thresholds.size(), 18u);  // 0.05 .. 0.90 by 0.05
  EXPECT_DOUBLE_EQ(tc.thresholds.front(), 0.05);
  EXPECT_NEAR(tc.thresholds.back(), 0.9, 1e-12);

  Grid a({"bark"}), b({"meow"});
  EXPECT_THROW(eval::tune_events({{"a", a.s, 20}, {"b", b.s, 20}}, EventTable{}, plain_base(), TuneConfig{}), Error);
  Grid c({"bark"}, 40, 0.32);
  EXPECT_THROW(eval::tune_events({{"a", a.s, 20}, {"c", c.s, 20}}, EventTable{}, plain_base(), TuneConfig{}), Error);
}

// `earmark tune` fits the settings to what detect reports (the whole events stage: boundaries
// from the signal, salience, roll-up, bursts, calibration), not to the coarse events of the
// score grid: the F1 it reports for its base and tuned configurations is the F1 of detect run
// with them. Real clips over a real background.
TEST(TuneWholeDetector, ReportedFiguresAreWhatDetectGivesWithTheConfiguration) {
  EARMARK_REQUIRE_SHARED();
  using namespace earmark::testing;
  TempDir tmp;
  synth::SoundscapeSpec spec;
  spec.sounds_dir = (shared_dir() / "sounds").string();
  spec.duration_s = 30;
  spec.count = 2;
  spec.events.mean_gap_s = 3;
  spec.events.min_gap_s = 0.5;
  spec.events.classes = {"cow", "duck", "sheep", "goat", "phone"};
  spec.background.file = "rain";
  synth::synthesize(spec, tmp.path().string());

  Config base;
  base.model.models_dir = models_dir().string();
  base.events.threshold_on = 0.8;  // too high for most of these sounds: tuning has work to do
  base.events.threshold_off = 0.4;
  TuneOptions o;
  o.inputs = {tmp.path().string()};
  o.ref = (tmp / "soundscape.tsv").string();
  o.map = (shared_dir() / "sounds" / "events.csv").string();
  o.out = (tmp / "tuned.yaml").string();
  o.config = base;
  o.holdout = 0;  // the before/after figures are then on every file
  o.min_events = 1;
  o.thresholds = {0.2, 0.5, 0.8};
  o.medians = {1, 5};
  const TuneSummary t = earmark::tune(o);
  ASSERT_EQ(t.files, 2u);
  ASSERT_GT(t.tuned_classes, 0u) << t.text;

  const auto ref = eval::read_events_tsv(o.ref);
  auto macro_f1 = [&](const Config& cfg) {
    const Detector det(cfg);
    EventTable est;
    for (const auto* name : {"soundscape-000.wav", "soundscape-001.wav"}) {
      FileResult r = det.detect_file((tmp / name).string());
      EXPECT_TRUE(r.ok()) << r.error;
      est.add_file(name);
      for (auto& e : r.events) est.add(name, std::move(e));
    }
    return eval::event_based(ref, est, {}, det.config().events.allow).macro.f1;
  };
  Config before = t.tuned;  // the dataset classes as groups, without the tuned entries
  before.events.per_class.clear();
  EXPECT_NEAR(macro_f1(before), t.event_f1_before, 1e-9) << t.text;
  EXPECT_NEAR(macro_f1(t.tuned), t.event_f1_after, 1e-9) << t.text;
  // On the files it was fitted to, the tuned configuration is no worse than the base.
  EXPECT_GE(t.event_f1_after + 1e-9, t.event_f1_before) << t.text;
}

TEST(Tune, FilesOnSeveralThreadsGiveTheSameEventsAndErrorsComeBack) {
  std::vector<TuneFile> files;
  for (int k = 0; k < 7; ++k) {
    Grid g({"bark", "meow"});
    add_bark(g, 0);
    if (k % 2) add_meow(g, 1);
    files.push_back({"f" + std::to_string(k) + ".wav", g.s, 20.0});
  }
  const auto one = eval::detect_all(files, plain_base(), {}, 1);
  const auto three = eval::detect_all(files, plain_base(), {}, 3);
  ASSERT_EQ(one.files(), three.files());
  size_t n = 0;
  for (const auto& f : one.files()) {
    const auto& a = one.events(f);
    const auto& b = three.events(f);
    ASSERT_EQ(a.size(), b.size()) << f;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].label, b[i].label);
      EXPECT_DOUBLE_EQ(a[i].onset, b[i].onset);
      EXPECT_DOUBLE_EQ(a[i].offset, b[i].offset);
    }
    n += a.size();
  }
  EXPECT_GT(n, 7u);
  // A failing file's error reaches the caller, whichever thread met it.
  const eval::FindEvents failing = [](size_t i, const EventsConfig&) -> std::vector<Event> {
    if (i == 5) throw Error("file 5 cannot be read");
    return {};
  };
  EXPECT_EQ(testing::error_of([&] { eval::detect_all(files, plain_base(), failing, 3); }), "file 5 cannot be read");
}

TEST(TuneSplit, IsASeededPartition) {
  const auto s = eval::split_files(10, 0.3, 7);
  EXPECT_EQ(s.holdout.size(), 3u);  // round(0.3 x 10)
  EXPECT_EQ(s.tune.size(), 7u);
  std::set<size_t> all(s.tune.begin(), s.tune.end());
  all.insert(s.holdout.begin(), s.holdout.end());
  EXPECT_EQ(all.size(), 10u);
  EXPECT_EQ(*all.rbegin(), 9u);
  const auto again = eval::split_files(10, 0.3, 7);
  EXPECT_EQ(again.holdout, s.holdout);
  // Over seeds 1..20 the held-out set must not always be the same three files.
  std::set<std::vector<size_t>> seen;
  for (uint64_t seed = 1; seed <= 20; ++seed) seen.insert(eval::split_files(10, 0.3, seed).holdout);
  EXPECT_GT(seen.size(), 1u);

  EXPECT_TRUE(eval::split_files(10, 0.0, 1).holdout.empty());
  EXPECT_EQ(eval::split_files(3, 0.01, 1).holdout.size(), 1u);  // round(0.03) = 0, raised to 1
  EXPECT_EQ(eval::split_files(2, 0.9, 1).tune.size(), 1u);      // round(1.8) = 2, one left to tune on
  EXPECT_EQ(eval::split_files(1, 0.5, 1).tune.size(), 1u);
  EXPECT_TRUE(eval::split_files(0, 0.5, 1).tune.empty());
  EXPECT_THROW(eval::split_files(5, 1.0, 1), Error);
  EXPECT_THROW(eval::split_files(5, -0.1, 1), Error);
}

TEST(TuneConfigFile, TunedEventsSurviveTheYamlRoundTrip) {
  // What `earmark tune --map` writes: groups per dataset class, allow = the classes, per_class
  // keyed by the group names.
  Config c;
  c.events.groups["doorslam"] = {"Door", "Slam"};
  c.events.groups["cough"] = {"Cough", "Throat clearing"};
  c.events.allow = {"doorslam", "cough"};
  c.events.per_class["doorslam"] = {0.35, 0.175, 0.96, -1};
  const Config back = Config::from_yaml_text(c.to_yaml(), "round trip");
  EXPECT_NO_THROW(back.validate());
  EXPECT_EQ(back.events.groups, c.events.groups);
  EXPECT_EQ(back.events.allow, c.events.allow);
  ASSERT_EQ(back.events.per_class.count("doorslam"), 1u);
  EXPECT_DOUBLE_EQ(back.events.per_class.at("doorslam").on, 0.35);
  EXPECT_DOUBLE_EQ(back.events.per_class.at("doorslam").off, 0.175);
  EXPECT_DOUBLE_EQ(back.events.per_class.at("doorslam").median_s, 0.96);
  EXPECT_LT(back.events.per_class.at("doorslam").min_duration_s, 0);
}

// ---- naive baseline ----

TEST(Naive, TopLabelPerStepOverAGlobalThresholdMergedPerLabel) {
  FrameScores s;
  s.hop_s = 0.48;
  s.frames = 6;
  s.labels = {"A", "B", "C"};
  s.values = {
      0.9f, 0.1f, 0.0f,  // f0: A
      0.8f, 0.7f, 0.0f,  // f1: A (B is above the threshold too, but only the top label counts)
      0.5f, 0.6f, 0.0f,  // f2: B
      0.2f, 0.1f, 0.1f,  // f3: top 0.2 < 0.3: nothing
      0.1f, 0.1f, 0.5f,  // f4: C
      0.4f, 0.0f, 0.4f,  // f5: tie A/C: the first class, A
  };
  const auto e = detect::naive_events(s, 0.3, 2.7);
  ASSERT_EQ(e.size(), 4u);
  // A over f0-f1: [0, 2 x 0.48) = [0, 0.96), peak 0.9.
  EXPECT_EQ(e[0].label, "A");
  EXPECT_DOUBLE_EQ(e[0].onset, 0.0);
  EXPECT_DOUBLE_EQ(e[0].offset, 0.96);
  EXPECT_FLOAT_EQ(e[0].confidence, 0.9f);
  EXPECT_EQ(e[0].class_index, 0);
  // B over f2: [0.96, 1.44).
  EXPECT_EQ(e[1].label, "B");
  EXPECT_DOUBLE_EQ(e[1].onset, 0.96);
  EXPECT_DOUBLE_EQ(e[1].offset, 1.44);
  // C over f4: [1.92, 2.40).
  EXPECT_EQ(e[2].label, "C");
  EXPECT_DOUBLE_EQ(e[2].onset, 1.92);
  EXPECT_DOUBLE_EQ(e[2].offset, 2.4);
  // A over f5: [2.40, 2.88) cut at the 2.7 s file length.
  EXPECT_EQ(e[3].label, "A");
  EXPECT_DOUBLE_EQ(e[3].onset, 2.4);
  EXPECT_DOUBLE_EQ(e[3].offset, 2.7);
}

TEST(Naive, ThresholdIsInclusiveAndFramesPastTheEndAreIgnored) {
  FrameScores s;
  s.hop_s = 0.48;
  s.frames = 3;
  s.labels = {"A"};
  s.values = {0.3f, 0.29f, 0.9f};
  auto e = detect::naive_events(s, 0.3, 0.96);  // frame 2 starts at 0.96: not in the file
  ASSERT_EQ(e.size(), 1u);
  EXPECT_DOUBLE_EQ(e[0].offset, 0.48);
  s.values = {0.3f, std::nanf(""), 0.9f};  // NaN counts as 0: it ends the run
  e = detect::naive_events(s, 0.3, 10.0);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_DOUBLE_EQ(e[1].onset, 0.96);
  EXPECT_DOUBLE_EQ(e[1].offset, 1.44);
}

TEST(Naive, RefusesBadInput) {
  FrameScores s;
  s.hop_s = 0.48;
  s.frames = 2;
  s.labels = {"A"};
  s.values = {0.5f};  // one value for 2 frames x 1 label
  EXPECT_THROW(detect::naive_events(s, 0.3, 1.0), Error);
  s.values = {0.5f, 0.5f};
  EXPECT_THROW(detect::naive_events(s, 1.5, 1.0), Error);
  EXPECT_THROW(detect::naive_events(s, std::nan(""), 1.0), Error);
  const auto f = detect::naive_frames_config();
  EXPECT_EQ(f.method, "windows");
  EXPECT_DOUBLE_EQ(f.window_s, 0.96);
  EXPECT_DOUBLE_EQ(f.hop_s, 0.48);
}

}  // namespace
}  // namespace earmark
