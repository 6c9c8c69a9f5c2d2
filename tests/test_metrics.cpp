// Event-based and segment-based metrics (sed_eval definitions), the DCASE TSV readers and the
// AudioSet label map. Every expectation is worked by hand in the comment above it.
#include <cmath>
#include <limits>
#include <sstream>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "earmark/evaluate.hpp"
#include "eval/label_map.hpp"
#include "eval/metrics.hpp"
#include "eval/tsv.hpp"
#include "test_support.hpp"

namespace ev = earmark::eval;
using earmark::Event;

namespace {

using earmark::testing::error_of;

constexpr double kEps = 2.220446049250313e-16;  // numpy.spacing(1), sed_eval's eps

struct Row {
  std::string file;
  double onset, offset;
  std::string label;
};

ev::EventTable table(std::initializer_list<Row> rows, std::initializer_list<std::string> empty_files = {}) {
  ev::EventTable t;
  for (const auto& f : empty_files) t.add_file(f);
  for (const auto& r : rows) {
    Event e;
    e.onset = r.onset;
    e.offset = r.offset;
    e.label = r.label;
    t.add(r.file, e);
  }
  return t;
}

const ev::ClassMetrics& cls(const ev::SedResult& r, const std::string& label) {
  for (const auto& c : r.classes)
    if (c.label == label) return c;
  throw std::runtime_error("no class " + label);
}

}  // namespace

// ---------------------------------------------------------------- sed_eval formulas

TEST(SedFormulas, ZeroDenominators) {
  // precision = TP/Nsys and recall = TP/Nref are NaN for a zero denominator.
  EXPECT_TRUE(std::isnan(ev::sed_precision(0, 0)));
  EXPECT_TRUE(std::isnan(ev::sed_recall(0, 0)));
  // F = 0 only when P and R are both exactly 0; any NaN makes F NaN.
  EXPECT_EQ(ev::sed_f_measure(0, 0), 0.0);
  EXPECT_TRUE(std::isnan(ev::sed_f_measure(0, std::nan(""))));
  EXPECT_TRUE(std::isnan(ev::sed_f_measure(std::nan(""), 0)));
  // 2 * 0.5 * 1 / 1.5 = 2/3
  EXPECT_DOUBLE_EQ(ev::sed_f_measure(0.5, 1.0), 2.0 / 3.0);
  // Rates divide by Nref + eps: 0 errors -> 0, errors with Nref = 0 -> errors / eps.
  EXPECT_EQ(ev::sed_rate(0, 0), 0.0);
  EXPECT_DOUBLE_EQ(ev::sed_rate(1, 0), 1.0 / kEps);
  EXPECT_TRUE(std::isnan(ev::nanmean({std::nan(""), std::nan("")})));
  EXPECT_DOUBLE_EQ(ev::nanmean({1.0, std::nan(""), 0.0}), 0.5);
}

// ---------------------------------------------------------------- event-based

TEST(EventBased, PerfectMatch) {
  const auto ref = table({{"a.wav", 1, 2, "dog"}, {"a.wav", 3, 4, "cat"}, {"b.wav", 0, 5, "dog"}});
  const auto r = ev::event_based(ref, ref);
  // 3 reference, 3 estimated, 3 hits: P = R = F = 1, ER = 0.
  EXPECT_EQ(r.micro.tp, 3);
  EXPECT_EQ(r.micro.n_ref, 3);
  EXPECT_DOUBLE_EQ(r.micro.f1, 1.0);
  EXPECT_DOUBLE_EQ(r.micro.error_rate, 0.0);
  EXPECT_DOUBLE_EQ(r.macro.f1, 1.0);
  EXPECT_DOUBLE_EQ(r.macro.error_rate, 0.0);
  EXPECT_EQ(cls(r, "dog").tp, 2);
  EXPECT_EQ(r.files, 2);
  // Evaluated length = sum of reference max offsets = 4 + 5.
  EXPECT_DOUBLE_EQ(r.evaluated_length_s, 9.0);
}

TEST(EventBased, OneDeletion) {
  const auto ref = table({{"a.wav", 1, 2, "dog"}, {"a.wav", 3, 4, "cat"}});
  const auto est = table({{"a.wav", 1, 2, "dog"}});
  const auto r = ev::event_based(ref, est);
  // TP 1, Nsys 1, Nref 2: P = 1, R = 0.5, F = 2*1*0.5/1.5 = 2/3; D = 2 - 1 - 0 = 1, ER = 1/2.
  EXPECT_EQ(r.micro.deletions, 1);
  EXPECT_EQ(r.micro.insertions, 0);
  EXPECT_DOUBLE_EQ(r.micro.precision, 1.0);
  EXPECT_DOUBLE_EQ(r.micro.recall, 0.5);
  EXPECT_NEAR(r.micro.f1, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(r.micro.error_rate, 0.5, 1e-12);
  // cat: Nsys 0 -> P NaN, R 0/1 = 0 -> F NaN; ER = D/N = 1.
  EXPECT_TRUE(std::isnan(cls(r, "cat").precision));
  EXPECT_EQ(cls(r, "cat").recall, 0.0);
  EXPECT_TRUE(std::isnan(cls(r, "cat").f1));
  EXPECT_NEAR(cls(r, "cat").error_rate, 1.0, 1e-12);
  // Macro: F = nanmean(1, NaN) = 1; R = mean(1, 0) = 0.5; ER = mean(0, 1) = 0.5.
  EXPECT_DOUBLE_EQ(r.macro.f1, 1.0);
  EXPECT_DOUBLE_EQ(r.macro.recall, 0.5);
  EXPECT_NEAR(r.macro.error_rate, 0.5, 1e-12);
}

TEST(EventBased, OneInsertionOfAClassOnlyInTheEstimate) {
  const auto ref = table({{"a.wav", 1, 2, "dog"}});
  const auto est = table({{"a.wav", 1, 2, "dog"}, {"a.wav", 5, 6, "cat"}});
  const auto r = ev::event_based(ref, est);
  // TP 1, Nsys 2, Nref 1: P = 0.5, R = 1, F = 2/3; I = 2 - 1 - 0 = 1, ER = 1/1 = 1.
  EXPECT_EQ(r.micro.insertions, 1);
  EXPECT_DOUBLE_EQ(r.micro.precision, 0.5);
  EXPECT_NEAR(r.micro.error_rate, 1.0, 1e-12);
  // cat only in the estimate: P = 0/1 = 0, R NaN -> F NaN; ER = 1/(0 + eps), sed_eval's huge value.
  const auto& cat = cls(r, "cat");
  EXPECT_EQ(cat.precision, 0.0);
  EXPECT_TRUE(std::isnan(cat.recall));
  EXPECT_TRUE(std::isnan(cat.f1));
  EXPECT_DOUBLE_EQ(cat.error_rate, 1.0 / kEps);
  // Macro F ignores cat's NaN: 1. Macro P = mean(0, 1) = 0.5. Macro ER = (0 + 1/eps) / 2.
  EXPECT_DOUBLE_EQ(r.macro.f1, 1.0);
  EXPECT_DOUBLE_EQ(r.macro.precision, 0.5);
  EXPECT_DOUBLE_EQ(r.macro.error_rate, (1.0 / kEps) / 2);
}

TEST(EventBased, Substitution) {
  const auto ref = table({{"a.wav", 1, 2, "dog"}});
  const auto est = table({{"a.wav", 1.05, 2.1, "cat"}});
  const auto r = ev::event_based(ref, est);
  // No label match -> TP 0. The leftovers match in time (|1 - 1.05| = 0.05 <= 0.2,
  // |2 - 2.1| = 0.1 <= max(0.2, 0.2*1)) -> S = 1; FP = 1 - 0 - 1 = 0, FN = 0; ER = 1/1.
  EXPECT_EQ(r.micro.substitutions, 1);
  EXPECT_EQ(r.micro.fp, 0);
  EXPECT_EQ(r.micro.fn, 0);
  EXPECT_NEAR(r.micro.error_rate, 1.0, 1e-12);
  EXPECT_EQ(r.micro.f1, 0.0);  // P = 0/1, R = 0/1, both 0 -> F = 0
  // Class-wise there are no substitutions: dog has one deletion, cat one insertion.
  EXPECT_NEAR(cls(r, "dog").error_rate, 1.0, 1e-12);
  EXPECT_EQ(cls(r, "dog").fn, 1);
  EXPECT_EQ(cls(r, "cat").fp, 1);
  // dog: P NaN (Nsys 0); cat: R NaN (Nref 0) -> both F NaN -> macro F NaN.
  EXPECT_TRUE(std::isnan(r.macro.f1));
}

TEST(EventBased, SubstitutionNeedsTimeMatch) {
  const auto ref = table({{"a.wav", 1, 2, "dog"}});
  const auto est = table({{"a.wav", 1.5, 2.5, "cat"}});
  const auto r = ev::event_based(ref, est);
  // |1 - 1.5| = 0.5 > 0.2: not a substitution but one deletion and one insertion, ER = 2.
  EXPECT_EQ(r.micro.substitutions, 0);
  EXPECT_NEAR(r.micro.error_rate, 2.0, 1e-12);
}

TEST(EventBased, OnsetCollar) {
  const auto ref = table({{"a.wav", 1.0, 3.0, "dog"}});
  // |1.0 - 1.19| = 0.19 <= 0.2: hit.
  EXPECT_EQ(ev::event_based(ref, table({{"a.wav", 1.19, 3.0, "dog"}})).micro.tp, 1);
  // |1.0 - 1.21| = 0.21 > 0.2: miss (one deletion + one insertion).
  const auto r = ev::event_based(ref, table({{"a.wav", 1.21, 3.0, "dog"}}));
  EXPECT_EQ(r.micro.tp, 0);
  EXPECT_EQ(r.micro.fp, 1);
  EXPECT_EQ(r.micro.fn, 1);
  // Early onsets count the same way: |1.0 - 0.81| = 0.19.
  EXPECT_EQ(ev::event_based(ref, table({{"a.wav", 0.81, 3.0, "dog"}})).micro.tp, 1);
  // A wider collar accepts 0.21.
  ev::EventBasedConfig wide;
  wide.t_collar = 0.25;
  EXPECT_EQ(ev::event_based(ref, table({{"a.wav", 1.21, 3.0, "dog"}}), wide).micro.tp, 1);
}

TEST(EventBased, OffsetCollarGrowsWithLength) {
  // 10 s reference: offset tolerance = max(0.2, 0.2 * 10) = 2.0 s.
  const auto ref = table({{"a.wav", 0.0, 10.0, "dog"}});
  EXPECT_EQ(ev::event_based(ref, table({{"a.wav", 0.0, 11.9, "dog"}})).micro.tp, 1);  // 1.9 <= 2.0
  EXPECT_EQ(ev::event_based(ref, table({{"a.wav", 0.0, 8.1, "dog"}})).micro.tp, 1);   // 1.9 <= 2.0
  EXPECT_EQ(ev::event_based(ref, table({{"a.wav", 0.0, 12.1, "dog"}})).micro.tp, 0);  // 2.1 > 2.0
  // 0.5 s reference: tolerance = max(0.2, 0.1) = 0.2 s.
  const auto short_ref = table({{"a.wav", 0.0, 0.5, "dog"}});
  EXPECT_EQ(ev::event_based(short_ref, table({{"a.wav", 0.0, 0.69, "dog"}})).micro.tp, 1);  // 0.19
  EXPECT_EQ(ev::event_based(short_ref, table({{"a.wav", 0.0, 0.71, "dog"}})).micro.tp, 0);  // 0.21
}

TEST(EventBased, OnsetOnlyMode) {
  const auto ref = table({{"a.wav", 0.0, 10.0, "dog"}});
  const auto est = table({{"a.wav", 0.1, 3.0, "dog"}});
  // Offsets differ by 7 s > 2 s: a miss with offsets evaluated ...
  EXPECT_EQ(ev::event_based(ref, est).micro.tp, 0);
  // ... a hit on the onset alone (|0 - 0.1| = 0.1 <= 0.2).
  ev::EventBasedConfig onset_only;
  onset_only.evaluate_offset = false;
  const auto r = ev::event_based(ref, est, onset_only);
  EXPECT_EQ(r.micro.tp, 1);
  EXPECT_DOUBLE_EQ(r.micro.f1, 1.0);
  // Switching off both is refused.
  ev::EventBasedConfig none;
  none.evaluate_onset = none.evaluate_offset = false;
  EXPECT_THROW(ev::event_based(ref, est, none), earmark::Error);
}

TEST(EventBased, EmptyReferenceAndOrEstimate) {
  const auto empty = table({}, {"a.wav"});
  const auto one = table({{"a.wav", 1, 2, "dog"}});
  {
    // Nothing anywhere: P, R, F NaN (0/0), ER = 0/(0 + eps) = 0.
    const auto r = ev::event_based(empty, empty);
    EXPECT_TRUE(std::isnan(r.micro.precision));
    EXPECT_TRUE(std::isnan(r.micro.recall));
    EXPECT_TRUE(std::isnan(r.micro.f1));
    EXPECT_EQ(r.micro.error_rate, 0.0);
    EXPECT_TRUE(r.classes.empty());
    EXPECT_TRUE(std::isnan(r.macro.f1));
    EXPECT_EQ(r.files, 1);
  }
  {
    // Reference only: Nsys = 0 -> P NaN, R = 0 -> F NaN (sed_eval's default, not 0); ER = 1/1.
    const auto r = ev::event_based(one, empty);
    EXPECT_TRUE(std::isnan(r.micro.precision));
    EXPECT_EQ(r.micro.recall, 0.0);
    EXPECT_TRUE(std::isnan(r.micro.f1));
    EXPECT_NEAR(r.micro.error_rate, 1.0, 1e-12);
  }
  {
    // Estimate only: P = 0/1 = 0, R NaN -> F NaN; ER = 1/eps.
    const auto r = ev::event_based(empty, one);
    EXPECT_EQ(r.micro.precision, 0.0);
    EXPECT_TRUE(std::isnan(r.micro.f1));
    EXPECT_DOUBLE_EQ(r.micro.error_rate, 1.0 / kEps);
  }
}

TEST(EventBased, EventsAtFileBorders) {
  // Events touching 0 and the end of a 10 s file are ordinary events.
  const auto ref = table({{"a.wav", 0.0, 0.4, "dog"}, {"a.wav", 9.6, 10.0, "dog"}});
  const auto est = table({{"a.wav", 0.0, 0.45, "dog"}, {"a.wav", 9.65, 10.0, "dog"}});
  // |0.4 - 0.45| = 0.05, |9.6 - 9.65| = 0.05: both hit.
  EXPECT_EQ(ev::event_based(ref, est).micro.tp, 2);
}

TEST(EventBased, OverlappingSameClassReference) {
  const auto ref = table({{"a.wav", 1, 3, "dog"}, {"a.wav", 2, 4, "dog"}});
  const auto est = table({{"a.wav", 1, 3, "dog"}});
  const auto r = ev::event_based(ref, est);
  // The estimate pairs with [1,3] only (onset 2 vs 1 is outside the collar): TP 1, FN 1.
  EXPECT_EQ(r.micro.tp, 1);
  EXPECT_EQ(r.micro.fn, 1);
  EXPECT_NEAR(r.micro.error_rate, 0.5, 1e-12);  // D 1 / N 2
  EXPECT_NEAR(r.micro.f1, 2.0 / 3.0, 1e-12);     // P 1, R 0.5
}

TEST(EventBased, ClassesOnlyInReferenceOrEstimateInMacro) {
  const auto ref = table({{"a.wav", 1, 2, "dog"}, {"a.wav", 3, 4, "cat"}});
  const auto est = table({{"a.wav", 1, 2, "dog"}, {"a.wav", 5, 6, "bird"}});
  const auto r = ev::event_based(ref, est);
  ASSERT_EQ(r.classes.size(), 3u);  // bird, cat, dog
  EXPECT_EQ(r.classes[0].label, "bird");
  // dog: P 1, R 1, ER 0. cat: P NaN, R 0, ER 1. bird: P 0, R NaN, ER 1/eps.
  // Macro P = nanmean(0, NaN, 1) = 0.5; R = nanmean(NaN, 0, 1) = 0.5; F = nanmean(NaN, NaN, 1) = 1.
  EXPECT_DOUBLE_EQ(r.macro.precision, 0.5);
  EXPECT_DOUBLE_EQ(r.macro.recall, 0.5);
  EXPECT_DOUBLE_EQ(r.macro.f1, 1.0);
  EXPECT_DOUBLE_EQ(r.macro.error_rate, (1.0 / kEps + 1.0 / (1.0 + kEps) + 0.0) / 3.0);
  // Micro: TP 1 of Nref 2, Nsys 2; cat [3,4] vs bird [5,6] is no substitution (onsets 2 s apart):
  // P = R = F = 0.5, ER = (0 + 1 + 1) / 2 = 1.
  EXPECT_DOUBLE_EQ(r.micro.f1, 0.5);
  EXPECT_NEAR(r.micro.error_rate, 1.0, 1e-12);
  // A class asked for that never occurs: F NaN, ER 0 (0/eps), so it lowers the macro ER.
  const auto r2 = ev::event_based(ref, ref, {}, {"zebra"});
  EXPECT_TRUE(std::isnan(cls(r2, "zebra").f1));
  EXPECT_EQ(cls(r2, "zebra").error_rate, 0.0);
}

TEST(EventBased, OptimalMatchingBeatsGreedyOrder) {
  // ref0 [1.0, 2.0] and ref1 [1.3, 2.3]; est0 [1.15, 2.15] matches both, est1 [0.9, 1.9] only
  // ref0 (|1.3 - 0.9| = 0.4 > 0.2).
  const auto ref = table({{"a.wav", 1.0, 2.0, "dog"}, {"a.wav", 1.3, 2.3, "dog"}});
  const auto est = table({{"a.wav", 1.15, 2.15, "dog"}, {"a.wav", 0.9, 1.9, "dog"}});
  // Greedy: ref0 takes est0 (first match), ref1 finds nothing -> TP 1, FN 1, FP 1.
  ev::EventBasedConfig greedy;
  greedy.matching = ev::Matching::Greedy;
  EXPECT_EQ(ev::event_based(ref, est, greedy).micro.tp, 1);
  // Optimal (sed_eval default): ref0-est1, ref1-est0 -> TP 2.
  const auto r = ev::event_based(ref, est);
  EXPECT_EQ(r.micro.tp, 2);
  EXPECT_EQ(cls(r, "dog").tp, 2);
}

TEST(EventBased, BipartiteMatchFollowsSedEvalAugmentingPath) {
  // hit (ref x est): ref0 -> est0, est1; ref1 -> est0. sed_eval's greedy start pairs ref0-est0,
  // then the augmenting path ref1 -> est0 -> ref0 -> est1 gives ref0-est1, ref1-est0.
  const auto m = ev::sed_bipartite_match({{true, true}, {true, false}}, 2);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0], 1);
  EXPECT_EQ(m[1], 0);
  // No edges: nothing matched.
  EXPECT_EQ(ev::sed_bipartite_match({{false}}, 1)[0], -1);
}

TEST(EventBased, InvalidEventsBuiltInCodeAreRefused) {
  // [3, 2]: offset before onset; NaN: not a time. Both would corrupt the counts or the rolls.
  const std::string e = error_of([] { ev::event_based(table({{"a.wav", 3, 2, "dog"}}), table({})); });
  EXPECT_NE(e.find("reference: a.wav: event [3, 2] 'dog' is invalid"), std::string::npos) << e;
  EXPECT_THROW(ev::segment_based(table({}), table({{"a.wav", std::nan(""), 2, "dog"}})), earmark::Error);
  EXPECT_THROW(ev::segment_based(table({}), table({}), {{"a.wav", -1.0}}), earmark::Error);
}

TEST(EventBased, FilesAreEvaluatedSeparately) {
  // Same times in another file do not match.
  const auto ref = table({{"a.wav", 1, 2, "dog"}});
  const auto est = table({{"b.wav", 1, 2, "dog"}});
  const auto r = ev::event_based(ref, est);
  EXPECT_EQ(r.micro.tp, 0);
  EXPECT_EQ(r.micro.fp, 1);
  EXPECT_EQ(r.micro.fn, 1);
  EXPECT_EQ(r.files, 2);
}

// ---------------------------------------------------------------- segment-based

TEST(SegmentBased, EventSpanningSegmentBoundaries) {
  // ref [0.5, 2.5] -> segments floor(0.5)=0 .. ceil(2.5)=3 (exclusive): 0, 1, 2.
  // est [1.2, 1.8] -> segment 1. Length 3 s -> 3 segments.
  const auto ref = table({{"a.wav", 0.5, 2.5, "dog"}});
  const auto est = table({{"a.wav", 1.2, 1.8, "dog"}});
  const auto r = ev::segment_based(ref, est, {{"a.wav", 3.0}});
  // TP 1 (seg 1), FN 2 (segs 0, 2), FP 0. P = 1, R = 1/3, F = 2*(1/3)/(4/3) = 0.5.
  EXPECT_EQ(r.micro.tp, 1);
  EXPECT_EQ(r.micro.fn, 2);
  EXPECT_DOUBLE_EQ(r.micro.precision, 1.0);
  EXPECT_NEAR(r.micro.recall, 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(r.micro.f1, 0.5, 1e-12);
  // Per segment: seg0 Nref1 Nsys0 -> D 1; seg1 hit; seg2 D 1. ER = 2/3.
  EXPECT_EQ(r.micro.deletions, 2);
  EXPECT_NEAR(r.micro.error_rate, 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.evaluated_length_s, 3.0);
}

TEST(SegmentBased, SubstitutionsInsertionsPerSegment) {
  // One 1 s segment: ref {dog, cat}, est {dog, bird, cow}.
  const auto ref = table({{"a.wav", 0, 1, "dog"}, {"a.wav", 0, 1, "cat"}});
  const auto est = table({{"a.wav", 0, 1, "dog"}, {"a.wav", 0, 1, "bird"}, {"a.wav", 0, 1, "cow"}});
  const auto r = ev::segment_based(ref, est);
  // Nref 2, Nsys 3, TP 1: S = min(2,3) - 1 = 1, D = max(0, 2-3) = 0, I = max(0, 3-2) = 1.
  EXPECT_EQ(r.micro.substitutions, 1);
  EXPECT_EQ(r.micro.deletions, 0);
  EXPECT_EQ(r.micro.insertions, 1);
  EXPECT_NEAR(r.micro.error_rate, 1.0, 1e-12);  // (1 + 0 + 1) / 2
  // FP 2 (bird, cow), FN 1 (cat): P = 1/3, R = 1/2, F = 2*(1/6)/(5/6) = 0.4.
  EXPECT_EQ(r.micro.fp, 2);
  EXPECT_EQ(r.micro.fn, 1);
  EXPECT_NEAR(r.micro.f1, 0.4, 1e-12);
  // Class-wise: cat has D 1 -> ER 1; bird has I 1 with Nref 0 -> 1/eps.
  EXPECT_NEAR(cls(r, "cat").error_rate, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(cls(r, "bird").error_rate, 1.0 / kEps);
}

TEST(SegmentBased, PureSubstitution) {
  // ref dog, est cat in the same segment: S = min(1,1) - 0 = 1, ER = 1; F = 0 (P = R = 0).
  const auto r = ev::segment_based(table({{"a.wav", 0, 1, "dog"}}), table({{"a.wav", 0, 1, "cat"}}));
  EXPECT_EQ(r.micro.substitutions, 1);
  EXPECT_NEAR(r.micro.error_rate, 1.0, 1e-12);
  EXPECT_EQ(r.micro.f1, 0.0);
}

TEST(SegmentBased, ShorterSegments) {
  ev::SegmentBasedConfig cfg;
  cfg.time_resolution = 0.5;
  // ref [0.2, 0.7] -> floor(0.4)=0 .. ceil(1.4)=2: segments 0, 1. est [0.6, 0.9] -> floor(1.2)=1 ..
  // ceil(1.8)=2: segment 1. Length 1 s -> 2 segments: TP 1, FN 1: P 1, R 0.5.
  const auto r = ev::segment_based(table({{"a.wav", 0.2, 0.7, "dog"}}), table({{"a.wav", 0.6, 0.9, "dog"}}),
                                   {{"a.wav", 1.0}}, cfg);
  EXPECT_EQ(r.micro.tp, 1);
  EXPECT_EQ(r.micro.fn, 1);
  EXPECT_DOUBLE_EQ(r.micro.recall, 0.5);
  cfg.time_resolution = 0;
  EXPECT_THROW(ev::segment_based(table({}), table({}), {}, cfg), earmark::Error);
}

TEST(SegmentBased, FileBorderAndGivenDuration) {
  const auto ref = table({{"a.wav", 9.5, 10.0, "dog"}});
  const auto est = table({{"a.wav", 9.5, 10.3, "dog"}});
  // With the 10 s duration: 10 segments; est marks segments 9 and 10, cut to 9: TP 1, FP 0.
  const auto r = ev::segment_based(ref, est, {{"a.wav", 10.0}});
  EXPECT_EQ(r.micro.tp, 1);
  EXPECT_EQ(r.micro.fp, 0);
  EXPECT_DOUBLE_EQ(r.micro.f1, 1.0);
  // Without it the length is the last offset, 10.3 -> ceil = 11 segments: seg 10 is an FP.
  const auto r2 = ev::segment_based(ref, est);
  EXPECT_EQ(r2.micro.fp, 1);
  EXPECT_DOUBLE_EQ(r2.evaluated_length_s, 10.3);
  // P = 1/2, R = 1 -> F = 2/3.
  EXPECT_NEAR(r2.micro.f1, 2.0 / 3.0, 1e-12);
}

TEST(SegmentBased, OverlappingSameClassReference) {
  // dog [1,3] and [2,4] -> segments 1, 2, 3 (overlap counted once); est [1,3] -> 1, 2.
  const auto r = ev::segment_based(table({{"a.wav", 1, 3, "dog"}, {"a.wav", 2, 4, "dog"}}),
                                   table({{"a.wav", 1, 3, "dog"}}), {{"a.wav", 5}});
  // TP 2, FN 1: P 1, R 2/3, F = 2*(2/3)/(5/3) = 0.8; D 1 over N 3 -> ER 1/3.
  EXPECT_EQ(r.micro.tp, 2);
  EXPECT_EQ(r.micro.n_ref, 3);
  EXPECT_NEAR(r.micro.f1, 0.8, 1e-12);
  EXPECT_NEAR(r.micro.error_rate, 1.0 / 3.0, 1e-12);
}

TEST(SegmentBased, NoEvents) {
  const auto empty = table({}, {"a.wav"});
  const auto r = ev::segment_based(empty, empty, {{"a.wav", 10}});
  // 10 segments, nothing active: P, R, F NaN; ER 0/(0 + eps) = 0.
  EXPECT_TRUE(std::isnan(r.micro.f1));
  EXPECT_EQ(r.micro.error_rate, 0.0);
  EXPECT_DOUBLE_EQ(r.evaluated_length_s, 10.0);
}

TEST(SegmentBased, MacroOverClasses) {
  // 2 segments. dog: ref 0,1; est 0 -> TP 1, FN 1: P 1, R .5, F 2/3, ER 1/2.
  // cat: ref 1; est 1 -> F 1, ER 0. Macro F = (2/3 + 1)/2 = 5/6; macro ER = 1/4.
  const auto ref = table({{"a.wav", 0, 2, "dog"}, {"a.wav", 1, 2, "cat"}});
  const auto est = table({{"a.wav", 0, 1, "dog"}, {"a.wav", 1, 2, "cat"}});
  const auto r = ev::segment_based(ref, est);
  EXPECT_NEAR(r.macro.f1, 5.0 / 6.0, 1e-12);
  EXPECT_NEAR(r.macro.error_rate, 0.25, 1e-12);
  // Micro: TP 2, Nref 3, Nsys 2: P 1, R 2/3, F 0.8.
  EXPECT_NEAR(r.micro.f1, 0.8, 1e-12);
}

// ---------------------------------------------------------------- TSV

TEST(EventsTsv, HeaderNoHeaderEmptyFilesAndCrlf) {
  std::istringstream with_header(
      "filename\tonset\toffset\tevent_label\r\n"
      "a.wav\t1.5\t2\tDog\r\n"
      "b.wav\r\n"
      "c.wav\t\t\t\r\n"
      "\n"
      "a.wav\t3\t4.25\tComputer keyboard\n");
  const auto t = ev::parse_events_tsv(with_header, "ref.tsv");
  ASSERT_EQ(t.files().size(), 3u);
  EXPECT_EQ(t.files()[0], "a.wav");
  ASSERT_EQ(t.events("a.wav").size(), 2u);
  EXPECT_DOUBLE_EQ(t.events("a.wav")[0].onset, 1.5);
  EXPECT_EQ(t.events("a.wav")[1].label, "Computer keyboard");
  EXPECT_TRUE(t.has("b.wav"));
  EXPECT_TRUE(t.events("b.wav").empty());
  EXPECT_TRUE(t.events("c.wav").empty());
  EXPECT_EQ(t.size(), 2u);

  std::istringstream no_header("x.wav\t0\t1\tcat\n");
  EXPECT_EQ(ev::parse_events_tsv(no_header, "est.tsv").events("x.wav").size(), 1u);

  // Columns in another order are found by the header.
  std::istringstream reordered("event_label\tfilename\tonset\toffset\ncat\tx.wav\t0\t1\n");
  const auto r = ev::parse_events_tsv(reordered, "r.tsv");
  ASSERT_EQ(r.events("x.wav").size(), 1u);
  EXPECT_EQ(r.events("x.wav")[0].label, "cat");
}

TEST(EventsTsv, MalformedRowsNameFileAndLine) {
  auto err = [](const std::string& text) {
    std::istringstream in(text);
    return error_of([&] { ev::parse_events_tsv(in, "ref.tsv"); });
  };
  const std::string h = "filename\tonset\toffset\tevent_label\n";
  EXPECT_NE(err(h + "a.wav\t1\t2\tdog\na.wav\tabc\t2\tdog\n").find("ref.tsv:3: onset 'abc' is not a number"),
            std::string::npos);
  EXPECT_NE(err(h + "a.wav\t3\t2\tdog\n").find("ref.tsv:2: offset 2 is before onset 3"), std::string::npos);
  EXPECT_NE(err(h + "a.wav\t1\t2\n").find("ref.tsv:2: 3 columns, expected 4"), std::string::npos);
  EXPECT_NE(err("a.wav\t1\t2\tdog\textra\n").find("ref.tsv:1: 5 columns"), std::string::npos);
  EXPECT_NE(err(h + "a.wav\t1\tnan\tdog\n").find("ref.tsv:2: offset 'nan'"), std::string::npos);
  EXPECT_NE(err(h + "a.wav\t-1\t2\tdog\n").find("ref.tsv:2: negative onset"), std::string::npos);
  EXPECT_NE(err(h + "a.wav\t1\t2\t\n").find("ref.tsv:2: empty event_label"), std::string::npos);
  EXPECT_NE(err("filename\tonset\toffset\n").find("no 'event_label' column"), std::string::npos);
  EXPECT_NE(error_of([] { ev::read_events_tsv("/nonexistent/ref.tsv"); }).find("/nonexistent/ref.tsv: cannot open"),
            std::string::npos);
}

TEST(EventsTsv, WriteThenRead) {
  const auto t = table({{"a.wav", 0.125, 1.5, "Dog"}}, {"empty.wav"});
  std::stringstream ss;
  ev::write_events_tsv(ss, t);
  const auto back = ev::parse_events_tsv(ss, "mem");
  EXPECT_TRUE(back.has("empty.wav"));
  ASSERT_EQ(back.events("a.wav").size(), 1u);
  EXPECT_EQ(back.events("a.wav")[0].onset, 0.125);
  EXPECT_EQ(back.events("a.wav")[0].offset, 1.5);
}

TEST(DurationsTsv, ParseAndErrors) {
  std::istringstream in("filename\tduration\na.wav\t10.0\nb.wav\t3.5\n");
  const auto d = ev::parse_durations_tsv(in, "dur.tsv");
  EXPECT_DOUBLE_EQ(d.at("a.wav"), 10.0);
  EXPECT_DOUBLE_EQ(d.at("b.wav"), 3.5);
  std::istringstream bad("a.wav\tten\n");
  EXPECT_NE(error_of([&] { ev::parse_durations_tsv(bad, "dur.tsv"); }).find("dur.tsv:1: duration 'ten'"),
            std::string::npos);
  std::istringstream twice("a.wav\t1\na.wav\t2\n");
  EXPECT_NE(error_of([&] { ev::parse_durations_tsv(twice, "dur.tsv"); }).find("dur.tsv:2:"), std::string::npos);
}

TEST(ScoresTsv, RoundTripAndSedScoresEvalLayout) {
  earmark::FrameScores s;
  s.hop_s = 0.32;
  s.frames = 3;
  s.labels = {"Speech", "Dog"};
  s.values = {0.1f, 0.9f, 0.25f, 0.123456789f, 1.0f, 0.0f};
  std::stringstream ss;
  ev::write_scores_tsv(ss, s);
  const std::string text = ss.str();
  // Header and rows as sed_scores_eval writes them: onset, offset, one column per class; each
  // frame's offset is the next frame's onset.
  EXPECT_EQ(text.substr(0, text.find('\n')), "onset\toffset\tSpeech\tDog");
  EXPECT_NE(text.find("\n0.32\t0.64\t0.25\t0.12345679\n"), std::string::npos);
  const auto back = ev::parse_scores_tsv(ss, "a.scores.tsv");
  EXPECT_EQ(back.frames, 3);
  EXPECT_DOUBLE_EQ(back.hop_s, 0.32);
  EXPECT_EQ(back.labels, s.labels);
  EXPECT_EQ(back.values, s.values);  // shortest round-trip text keeps every float exactly
}

TEST(ScoresTsv, Errors) {
  auto err = [](const std::string& text) {
    std::istringstream in(text);
    return error_of([&] { ev::parse_scores_tsv(in, "s.tsv"); });
  };
  EXPECT_NE(err("start\tend\tdog\n").find("s.tsv:1:"), std::string::npos);
  EXPECT_NE(err("onset\toffset\tdog\n0\t0.5\t0.1\n0.5\t1\n").find("s.tsv:3: 2 columns, the header has 3"),
            std::string::npos);
  EXPECT_NE(err("onset\toffset\tdog\n0\t0.5\tx\n").find("score 'x' (column dog)"), std::string::npos);
  // Irregular grid: the second frame starts at 0.6 instead of 0.5.
  EXPECT_NE(err("onset\toffset\tdog\n0\t0.5\t0.1\n0.6\t1.1\t0.2\n").find("regular grid"), std::string::npos);
}

TEST(ScoresTsv, DirectoryLookup) {
  earmark::testing::TempDir dir;
  earmark::FrameScores s;
  s.hop_s = 1;
  s.frames = 1;
  s.labels = {"dog"};
  s.values = {0.5f};
  EXPECT_EQ(ev::scores_file_name("clips/a.b.wav"), "a.b.scores.tsv");
  {
    std::ofstream f(dir / "a.scores.tsv");
    ev::write_scores_tsv(f, s);
    std::ofstream g(dir / "b.tsv");  // sed_scores_eval's own naming
    ev::write_scores_tsv(g, s);
  }
  const auto m = ev::read_scores_dir(dir.path().string(), {"sub/a.wav", "b.flac"});
  EXPECT_EQ(m.at("sub/a.wav").values, s.values);
  EXPECT_EQ(m.at("b.flac").labels, s.labels);
  const std::string e = error_of([&] { ev::read_scores_dir(dir.path().string(), {"a.wav", "zzz.wav"}); });
  EXPECT_NE(e.find("zzz.scores.tsv"), std::string::npos) << e;
}

// ---------------------------------------------------------------- label map

TEST(LabelMap, CsvRowsWithHeaderListsAndQuotes) {
  std::istringstream in(
      "dataset_label,audioset_label\n"
      "doorslam,Door\n"
      "doorslam,Slam\n"
      "speech,\"Male speech, man speaking\";Speech\n"
      "goat,Bleat\n"
      "sheep,Bleat\n");
  const auto m = ev::LabelMap::parse_csv(in, "map.csv");
  EXPECT_EQ(m.classes(), (std::vector<std::string>{"doorslam", "speech", "goat", "sheep"}));
  EXPECT_EQ(m.audioset_labels("doorslam"), (std::vector<std::string>{"Door", "Slam"}));
  EXPECT_EQ(m.audioset_labels("speech"), (std::vector<std::string>{"Male speech, man speaking", "Speech"}));
  EXPECT_EQ(m.dataset_labels("Bleat"), (std::vector<std::string>{"goat", "sheep"}));
  std::istringstream bad("doorslam,Door,Slam\n");
  EXPECT_NE(error_of([&] { ev::LabelMap::parse_csv(bad, "map.csv"); }).find("map.csv:1: 3 fields"),
            std::string::npos);
}

TEST(LabelMap, Yaml) {
  const auto m = ev::LabelMap::parse_yaml("doorslam: [Door, Slam]\nspeech: Speech\n", "map.yaml");
  EXPECT_EQ(m.classes(), (std::vector<std::string>{"doorslam", "speech"}));
  EXPECT_EQ(m.audioset_labels("doorslam").size(), 2u);
  EXPECT_THROW(ev::LabelMap::parse_yaml("- a\n- b\n", "map.yaml"), earmark::Error);
  EXPECT_THROW(ev::LabelMap::parse_yaml("doorslam: []\n", "map.yaml"), earmark::Error);
}

TEST(LabelMap, SharedEventsCsvAgainstAudioSetLabels) {
  EARMARK_REQUIRE_SHARED();
  const auto sounds = earmark::testing::shared_dir() / "sounds" / "events.csv";
  const auto m = ev::LabelMap::load(sounds.string());
  EXPECT_EQ(m.classes().size(), 25u);  // 11 office + 14 Tux Paint classes (sounds/README.md)
  EXPECT_EQ(m.audioset_labels("doorslam"), (std::vector<std::string>{"Door", "Slam"}));
  const auto names = ev::read_audioset_label_names(
      (earmark::testing::shared_dir() / "models" / "efficientat" / "class_labels_indices.csv").string());
  ASSERT_EQ(names.size(), 527u);
  EXPECT_EQ(names[1], "Male speech, man speaking");
  EXPECT_NO_THROW(m.check_known(names, "class_labels_indices.csv"));
}

TEST(LabelMap, MapScoresTakesTheMaximumAndNamesUnknownLabels) {
  earmark::FrameScores s;
  s.hop_s = 0.32;
  s.frames = 2;
  s.labels = {"Door", "Speech", "Slam", "Bleat"};
  s.values = {0.2f, 0.9f, 0.6f, 0.1f,   // frame 0
              0.7f, 0.0f, 0.3f, 0.8f};  // frame 1
  const auto m = ev::LabelMap::parse_yaml("doorslam: [Door, Slam]\ngoat: Bleat\nsheep: Bleat\n", "m.yaml");
  const auto out = m.map_scores(s);
  EXPECT_EQ(out.labels, (std::vector<std::string>{"doorslam", "goat", "sheep"}));
  EXPECT_EQ(out.frames, 2);
  EXPECT_DOUBLE_EQ(out.hop_s, 0.32);
  // doorslam = max(Door, Slam): frame 0 max(0.2, 0.6) = 0.6, frame 1 max(0.7, 0.3) = 0.7.
  EXPECT_FLOAT_EQ(out.at(0, 0), 0.6f);
  EXPECT_FLOAT_EQ(out.at(1, 0), 0.7f);
  EXPECT_FLOAT_EQ(out.at(1, 1), 0.8f);
  EXPECT_FLOAT_EQ(out.at(1, 2), 0.8f);
  const auto bad = ev::LabelMap::parse_yaml("dog: [Bark, Dog, Speech]\n", "m.yaml");
  const std::string e = error_of([&] { bad.map_scores(s); });
  EXPECT_NE(e.find("m.yaml: 2 AudioSet label(s) not in"), std::string::npos) << e;
  EXPECT_NE(e.find("'Bark', 'Dog'"), std::string::npos) << e;
}

TEST(LabelMap, MapEventsDuplicatesDropsAndMerges) {
  const auto m = ev::LabelMap::parse_yaml("doorslam: [Door, Slam]\nknock: [Knock, Door]\n", "m.yaml");
  auto ev_of = [](double on, double off, const char* l, float conf) {
    Event e;
    e.onset = on, e.offset = off, e.label = l, e.confidence = conf;
    return e;
  };
  const std::vector<Event> in = {ev_of(1.0, 2.0, "Door", 0.5f), ev_of(1.5, 2.5, "Slam", 0.9f),
                                 ev_of(5.0, 6.0, "Speech", 0.9f)};
  const auto out = m.map_events(in);
  // Door -> doorslam and knock; Slam -> doorslam, overlapping the Door one -> merged to
  // doorslam [1, 2.5] conf 0.9; Speech is unmapped -> dropped.
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].label, "doorslam");
  EXPECT_DOUBLE_EQ(out[0].onset, 1.0);
  EXPECT_DOUBLE_EQ(out[0].offset, 2.5);
  EXPECT_FLOAT_EQ(out[0].confidence, 0.9f);
  EXPECT_EQ(out[0].class_index, 0);
  EXPECT_EQ(out[1].label, "knock");
  EXPECT_DOUBLE_EQ(out[1].offset, 2.0);
  EXPECT_EQ(out[1].class_index, 1);
  // An event that already carries a dataset class is kept as it is.
  const auto kept = m.map_events(std::vector<Event>{ev_of(7.0, 8.0, "knock", 0.4f)});
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].label, "knock");
}

// ---------------------------------------------------------------- earmark eval

namespace {

int run_cli(const std::string& args, const earmark::testing::fs::path& log) {
  const std::string cmd = earmark::testing::cli_path().string() + " " + args + " > " + log.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string slurp(const earmark::testing::fs::path& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST(EvalCli, EventsScoresAndJson) {
  earmark::testing::TempDir dir;
  {
    std::ofstream(dir / "ref.tsv") << "filename\tonset\toffset\tevent_label\n"
                                      "a.wav\t1\t3\tdog\na.wav\t5\t6\tcat\n";
    std::ofstream(dir / "est.tsv") << "filename\tonset\toffset\tevent_label\na.wav\t1\t3\tdog\n";
    std::ofstream(dir / "dur.tsv") << "filename\tduration\na.wav\t10\nb.wav\t10\n";
    earmark::testing::fs::create_directory(dir / "scores");
    // Perfect scores on a 0.5 s grid: dog 1 on [1,3), cat 1 on [5,6); b.wav all 0.
    earmark::FrameScores a, b;
    a.hop_s = b.hop_s = 0.5;
    a.frames = b.frames = 20;
    a.labels = b.labels = {"dog", "cat"};
    a.values.assign(40, 0.0f);
    b.values.assign(40, 0.0f);
    for (int f = 2; f < 6; ++f) a.values[size_t(f) * 2] = 1.0f;
    for (int f = 10; f < 12; ++f) a.values[size_t(f) * 2 + 1] = 1.0f;
    std::ofstream fa(dir / "scores" / "a.scores.tsv"), fb(dir / "scores" / "b.scores.tsv");
    ev::write_scores_tsv(fa, a);
    ev::write_scores_tsv(fb, b);
  }
  const std::string d = dir.path().string();
  ASSERT_EQ(run_cli("eval --ref " + d + "/ref.tsv --est " + d + "/est.tsv --scores " + d + "/scores --durations " +
                        d + "/dur.tsv --json " + d + "/out.json",
                    dir / "log.txt"),
            0)
      << slurp(dir / "log.txt");
  const std::string log = slurp(dir / "log.txt");
  EXPECT_NE(log.find("Event-based"), std::string::npos);
  EXPECT_NE(log.find("PSDS1"), std::string::npos);
  const auto j = nlohmann::json::parse(slurp(dir / "out.json"));
  // Event-based: TP 1 of Nref 2, Nsys 1 -> P 1, R .5, F 2/3.
  EXPECT_NEAR(j["event_based"]["micro"]["f1"].get<double>(), 2.0 / 3.0, 1e-12);
  // cat has no estimate: precision NaN -> null in JSON.
  EXPECT_TRUE(j["event_based"]["classes"]["cat"]["precision"].is_null());
  // Segment-based over 2 x 10 segments: dog segs 1, 2 hit; cat seg 5 missed: P 1, R 2/3, F .8.
  EXPECT_NEAR(j["segment_based"]["micro"]["f1"].get<double>(), 0.8, 1e-12);
  EXPECT_DOUBLE_EQ(j["segment_based"]["evaluated_length_s"].get<double>(), 20.0);
  // Perfect scores: both classes TPR 1 at eFPR 0 -> PSDS1 = PSDS2 = 1.
  EXPECT_DOUBLE_EQ(j["psds1"]["value"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["psds2"]["value"].get<double>(), 1.0);
  EXPECT_EQ(j["psds1"]["config"]["dtc"].get<double>(), 0.7);
}

// The same as a library call (earmark/evaluate.hpp): what `earmark eval` prints, its JSON and
// the headline numbers, with no front end; notes for the user instead of stderr.
TEST(Evaluate, LibraryCallGivesTextJsonAndNumbers) {
  earmark::testing::TempDir dir;
  std::ofstream(dir / "ref.tsv") << "filename\tonset\toffset\tevent_label\n"
                                    "a.wav\t1\t3\tdog\na.wav\t5\t6\tcat\n";
  std::ofstream(dir / "est.tsv") << "filename\tonset\toffset\tevent_label\na.wav\t1\t3\tDog\na.wav\t7\t8\tFrog\n";
  std::ofstream(dir / "map.csv") << "dataset_label,audioset_label\ndog,Dog\ncat,Cat\n";
  earmark::EvaluateOptions o;
  o.ref = (dir / "ref.tsv").string();
  o.est = (dir / "est.tsv").string();
  o.map = (dir / "map.csv").string();
  o.json_out = (dir / "out.json").string();
  const earmark::Evaluation r = earmark::evaluate(o);
  EXPECT_EQ(r.files, 1u);
  EXPECT_NEAR(r.event_f1, 2.0 / 3.0, 1e-12);  // dog found, cat missed; Frog is not in the map
  EXPECT_TRUE(std::isnan(r.psds1));           // no frame scores
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("1 of 2 estimated events"), std::string::npos) << r.notes[0];
  EXPECT_NE(r.text.find("Event-based"), std::string::npos);
  EXPECT_EQ(slurp(dir / "out.json"), r.json);
  EXPECT_NEAR(nlohmann::json::parse(r.json)["event_based"]["micro"]["f1"].get<double>(), r.event_f1, 1e-12);

  earmark::EvaluateOptions bad = o;
  bad.est.clear();
  EXPECT_THROW(earmark::evaluate(bad), earmark::Error);  // no system output
  bad = o;
  bad.collar = -1;
  try {
    earmark::evaluate(bad);
    ADD_FAILURE() << "a negative collar was taken";
  } catch (const earmark::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--collar"), std::string::npos) << e.what();
  }
}

TEST(EvalCli, BadInputExitsWithFileAndLine) {
  earmark::testing::TempDir dir;
  std::ofstream(dir / "ref.tsv") << "filename\tonset\toffset\tevent_label\na.wav\tone\t2\tdog\n";
  std::ofstream(dir / "est.tsv") << "a.wav\t1\t2\tdog\n";
  const std::string d = dir.path().string();
  EXPECT_EQ(run_cli("eval --ref " + d + "/ref.tsv --est " + d + "/est.tsv", dir / "log.txt"), 2);
  EXPECT_NE(slurp(dir / "log.txt").find("ref.tsv:2: onset 'one' is not a number"), std::string::npos)
      << slurp(dir / "log.txt");
  // An estimate for a file the reference does not know is refused.
  std::ofstream(dir / "ref2.tsv") << "a.wav\t1\t2\tdog\n";
  std::ofstream(dir / "est2.tsv") << "typo.wav\t1\t2\tdog\n";
  EXPECT_EQ(run_cli("eval --ref " + d + "/ref2.tsv --est " + d + "/est2.tsv", dir / "log2.txt"), 2);
  EXPECT_NE(slurp(dir / "log2.txt").find("not in the reference, e.g. 'typo.wav'"), std::string::npos);
}

// ---------------------------------------------------------------- golden cross-check

namespace {

// null in the golden file stands for NaN.
void expect_same(const nlohmann::json& want, double got, const std::string& what) {
  if (want.is_null()) {
    EXPECT_TRUE(std::isnan(got)) << what;
  } else {
    EXPECT_NEAR(got, want.get<double>(), 1e-9 * std::max(1.0, std::abs(want.get<double>()))) << what;
  }
}

void expect_matches(const nlohmann::json& g, const ev::SedResult& r, const std::string& name) {
  const auto& m = g["micro"];
  EXPECT_EQ(r.micro.tp, m["tp"].get<long>()) << name;
  EXPECT_EQ(r.micro.n_ref, m["n_ref"].get<long>()) << name;
  EXPECT_EQ(r.micro.n_sys, m["n_sys"].get<long>()) << name;
  EXPECT_EQ(r.micro.substitutions, m["substitutions"].get<long>()) << name;
  EXPECT_EQ(r.micro.deletions, m["deletions"].get<long>()) << name;
  EXPECT_EQ(r.micro.insertions, m["insertions"].get<long>()) << name;
  expect_same(m["f1"], r.micro.f1, name + " micro f1");
  expect_same(m["error_rate"], r.micro.error_rate, name + " micro ER");
  for (const char* k : {"precision", "recall", "f1", "error_rate"}) {
    const double got = k == std::string("precision") ? r.macro.precision
                       : k == std::string("recall")  ? r.macro.recall
                       : k == std::string("f1")      ? r.macro.f1
                                                     : r.macro.error_rate;
    expect_same(g["macro"][k], got, name + " macro " + k);
  }
  ASSERT_EQ(r.classes.size(), g["classes"].size()) << name;
  for (const auto& c : r.classes) {
    const auto& w = g["classes"][c.label];
    EXPECT_EQ(c.tp, w["tp"].get<long>()) << name << " " << c.label;
    EXPECT_EQ(c.fp, w["fp"].get<long>()) << name << " " << c.label;
    EXPECT_EQ(c.fn, w["fn"].get<long>()) << name << " " << c.label;
    expect_same(w["f1"], c.f1, name + " " + c.label + " f1");
    expect_same(w["error_rate"], c.error_rate, name + " " + c.label + " ER");
  }
}

}  // namespace

// tests/golden/eval was made by tests/golden/eval_reference.py, a separate Python
// implementation of the same definitions, on a seeded random set (6 files, 3 classes, with
// deletions, substitutions, insertions, jitter and overlapping same-class references).
TEST(Golden, MatchesPythonReimplementation) {
  const auto dir = earmark::testing::source_dir() / "tests" / "golden" / "eval";
  const auto ref = ev::read_events_tsv((dir / "ref.tsv").string());
  const auto est = ev::read_events_tsv((dir / "est.tsv").string());
  const auto dur = ev::read_durations_tsv((dir / "durations.tsv").string());
  const auto g = nlohmann::json::parse(slurp(dir / "expected.json"));
  expect_matches(g["event_based"], ev::event_based(ref, est), "event_based");
  ev::EventBasedConfig greedy;
  greedy.matching = ev::Matching::Greedy;
  expect_matches(g["event_based_greedy"], ev::event_based(ref, est, greedy), "event_based_greedy");
  ev::EventBasedConfig onset_only;
  onset_only.evaluate_offset = false;
  expect_matches(g["event_based_onset_only"], ev::event_based(ref, est, onset_only), "event_based_onset_only");
  expect_matches(g["segment_based"], ev::segment_based(ref, est, dur), "segment_based");
  ev::SegmentBasedConfig half;
  half.time_resolution = 0.5;
  expect_matches(g["segment_based_0.5"], ev::segment_based(ref, est, dur, half), "segment_based_0.5");
}
