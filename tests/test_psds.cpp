// PSDS (psds_eval / sed_scores_eval definitions) on small hand-made score grids. Each
// expectation shows its arithmetic in the comment above it.
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "eval/psds.hpp"
#include "eval/tsv.hpp"
#include "test_support.hpp"

namespace ev = earmark::eval;
using earmark::Event;
using earmark::FrameScores;

namespace {

using earmark::testing::error_of;

// Scores with hop `hop` for `frames` frames; every value 0 until set.
FrameScores grid(double hop, int frames, std::vector<std::string> labels) {
  FrameScores s;
  s.hop_s = hop;
  s.frames = frames;
  s.labels = std::move(labels);
  s.values.assign(size_t(frames) * s.labels.size(), 0.0f);
  return s;
}

// Sets the score of class `cls` to `v` on the frames covering [t0, t1).
void set(FrameScores& s, int cls, double t0, double t1, float v) {
  const int f0 = int(std::lround(t0 / s.hop_s)), f1 = int(std::lround(t1 / s.hop_s));
  for (int f = f0; f < f1; ++f) s.values[size_t(f) * s.labels.size() + size_t(cls)] = v;
}

ev::EventTable ref_of(std::initializer_list<std::tuple<std::string, double, double, std::string>> rows) {
  ev::EventTable t;
  for (const auto& [file, on, off, label] : rows) {
    Event e;
    e.onset = on, e.offset = off, e.label = label;
    t.add(file, e);
  }
  return t;
}

const ev::PsdsClass& cls(const ev::PsdsResult& r, const std::string& label) {
  for (const auto& c : r.classes)
    if (c.label == label) return c;
  throw std::runtime_error("no class " + label);
}

// The operating point of a class at the threshold closest to `t`.
const ev::PsdsPoint& at(const ev::PsdsClass& c, double t) {
  const ev::PsdsPoint* best = &c.points.front();
  for (const auto& p : c.points)
    if (std::abs(p.threshold - t) < std::abs(best->threshold - t)) best = &p;
  return *best;
}

// One class, one threshold (0.5): the criteria seen through a single operating point.
ev::PsdsPoint one_point(double gt_on, double gt_off, double det_on, double det_off, double duration,
                        ev::PsdsConfig cfg = ev::PsdsConfig::psds1()) {
  FrameScores s = grid(0.5, int(duration / 0.5), {"dog"});
  set(s, 0, det_on, det_off, 1.0f);
  cfg.n_thresholds = 1;
  const auto r = ev::psds({{"a.wav", s}}, ref_of({{"a.wav", gt_on, gt_off, "dog"}}), {{"a.wav", duration}}, cfg);
  return r.classes.at(0).points.at(0);
}

}  // namespace

TEST(Psds, Presets) {
  const auto p1 = ev::PsdsConfig::psds1();
  EXPECT_EQ(p1.dtc, 0.7);
  EXPECT_EQ(p1.gtc, 0.7);
  EXPECT_EQ(p1.alpha_ct, 0.0);
  EXPECT_EQ(p1.alpha_st, 1.0);
  EXPECT_EQ(p1.max_efpr, 100.0);
  const auto p2 = ev::PsdsConfig::psds2();
  EXPECT_EQ(p2.dtc, 0.1);
  EXPECT_EQ(p2.gtc, 0.1);
  EXPECT_EQ(p2.cttc, 0.3);
  EXPECT_EQ(p2.alpha_ct, 0.5);
  EXPECT_EQ(p2.alpha_st, 1.0);
  EXPECT_EQ(p2.max_efpr, 100.0);
}

TEST(Psds, StaircaseArea) {
  // y 0.2 on [0,10), 0.5 on [10,50), 0.6 on [50,100) (cut at 100): 2 + 20 + 30 = 52.
  EXPECT_DOUBLE_EQ(ev::staircase_area({0, 10, 50, 150}, {0.2, 0.5, 0.6, 0.9}, 100), 52.0);
  // The last step runs on to max_x: 0.5 * 100.
  EXPECT_DOUBLE_EQ(ev::staircase_area({0}, {0.5}, 100), 50.0);
}

TEST(Psds, ThresholdRunsCutAtDuration) {
  FrameScores s = grid(0.32, 4, {"dog"});
  s.values = {0.9f, 0.2f, 0.5f, 0.6f};
  // >= 0.5: frame 0 -> [0, 0.32]; frames 2-3 -> [0.64, 1.28] cut at the 1.0 s duration.
  const auto runs = ev::threshold_runs(s, 0, 0.5, 1.0);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_DOUBLE_EQ(runs[0].second, 0.32);
  EXPECT_DOUBLE_EQ(runs[1].first, 0.64);
  EXPECT_DOUBLE_EQ(runs[1].second, 1.0);
  // A score equal to the threshold counts as on.
  EXPECT_EQ(ev::threshold_runs(s, 0, 0.6, 10).size(), 2u);
}

TEST(Psds, PerfectDetectorScoresOne) {
  // 10 s file, hop 0.5: dog [1,3], cat [5,6]; scores 1 exactly there, 0 elsewhere.
  FrameScores s = grid(0.5, 20, {"dog", "cat"});
  set(s, 0, 1, 3, 1.0f);
  set(s, 1, 5, 6, 1.0f);
  const auto ref = ref_of({{"a.wav", 1, 3, "dog"}, {"a.wav", 5, 6, "cat"}});
  for (auto cfg : {ev::PsdsConfig::psds1(), ev::PsdsConfig::psds2()}) {
    // Every threshold 0.01 .. 0.99 gives each class its event exactly: TPR 1 at eFPR 0, so the
    // PSD-ROC is 1 from 0 to 100 (std 0): PSDS = 100 / 100 = 1.
    const auto r = ev::psds({{"a.wav", s}}, ref, {{"a.wav", 10}}, cfg);
    EXPECT_DOUBLE_EQ(r.value, 1.0);
    EXPECT_DOUBLE_EQ(cls(r, "dog").psds, 1.0);
    EXPECT_EQ(cls(r, "dog").points.size(), 50u);
    EXPECT_DOUBLE_EQ(cls(r, "dog").points.front().threshold, 0.99);
    EXPECT_DOUBLE_EQ(cls(r, "dog").points.back().threshold, 0.01);
    // Exact sweep: thresholds 1 (perfect) and 0 (all on: one [0,10] detection per class, dog
    // 2/10 < 0.7 of it is dog -> FP at 1 * 3600/10 = 360/h). The staircase keeps TPR 1.
    cfg.exact = true;
    const auto e = ev::psds({{"a.wav", s}}, ref, {{"a.wav", 10}}, cfg);
    EXPECT_DOUBLE_EQ(e.value, 1.0);
    EXPECT_EQ(cls(e, "dog").points.size(), 2u);
  }
  const auto e = ev::psds({{"a.wav", s}}, ref, {{"a.wav", 10}}, [] {
    auto c = ev::PsdsConfig::psds1();
    c.exact = true;
    return c;
  }());
  EXPECT_DOUBLE_EQ(at(cls(e, "dog"), 0.0).fpr, 360.0);
  EXPECT_EQ(at(cls(e, "dog"), 0.0).tp, 0);
}

TEST(Psds, AlwaysOffDetectorScoresZero) {
  FrameScores s = grid(0.5, 20, {"dog"});
  const auto ref = ref_of({{"a.wav", 1, 3, "dog"}});
  // Scores all 0: no threshold of the sweep (>= 0.01) detects anything; TPR 0 everywhere.
  EXPECT_DOUBLE_EQ(ev::psds({{"a.wav", s}}, ref, {}, ev::PsdsConfig::psds1()).value, 0.0);
  // Exact: threshold 0 turns everything on: [0,10] fails the DTC (2/10) -> FP, TPR still 0.
  auto cfg = ev::PsdsConfig::psds1();
  cfg.exact = true;
  EXPECT_DOUBLE_EQ(ev::psds({{"a.wav", s}}, ref, {}, cfg).value, 0.0);
}

TEST(Psds, DtcBoundary) {
  // gt [0,7], detection [0,10] in a 20 s file: 7 / 10 = 0.7 >= dtc 0.7 (0.7 * 10 is
  // 7.000000000000001 in floating point; the 1e-6 s rounding keeps it a pass) -> TP, no FP.
  auto p = one_point(0, 7, 0, 10, 20);
  EXPECT_EQ(p.tp, 1);
  EXPECT_EQ(p.fp, 0);
  // Detection [0,10.5]: 7 / 10.5 = 0.667 < 0.7 -> FP, and it cannot make the gt a TP.
  p = one_point(0, 7, 0, 10.5, 20);
  EXPECT_EQ(p.tp, 0);
  EXPECT_EQ(p.fp, 1);
  // FP rate: 1 per 20 s = 3600 / 20 = 180 per hour.
  EXPECT_DOUBLE_EQ(p.fpr, 180.0);
}

TEST(Psds, GtcBoundary) {
  // gt [0,10], detection [0,7]: fully inside (DTC 1); it covers 7 / 10 = 0.7 >= gtc 0.7 -> TP.
  auto p = one_point(0, 10, 0, 7, 20);
  EXPECT_EQ(p.tp, 1);
  EXPECT_DOUBLE_EQ(p.tpr, 1.0);
  // Detection [0,6.5]: covers 0.65 < 0.7 -> not a TP, yet not an FP either (it passes the DTC).
  p = one_point(0, 10, 0, 6.5, 20);
  EXPECT_EQ(p.tp, 0);
  EXPECT_EQ(p.fp, 0);
  // Two detections [0,4] and [5,8.5] together cover 4 + 3.5 = 7.5 / 10 >= 0.7 -> TP.
  FrameScores s = grid(0.5, 40, {"dog"});
  set(s, 0, 0, 4, 1.0f);
  set(s, 0, 5, 8.5, 1.0f);
  auto cfg = ev::PsdsConfig::psds1();
  cfg.n_thresholds = 1;
  const auto r = ev::psds({{"a.wav", s}}, ref_of({{"a.wav", 0, 10, "dog"}}), {}, cfg);
  EXPECT_EQ(r.classes[0].points[0].tp, 1);
  EXPECT_EQ(r.classes[0].points[0].fp, 0);
}

// Two classes in a 360 s file (hop 1 s): dog gt [0,10], cat gt [100,280] (180 s).
// dog scores: 0.4 on [0,10) (the true dog), 0.6 on [150,160) (inside cat); cat: 0.8 on [100,280).
struct CrossTrigger : ::testing::Test {
  FrameScores s = grid(1.0, 360, {"dog", "cat"});
  ev::EventTable ref = ref_of({{"a.wav", 0, 10, "dog"}, {"a.wav", 100, 280, "cat"}});
  void SetUp() override {
    set(s, 0, 0, 10, 0.4f);
    set(s, 0, 150, 160, 0.6f);
    set(s, 1, 100, 280, 0.8f);
  }
};

TEST_F(CrossTrigger, EffectiveFalsePositiveRate) {
  const auto r = ev::psds({{"a.wav", s}}, ref, {{"a.wav", 360}}, ev::PsdsConfig::psds2());
  EXPECT_DOUBLE_EQ(r.duration_s, 360.0);
  const auto& dog = cls(r, "dog");
  // t = 0.59: only [150,160] is on. It has no dog overlap -> fails the DTC -> FP:
  // FPR = 1 * 3600 / 360 = 10/h. Its cat overlap is 10/10 >= cttc 0.3 -> one cross-trigger:
  // CTR(dog, cat) = 1 * 3600 / 180 = 20/h. eFPR = 10 + 0.5 * 20 / (K-1 = 1) = 20.
  EXPECT_EQ(at(dog, 0.59).fp, 1);
  EXPECT_EQ(at(dog, 0.59).tp, 0);
  EXPECT_DOUBLE_EQ(at(dog, 0.59).fpr, 10.0);
  EXPECT_DOUBLE_EQ(at(dog, 0.59).efpr, 20.0);
  // t = 0.39: the true dog is found too: TPR 1 at eFPR 20.
  EXPECT_DOUBLE_EQ(at(dog, 0.39).tpr, 1.0);
  EXPECT_DOUBLE_EQ(at(dog, 0.39).efpr, 20.0);
  // t = 0.61: nothing.
  EXPECT_DOUBLE_EQ(at(dog, 0.61).efpr, 0.0);
  // cat: its event exactly for t <= 0.79: TPR 1, eFPR 0.
  EXPECT_DOUBLE_EQ(at(cls(r, "cat"), 0.79).tpr, 1.0);
  // PSD-ROC on eFPR {0, 20}: at 0 dog 0, cat 1 -> mean .5, std .5 -> .5 - 1 * .5 = 0;
  // at 20 both 1 -> 1. Area = 0 * 20 + 1 * (100 - 20) = 80 -> PSDS2 = 0.8.
  EXPECT_NEAR(r.value, 0.8, 1e-12);
  ASSERT_EQ(r.efpr.size(), 3u);  // 0, 20, and the end at 100
  EXPECT_DOUBLE_EQ(r.efpr[1], 20.0);
  EXPECT_DOUBLE_EQ(r.etpr[0], 0.0);
  EXPECT_DOUBLE_EQ(r.etpr[1], 1.0);
  // dog alone: TPR 1 from eFPR 20: 80 / 100.
  EXPECT_NEAR(dog.psds, 0.8, 1e-12);
}

TEST_F(CrossTrigger, WithoutCrossTriggerWeight) {
  // Same as PSDS2 but alpha_ct = 0: dog's eFPR is its FPR, 10/h -> area 1 * (100 - 10) = 90.
  auto cfg = ev::PsdsConfig::psds2();
  cfg.alpha_ct = 0;
  EXPECT_NEAR(ev::psds({{"a.wav", s}}, ref, {{"a.wav", 360}}, cfg).value, 0.9, 1e-12);
  // PSDS1 (dtc = gtc = 0.7): same operating points here -> 0.9.
  EXPECT_NEAR(ev::psds({{"a.wav", s}}, ref, {{"a.wav", 360}}, ev::PsdsConfig::psds1()).value, 0.9, 1e-12);
}

TEST_F(CrossTrigger, ExactSweepAgrees) {
  // Distinct dog scores 0.6, 0.4, 0: at 0 everything is on, one [0,360] detection: dog overlap
  // 10/360 < 0.1 -> FP; cat overlap 180/360 = 0.5 >= 0.3 -> cross-trigger: eFPR 20, TPR 0,
  // which the staircase hides behind (20, 1). cat at 0: [0,360] has 180/360 >= 0.1 of cat ->
  // passes the DTC and covers cat fully: TP. PSDS2 stays 0.8.
  auto cfg = ev::PsdsConfig::psds2();
  cfg.exact = true;
  const auto r = ev::psds({{"a.wav", s}}, ref, {{"a.wav", 360}}, cfg);
  EXPECT_NEAR(r.value, 0.8, 1e-12);
  EXPECT_EQ(cls(r, "dog").points.size(), 3u);
  EXPECT_DOUBLE_EQ(at(cls(r, "dog"), 0.0).efpr, 20.0);
}

TEST(Psds, AlphaStPenalisesUnevenClasses) {
  // dog detected perfectly, cat never: at eFPR 0 the class TPRs are 1 and 0: mean .5, std .5.
  FrameScores s = grid(0.5, 20, {"dog", "cat"});
  set(s, 0, 1, 3, 1.0f);
  const auto ref = ref_of({{"a.wav", 1, 3, "dog"}, {"a.wav", 5, 6, "cat"}});
  auto cfg = ev::PsdsConfig::psds1();
  // alpha_st = 1: .5 - .5 = 0 -> PSDS 0.
  EXPECT_DOUBLE_EQ(ev::psds({{"a.wav", s}}, ref, {}, cfg).value, 0.0);
  // alpha_st = 0: .5 over the whole range -> 0.5.
  cfg.alpha_st = 0;
  EXPECT_DOUBLE_EQ(ev::psds({{"a.wav", s}}, ref, {}, cfg).value, 0.5);
  // Single-class values: dog 1, cat 0.
  const auto r = ev::psds({{"a.wav", s}}, ref, {}, cfg);
  EXPECT_DOUBLE_EQ(cls(r, "dog").psds, 1.0);
  EXPECT_DOUBLE_EQ(cls(r, "cat").psds, 0.0);
}

TEST(Psds, FilesWithoutEventsAddDurationAndFalsePositives) {
  // a.wav (10 s): dog [1,3] detected perfectly. b.wav (26 s, listed only in the durations): a
  // dog detection [0,2] there is an FP: FPR = 1 * 3600 / (10 + 26) = 100/h, at the edge of the
  // range. The TPR is 1 already at eFPR 0, so PSDS1 = 1; the FP shows in the points.
  FrameScores a = grid(0.5, 20, {"dog"});
  set(a, 0, 1, 3, 1.0f);
  FrameScores b = grid(0.5, 52, {"dog"});
  set(b, 0, 0, 2, 0.3f);
  const auto r = ev::psds({{"a.wav", a}, {"b.wav", b}}, ref_of({{"a.wav", 1, 3, "dog"}}),
                          {{"a.wav", 10}, {"b.wav", 26}}, ev::PsdsConfig::psds1());
  EXPECT_EQ(r.files, 2);
  EXPECT_DOUBLE_EQ(r.duration_s, 36.0);
  EXPECT_DOUBLE_EQ(at(r.classes[0], 0.29).fpr, 100.0);
  EXPECT_DOUBLE_EQ(at(r.classes[0], 0.31).fpr, 0.0);
  EXPECT_DOUBLE_EQ(r.value, 1.0);
}

TEST(Psds, OverlappingGroundTruthIsMerged) {
  // dog [1,3] and [2,4] become one event [1,4]; detection [1,4] finds it: 1 event, TPR 1.
  FrameScores s = grid(0.5, 20, {"dog"});
  set(s, 0, 1, 4, 1.0f);
  const auto r = ev::psds({{"a.wav", s}}, ref_of({{"a.wav", 1, 3, "dog"}, {"a.wav", 2, 4, "dog"}}), {},
                          ev::PsdsConfig::psds1());
  EXPECT_EQ(r.classes[0].n_ref, 1);
  EXPECT_DOUBLE_EQ(r.classes[0].ref_length_s, 3.0);
  EXPECT_DOUBLE_EQ(r.value, 1.0);
}

TEST(Psds, PostProcessingCallback) {
  FrameScores s = grid(0.5, 20, {"dog"});
  set(s, 0, 1, 3, 1.0f);
  const auto ref = ref_of({{"a.wav", 1, 3, "dog"}});
  auto cfg = ev::PsdsConfig::psds1();
  int calls = 0;
  // A post-processor that drops every detection: PSDS 0, called once per threshold and file.
  cfg.detect = [&](const FrameScores&, int, double) {
    ++calls;
    return std::vector<std::pair<double, double>>{};
  };
  EXPECT_DOUBLE_EQ(ev::psds({{"a.wav", s}}, ref, {}, cfg).value, 0.0);
  EXPECT_EQ(calls, 50);
  cfg.exact = true;
  EXPECT_THROW(ev::psds({{"a.wav", s}}, ref, {}, cfg), earmark::Error);
}

TEST(Psds, ClearErrors) {
  FrameScores s = grid(0.5, 20, {"Dog"});
  const auto ref = ref_of({{"a.wav", 1, 3, "dog"}});
  // Score columns must name the reference classes.
  std::string e = error_of([&] { ev::psds({{"a.wav", s}}, ref, {}, ev::PsdsConfig::psds1()); });
  EXPECT_NE(e.find("no column for 1 reference class(es): 'dog'"), std::string::npos) << e;
  EXPECT_NE(e.find("--map"), std::string::npos) << e;
  // Every evaluated file needs scores.
  e = error_of([&] { ev::psds({}, ref, {}, ev::PsdsConfig::psds1()); });
  EXPECT_NE(e.find("no frame scores for 1 of 1 files (a.wav)"), std::string::npos) << e;
  // Parameters are checked.
  auto cfg = ev::PsdsConfig::psds1();
  cfg.dtc = 0;
  EXPECT_THROW(cfg.validate(), earmark::Error);
  cfg = ev::PsdsConfig::psds2();
  cfg.alpha_ct = 1.5;
  EXPECT_THROW(cfg.validate(), earmark::Error);
}

// tests/golden/eval was made by tests/golden/eval_reference.py, a separate Python
// implementation of the PSDS definitions, on a seeded random set of noisy score grids.
TEST(Golden, MatchesPythonReimplementation) {
  const auto dir = earmark::testing::source_dir() / "tests" / "golden" / "eval";
  const auto ref = ev::read_events_tsv((dir / "ref.tsv").string());
  const auto dur = ev::read_durations_tsv((dir / "durations.tsv").string());
  std::vector<std::string> files = ref.files();
  const auto scores = ev::read_scores_dir((dir / "scores").string(), files);
  std::ifstream f(dir / "expected.json");
  const auto g = nlohmann::json::parse(f);
  for (const bool exact : {false, true}) {
    for (const int which : {1, 2}) {
      auto cfg = which == 1 ? ev::PsdsConfig::psds1() : ev::PsdsConfig::psds2();
      cfg.exact = exact;
      const std::string key = fmt::format("psds{}_{}", which, exact ? "exact" : "grid");
      const auto r = ev::psds(scores, ref, dur, cfg);
      EXPECT_NEAR(r.value, g[key]["value"].get<double>(), 1e-9) << key;
      for (const auto& c : r.classes) EXPECT_NEAR(c.psds, g[key]["classes"][c.label].get<double>(), 1e-9) << key;
    }
  }
}
