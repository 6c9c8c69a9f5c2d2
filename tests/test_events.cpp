// detect: label config, median filter and event finding on constructed score sequences.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>

#include "detect/events.hpp"
#include "test_support.hpp"

using earmark::EventsConfig;
using earmark::FrameScores;
using earmark::detect::apply_label_config;
using earmark::detect::find_events;
using earmark::detect::median_filter;
using earmark::detect::validate_label_names;

namespace {

using earmark::testing::error_of;

// 0.25 s is exact in binary, so hand-worked times compare exactly.
constexpr double kHop = 0.25;

// A grid from per-class score sequences (all the same length).
FrameScores grid(const std::vector<std::string>& labels, const std::vector<std::vector<float>>& tracks,
                 double hop = kHop) {
  FrameScores s;
  s.hop_s = hop;
  s.labels = labels;
  s.frames = tracks.empty() ? 0 : int(tracks[0].size());
  s.values.resize(size_t(s.frames) * labels.size());
  for (size_t c = 0; c < tracks.size(); ++c) {
    EXPECT_EQ(tracks[c].size(), size_t(s.frames));
    for (int f = 0; f < s.frames; ++f) s.values[size_t(f) * labels.size() + c] = tracks[c][size_t(f)];
  }
  return s;
}

// Plain thresholds and no smoothing, merging or minimum length, so each test turns on only
// the step it is about.
EventsConfig plain() {
  EventsConfig c;
  c.threshold_on = 0.5;
  c.threshold_off = 0.3;
  c.median_s = 0;
  c.min_duration_s = 0;
  c.merge_gap_s = 0;
  return c;
}

std::vector<float> track_of(const FrameScores& s, const std::string& label) {
  const auto it = std::find(s.labels.begin(), s.labels.end(), label);
  EXPECT_NE(it, s.labels.end()) << label;
  if (it == s.labels.end()) return {};
  std::vector<float> v;
  for (int f = 0; f < s.frames; ++f) v.push_back(s.at(f, int(it - s.labels.begin())));
  return v;
}

}  // namespace

// ---- find_events -------------------------------------------------------------------------

TEST(FindEvents, SingleBumpGivesOneEventWithExactTimes) {
  const auto s = grid({"Dog"}, {{0, 0, 0.9f, 0.8f, 0.7f, 0, 0, 0}});
  const auto ev = find_events(s, plain(), 2.0);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].label, "Dog");
  EXPECT_EQ(ev[0].class_index, 0);
  EXPECT_DOUBLE_EQ(ev[0].onset, 0.5);    // frame 2 * 0.25
  EXPECT_DOUBLE_EQ(ev[0].offset, 1.25);  // (frame 4 + 1) * 0.25
  EXPECT_FLOAT_EQ(ev[0].confidence, 0.9f);
}

TEST(FindEvents, HysteresisKeepsEventThroughDipAboveOff) {
  // on 0.5, off 0.3: 0.4 is between them, so frames 1-3 stay one event: [0.25, 1.0).
  const auto ev = find_events(grid({"A"}, {{0, 0.9f, 0.4f, 0.9f, 0}}), plain(), 10.0);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_DOUBLE_EQ(ev[0].onset, 0.25);
  EXPECT_DOUBLE_EQ(ev[0].offset, 1.0);
}

TEST(FindEvents, DipBelowOffSplitsEvent) {
  // 0.1 < off: frames 1 and 3 become [0.25, 0.5) and [0.75, 1.0).
  const auto ev = find_events(grid({"A"}, {{0, 0.9f, 0.1f, 0.9f, 0}}), plain(), 10.0);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_DOUBLE_EQ(ev[0].onset, 0.25);
  EXPECT_DOUBLE_EQ(ev[0].offset, 0.5);
  EXPECT_DOUBLE_EQ(ev[1].onset, 0.75);
  EXPECT_DOUBLE_EQ(ev[1].offset, 1.0);
}

TEST(FindEvents, HysteresisExtendsBackwardAndForwardWhileAboveOff) {
  // Frames 0-1 and 3-4 are above off (0.3) only; frame 2 fires; frame 5 is below off.
  const auto ev = find_events(grid({"A"}, {{0.4f, 0.4f, 0.9f, 0.4f, 0.35f, 0.2f, 0.4f}}), plain(), 10.0);
  ASSERT_EQ(ev.size(), 1u);  // frame 6 is above off but its run never reaches on
  EXPECT_DOUBLE_EQ(ev[0].onset, 0.0);
  EXPECT_DOUBLE_EQ(ev[0].offset, 1.25);  // (4 + 1) * 0.25
}

TEST(FindEvents, ScoresBetweenOffAndOnAloneGiveNothing) {
  EXPECT_TRUE(find_events(grid({"A"}, {{0.1f, 0.45f, 0.45f, 0.1f}}), plain(), 10.0).empty());
}

TEST(FindEvents, MergesGapShorterThanMergeGap) {
  const auto s = grid({"A"}, {{0.9f, 0.9f, 0, 0.9f, 0.9f, 0, 0, 0.9f}});
  auto cfg = plain();
  cfg.merge_gap_s = 0.3;  // the 1-frame gap (0.25 s) merges; the 2-frame gap (0.5 s) does not
  auto ev = find_events(s, cfg, 10.0);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_DOUBLE_EQ(ev[0].onset, 0.0);
  EXPECT_DOUBLE_EQ(ev[0].offset, 1.25);
  EXPECT_DOUBLE_EQ(ev[1].onset, 1.75);
  EXPECT_DOUBLE_EQ(ev[1].offset, 2.0);

  cfg.merge_gap_s = 0.25;  // a gap must be strictly shorter than merge_gap_s
  EXPECT_EQ(find_events(s, cfg, 10.0).size(), 3u);
}

TEST(FindEvents, MergeGapComparesExactlyOnTheModelGrid) {
  // On the 0.32 s grid a 2-column gap is 0.64 s, equal to merge_gap_s: not merged even though
  // 2 * 0.32 and 3 * 0.32 carry rounding error. A 1-column gap (0.32 s) is merged.
  const auto s = grid({"A"}, {{0.9f, 0, 0, 0.9f, 0, 0.9f}}, 0.32);
  auto cfg = plain();
  cfg.merge_gap_s = 0.64;
  const auto ev = find_events(s, cfg, 10.0);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_NEAR(ev[1].onset, 0.96, 1e-12);   // 3 * 0.32
  EXPECT_NEAR(ev[1].offset, 1.92, 1e-12);  // 6 * 0.32
}

TEST(FindEvents, DropsEventsShorterThanMinDurationAfterMerging) {
  // Frame 0 alone (0.25 s) is too short for 0.5 s. Frames 3 and 5 are 1 frame each but merge
  // over the 1-frame gap into frames 3-5 = 0.75 s, which is kept.
  const auto s = grid({"A"}, {{0.9f, 0, 0, 0.9f, 0, 0.9f, 0}});
  auto cfg = plain();
  cfg.min_duration_s = 0.5;
  cfg.merge_gap_s = 0.3;
  const auto ev = find_events(s, cfg, 10.0);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_DOUBLE_EQ(ev[0].onset, 0.75);
  EXPECT_DOUBLE_EQ(ev[0].offset, 1.5);
}

TEST(FindEvents, OverlappingClassesAreBothReportedSortedByOnsetThenLabel) {
  // "Zebra" is class 0 but "Apple" sorts first at the same onset.
  const auto s = grid({"Zebra", "Apple", "Mango"}, {{0, 0.9f, 0.9f, 0.9f, 0.9f, 0, 0, 0},
                                                    {0, 0.8f, 0.8f, 0, 0, 0, 0, 0},
                                                    {0, 0, 0, 0.7f, 0.7f, 0.7f, 0.7f, 0}});
  const auto ev = find_events(s, plain(), 10.0);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].label, "Apple");
  EXPECT_EQ(ev[0].class_index, 1);
  EXPECT_EQ(ev[1].label, "Zebra");
  EXPECT_DOUBLE_EQ(ev[1].onset, 0.25);
  EXPECT_DOUBLE_EQ(ev[1].offset, 1.25);
  EXPECT_EQ(ev[2].label, "Mango");
  EXPECT_DOUBLE_EQ(ev[2].onset, 0.75);  // overlaps Zebra's [0.25, 1.25)
  EXPECT_DOUBLE_EQ(ev[2].offset, 1.75);
}

TEST(FindEvents, MedianFilterRemovesOneFrameSpikeAndBridgesOneFrameDropout) {
  auto cfg = plain();
  cfg.median_s = 0.75;  // 3 frames of 0.25 s
  EXPECT_TRUE(find_events(grid({"A"}, {{0, 0, 0, 0.9f, 0, 0, 0}}), cfg, 10.0).empty());

  const auto ev = find_events(grid({"A"}, {{0, 0.9f, 0.9f, 0, 0.9f, 0.9f, 0}}), cfg, 10.0);
  ASSERT_EQ(ev.size(), 1u);  // frame 3 becomes median(0.9, 0, 0.9) = 0.9
  EXPECT_DOUBLE_EQ(ev[0].onset, 0.25);
  EXPECT_DOUBLE_EQ(ev[0].offset, 1.5);
}

TEST(FindEvents, EvenMedianLengthIsMadeOdd) {
  // 0.5 s / 0.25 s = 2 frames -> 3, which removes a 1-frame spike (width 1 would not).
  auto cfg = plain();
  cfg.median_s = 0.5;
  EXPECT_TRUE(find_events(grid({"A"}, {{0, 0, 0.9f, 0, 0}}), cfg, 10.0).empty());
  cfg.median_s = 0.1;  // 0.4 frames rounds to 0 -> 1: no smoothing
  EXPECT_EQ(find_events(grid({"A"}, {{0, 0, 0.9f, 0, 0}}), cfg, 10.0).size(), 1u);
}

TEST(FindEvents, EventsAtFileEdgesAndOffsetClippedToDuration) {
  // 4 frames cover [0, 1.0) but the audio is 0.9 s long.
  const auto s = grid({"A"}, {{0.9f, 0, 0, 0.9f}});
  auto ev = find_events(s, plain(), 0.9);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_DOUBLE_EQ(ev[0].onset, 0.0);
  EXPECT_DOUBLE_EQ(ev[0].offset, 0.25);
  EXPECT_DOUBLE_EQ(ev[1].onset, 0.75);
  EXPECT_DOUBLE_EQ(ev[1].offset, 0.9);

  // A frame that starts at or after the end of the audio (grid padding) yields no event.
  ev = find_events(s, plain(), 0.75);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_DOUBLE_EQ(ev[0].onset, 0.0);

  // Median edge replication keeps edge events: frame 0 -> median(0.9, 0.9, 0.9).
  auto cfg = plain();
  cfg.median_s = 0.75;
  ev = find_events(grid({"A"}, {{0.9f, 0.9f, 0, 0, 0, 0.9f, 0.9f}}), cfg, 1.75);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_DOUBLE_EQ(ev[0].onset, 0.0);
  EXPECT_DOUBLE_EQ(ev[0].offset, 0.5);
  EXPECT_DOUBLE_EQ(ev[1].onset, 1.25);
  EXPECT_DOUBLE_EQ(ev[1].offset, 1.75);
}

TEST(FindEvents, MinDurationIsMeasuredAfterClipping) {
  // Frames 2-3 = [0.5, 1.0) clipped to [0.5, 0.8) = 0.3 s < 0.4 s.
  auto cfg = plain();
  cfg.min_duration_s = 0.4;
  EXPECT_TRUE(find_events(grid({"A"}, {{0, 0, 0.9f, 0.9f}}), cfg, 0.8).empty());
  EXPECT_EQ(find_events(grid({"A"}, {{0, 0, 0.9f, 0.9f}}), cfg, 1.0).size(), 1u);
}

TEST(FindEvents, PerClassOverrides) {
  const std::vector<float> bump = {0, 0.6f, 0.6f, 0};
  const auto s = grid({"Speech", "Music"}, {bump, bump});
  auto cfg = plain();
  cfg.per_class["speech"].on = 0.7;  // case-insensitive; 0.6 no longer fires
  auto ev = find_events(s, cfg, 10.0);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].label, "Music");

  // Only 'on' given: off becomes min(global off 0.3, on 0.2) = 0.2, so the 0.25 shoulders
  // (below the global off) belong to the event: frames 0-3 = [0, 1.0).
  cfg = plain();
  cfg.per_class["Music"].on = 0.2;
  ev = find_events(grid({"Speech", "Music"}, {{0, 0, 0, 0}, {0.25f, 0.6f, 0.6f, 0.25f}}), cfg, 10.0);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_DOUBLE_EQ(ev[0].onset, 0.0);
  EXPECT_DOUBLE_EQ(ev[0].offset, 1.0);

  // Per-class median and minimum duration.
  cfg = plain();
  cfg.per_class["Speech"].median_s = 0.75;    // removes Speech's spike
  cfg.per_class["Music"].min_duration_s = 0.5;  // drops Music's 1-frame event
  const std::vector<float> spike = {0, 0, 0.9f, 0, 0};
  EXPECT_TRUE(find_events(grid({"Speech", "Music"}, {spike, spike}), cfg, 10.0).empty());
  EXPECT_EQ(find_events(grid({"Speech", "Music", "Dog"}, {spike, spike, spike}), cfg, 10.0).size(), 1u);
}

TEST(FindEvents, PerClassNamesNotInTheGridAreIgnoredHere) {
  auto cfg = plain();
  cfg.per_class["Bark"].on = 0.9;  // e.g. removed by a deny list before find_events
  EXPECT_EQ(find_events(grid({"Dog"}, {{0, 0.6f, 0}}), cfg, 10.0).size(), 1u);
}

TEST(FindEvents, MaxClassesPerFrameKeepsOnlyTheTopClasses) {
  const auto s = grid({"A", "B"}, {{0.9f, 0.9f, 0.6f, 0.6f}, {0.6f, 0.6f, 0.9f, 0.9f}});
  auto cfg = plain();
  EXPECT_EQ(find_events(s, cfg, 10.0).size(), 2u);  // both span [0, 1.0)
  cfg.max_classes_per_frame = 1;
  const auto ev = find_events(s, cfg, 10.0);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].label, "A");
  EXPECT_DOUBLE_EQ(ev[0].offset, 0.5);
  EXPECT_EQ(ev[1].label, "B");
  EXPECT_DOUBLE_EQ(ev[1].onset, 0.5);
  EXPECT_DOUBLE_EQ(ev[1].offset, 1.0);
}

TEST(FindEvents, EmptyGridGivesNoEvents) {
  FrameScores s;
  s.labels = {"A", "B"};
  EXPECT_TRUE(find_events(s, plain(), 0.0).empty());
  EXPECT_TRUE(find_events(s, plain(), 5.0).empty());
  FrameScores no_labels;
  no_labels.frames = 3;
  EXPECT_TRUE(find_events(no_labels, plain(), 1.0).empty());
}

TEST(FindEvents, NaNScoresCountAsZero) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // NaN breaks the event like a 0 would: two events, finite confidences.
  auto ev = find_events(grid({"A"}, {{0.9f, nan, 0.8f, nan}}), plain(), 10.0);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_FLOAT_EQ(ev[0].confidence, 0.9f);
  EXPECT_FLOAT_EQ(ev[1].confidence, 0.8f);
  EXPECT_DOUBLE_EQ(ev[1].offset, 0.75);

  // Through the median filter: frame 2 = median(0.9, NaN->0, 0.9) = 0.9; the all-NaN class
  // and an infinite score give nothing.
  auto cfg = plain();
  cfg.median_s = 0.75;
  const float inf = std::numeric_limits<float>::infinity();
  ev = find_events(grid({"A", "B", "C"}, {{0.9f, 0.9f, nan, 0.9f, 0.9f}, {nan, nan, nan, nan, nan}, {0, 0, inf, 0, 0}}),
                   cfg, 10.0);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_DOUBLE_EQ(ev[0].offset, 1.25);
  EXPECT_TRUE(std::isfinite(ev[0].confidence));
}

TEST(FindEvents, RejectsInconsistentGridAndBadDuration) {
  FrameScores s = grid({"A"}, {{0.9f, 0.9f}});
  s.values.pop_back();
  EXPECT_NE(error_of([&] { find_events(s, plain(), 1.0); }).find("frames x labels"), std::string::npos);
  s = grid({"A"}, {{0.9f, 0.9f}});
  s.hop_s = 0;
  EXPECT_THROW(find_events(s, plain(), 1.0), earmark::Error);
  s = grid({"A"}, {{0.9f, 0.9f}});
  EXPECT_THROW(find_events(s, plain(), -1.0), earmark::Error);
  EXPECT_THROW(find_events(s, plain(), std::nan("")), earmark::Error);
  auto cfg = plain();
  cfg.median_s = 60;
  s.hop_s = 1e-6;  // 6e7 frames: a unit mistake
  EXPECT_THROW(find_events(s, cfg, 1.0), earmark::Error);
}

// ---- median_filter -----------------------------------------------------------------------

TEST(MedianFilter, WidthOneIsIdentity) {
  const std::vector<float> x = {0.3f, 0.1f, 0.9f, 0.2f};
  EXPECT_EQ(median_filter(x, 1), x);
  EXPECT_TRUE(median_filter({}, 5).empty());
}

TEST(MedianFilter, RemovesSpikeAndDropoutWithEdgeReplication) {
  EXPECT_EQ(median_filter({0, 0, 1, 0, 0}, 3), (std::vector<float>{0, 0, 0, 0, 0}));
  EXPECT_EQ(median_filter({1, 1, 0, 1, 1}, 3), (std::vector<float>{1, 1, 1, 1, 1}));
  // Edges: out[0] = median(x0, x0, x1) = median(1, 1, 0) = 1; out[4] = median(0, 2, 2) = 2.
  EXPECT_EQ(median_filter({1, 0, 0, 0, 2}, 3), (std::vector<float>{1, 0, 0, 0, 2}));
  // Width 5 on 3 values, windows x[i-2..i+2] with x[<0] = x0 and x[>2] = x2:
  // out[0] = median(5, 5, 5, 1, 3) = 5; out[1] = median(5, 5, 1, 3, 3) = 3;
  // out[2] = median(5, 1, 3, 3, 3) = 3.
  EXPECT_EQ(median_filter({5, 1, 3}, 5), (std::vector<float>{5, 3, 3}));
}

TEST(MedianFilter, EvenOrNonPositiveWidthIsAnError) {
  EXPECT_THROW(median_filter({1, 2, 3}, 2), earmark::Error);
  EXPECT_THROW(median_filter({1, 2, 3}, 0), earmark::Error);
  EXPECT_THROW(median_filter({1, 2, 3}, -3), earmark::Error);
}

TEST(MedianFilter, NaNIsZero) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(median_filter({nan, 1, nan}, 1), (std::vector<float>{0, 1, 0}));
  EXPECT_EQ(median_filter({nan, 1, 1, nan, nan}, 3), (std::vector<float>{0, 1, 1, 0, 0}));
}

TEST(MedianFilter, MatchesSortedWindowsForShortAndLongWidths) {
  // Long widths take the two-set path; both must equal sorting each edge-padded window.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> level(0, 9);  // few distinct values: many ties
  std::vector<float> x(500);
  for (auto& v : x) v = float(level(rng)) / 10.0f;
  for (int width : {3, 9, 63, 65, 101, 1201}) {
    const auto got = median_filter(x, width);
    ASSERT_EQ(got.size(), x.size());
    const long half = width / 2, n = long(x.size());
    for (long i = 0; i < n; ++i) {
      std::vector<float> w;
      for (long j = i - half; j <= i + half; ++j) w.push_back(x[size_t(std::clamp(j, 0L, n - 1))]);
      std::sort(w.begin(), w.end());
      ASSERT_EQ(got[size_t(i)], w[size_t(half)]) << "width " << width << " frame " << i;
    }
  }
}

// ---- apply_label_config ------------------------------------------------------------------

TEST(LabelConfig, EmptyConfigKeepsEverything) {
  const auto s = grid({"Bark", "Yip", "Speech"}, {{0.1f, 0.2f}, {0.3f, 0.4f}, {0.5f, 0.6f}});
  const auto out = apply_label_config(s, EventsConfig{});
  EXPECT_EQ(out.labels, s.labels);
  EXPECT_EQ(out.values, s.values);
  EXPECT_EQ(out.frames, 2);
  EXPECT_DOUBLE_EQ(out.hop_s, kHop);
}

TEST(LabelConfig, GroupTakesMaxAndReplacesItsMembers) {
  const auto s = grid({"Bark", "Yip", "Speech"}, {{0.1f, 0.7f, 0.2f}, {0.6f, 0.3f, 0.2f}, {0.5f, 0.5f, 0.5f}});
  EventsConfig cfg;
  cfg.groups["Doggy"] = {"bark", "YIP"};
  const auto out = apply_label_config(s, cfg);
  EXPECT_EQ(out.labels, (std::vector<std::string>{"Speech", "Doggy"}));
  EXPECT_EQ(track_of(out, "Doggy"), (std::vector<float>{0.6f, 0.7f, 0.2f}));  // frame-wise max
  EXPECT_EQ(track_of(out, "Speech"), (std::vector<float>{0.5f, 0.5f, 0.5f}));

  // A member named in allow stays on its own besides the group.
  cfg.allow = {"Doggy", "Bark"};
  EXPECT_EQ(apply_label_config(s, cfg).labels, (std::vector<std::string>{"Bark", "Doggy"}));
}

TEST(LabelConfig, GroupNamedLikeALabelIncludesThatLabel) {
  const auto s = grid({"Dog", "Bark", "Cat"}, {{0.8f, 0.1f}, {0.2f, 0.9f}, {0.3f, 0.3f}});
  EventsConfig cfg;
  cfg.groups["Dog"] = {"Bark"};
  const auto out = apply_label_config(s, cfg);
  EXPECT_EQ(out.labels, (std::vector<std::string>{"Cat", "Dog"}));
  EXPECT_EQ(track_of(out, "Dog"), (std::vector<float>{0.8f, 0.9f}));
}

TEST(LabelConfig, AllowAndDeny) {
  const auto s = grid({"Speech", "Music", "Dog", "Cat"}, {{0.1f}, {0.2f}, {0.3f}, {0.4f}});
  EventsConfig cfg;
  cfg.allow = {"cat", "Speech"};
  auto out = apply_label_config(s, cfg);
  EXPECT_EQ(out.labels, (std::vector<std::string>{"Speech", "Cat"}));  // model order
  EXPECT_EQ(out.values, (std::vector<float>{0.1f, 0.4f}));

  cfg = EventsConfig{};
  cfg.deny = {"music"};
  EXPECT_EQ(apply_label_config(s, cfg).labels, (std::vector<std::string>{"Speech", "Dog", "Cat"}));

  cfg.allow = {"Music", "Dog"};  // deny wins over allow
  EXPECT_EQ(apply_label_config(s, cfg).labels, (std::vector<std::string>{"Dog"}));

  cfg = EventsConfig{};
  cfg.groups["Pets"] = {"Dog", "Cat"};
  cfg.deny = {"Pets"};
  EXPECT_EQ(apply_label_config(s, cfg).labels, (std::vector<std::string>{"Speech", "Music"}));
  cfg.deny = {};
  cfg.allow = {"Speech"};  // a group not allowed is dropped too
  EXPECT_EQ(apply_label_config(s, cfg).labels, (std::vector<std::string>{"Speech"}));
}

TEST(LabelConfig, UnknownNamesAreErrorsWithSuggestions) {
  const auto s = grid({"Speech", "Music", "Dog", "Bark", "Cat"}, {{0}, {0}, {0}, {0}, {0}});
  EventsConfig cfg;
  cfg.allow = {"Speach"};
  std::string msg = error_of([&] { apply_label_config(s, cfg); });
  EXPECT_NE(msg.find("events.allow"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'Speach'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'Speech'"), std::string::npos) << msg;  // distance 1, the closest

  cfg = EventsConfig{};
  cfg.deny = {"Dgo"};
  msg = error_of([&] { apply_label_config(s, cfg); });
  EXPECT_NE(msg.find("'Dog'"), std::string::npos) << msg;

  cfg = EventsConfig{};
  cfg.groups["Pets"] = {"Dog", "Kat"};
  msg = error_of([&] { apply_label_config(s, cfg); });
  EXPECT_NE(msg.find("events.groups.Pets"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'Kat'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'Cat'"), std::string::npos) << msg;

  cfg = EventsConfig{};
  cfg.per_class["Musik"].on = 0.5;
  msg = error_of([&] { validate_label_names(s.labels, cfg); });
  EXPECT_NE(msg.find("events.per_class"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'Music'"), std::string::npos) << msg;
  EXPECT_THROW(apply_label_config(s, cfg), earmark::Error);

  cfg.per_class.clear();
  cfg.groups["Pets"] = {"Dog", "Cat"};
  cfg.per_class["pets"].on = 0.5;  // group names are valid keys
  EXPECT_NO_THROW(validate_label_names(s.labels, cfg));
  cfg.per_class["Pets"].on = 0.6;  // the same name twice
  EXPECT_THROW(validate_label_names(s.labels, cfg), earmark::Error);
}

TEST(LabelConfig, AtMostThreeSuggestions) {
  const std::vector<std::string> labels = {"Aa", "Ab", "Ac", "Ad", "Ae"};
  EventsConfig cfg;
  cfg.allow = {"Ax"};
  const std::string msg = error_of([&] { validate_label_names(labels, cfg); });
  // All five are 1 edit away; the first three in label order are offered.
  EXPECT_NE(msg.find("'Aa', 'Ab' or 'Ac'"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("'Ad'"), std::string::npos) << msg;
}

TEST(LabelConfig, SuggestsFromTheRealAudioSetLabels) {
  EARMARK_REQUIRE_SHARED();
  std::ifstream in(earmark::testing::models_dir() / "class_labels_indices.csv");
  ASSERT_TRUE(in);
  std::vector<std::string> labels;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    // index,mid,display_name (display names with commas are quoted)
    const auto second = line.find(',', line.find(',') + 1);
    std::string name = line.substr(second + 1);
    if (!name.empty() && name.back() == '\r') name.pop_back();
    if (name.size() >= 2 && name.front() == '"') name = name.substr(1, name.size() - 2);
    labels.push_back(name);
  }
  ASSERT_EQ(labels.size(), 527u);
  EventsConfig cfg;
  cfg.groups["Dog"] = {"Bark", "Yip", "Howl", "Bow-wow", "Growling", "Whimper (dog)"};
  cfg.allow = {"dog", "male speech, man speaking"};
  EXPECT_NO_THROW(validate_label_names(labels, cfg));
  cfg.allow = {"Doorbel"};
  const std::string msg = error_of([&] { validate_label_names(labels, cfg); });
  EXPECT_NE(msg.find("did you mean 'Doorbell'"), std::string::npos) << msg;
}

TEST(LabelConfig, NaNMembersCountAsZeroInGroups) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto s = grid({"Bark", "Yip"}, {{nan, 0.4f}, {nan, nan}});
  EventsConfig cfg;
  cfg.groups["Dog"] = {"Bark", "Yip"};
  EXPECT_EQ(apply_label_config(s, cfg).values, (std::vector<float>{0.0f, 0.4f}));
}

TEST(LabelConfig, GroupEventsComeOutUnderTheGroupName) {
  // Bark fires in frames 0-1, Yip in 2-3: the group is one event over frames 0-3.
  const auto s = grid({"Bark", "Yip"}, {{0.9f, 0.9f, 0, 0}, {0, 0, 0.8f, 0.8f}});
  EventsConfig cfg = plain();
  cfg.groups["Dog"] = {"Bark", "Yip"};
  const auto ev = find_events(apply_label_config(s, cfg), cfg, 10.0);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].label, "Dog");
  EXPECT_DOUBLE_EQ(ev[0].onset, 0.0);
  EXPECT_DOUBLE_EQ(ev[0].offset, 1.0);
  EXPECT_FLOAT_EQ(ev[0].confidence, 0.9f);
}

// The compact (half-float) score grid a detector keeps (earmark::ScoreValues).
TEST(ScoreValues, HalfFloatEncodingIsExactWhereItCanBeAndRoundsToNearestEven) {
  using earmark::float_to_half;
  using earmark::half_to_float;
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0) {
      EXPECT_TRUE(std::isnan(half_to_float(uint16_t(h)))) << h;
      continue;
    }
    ASSERT_EQ(float_to_half(half_to_float(uint16_t(h))), h) << "half " << h << " = " << half_to_float(uint16_t(h));
  }
  EXPECT_EQ(float_to_half(1.0f), 0x3c00u);
  EXPECT_EQ(float_to_half(-2.0f), 0xc000u);
  EXPECT_EQ(float_to_half(0.1f), 0x2e66u);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bffu);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00u);  // rounds up past the largest half: infinity
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001u);         // smallest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000u);         // halfway to it: ties to even (0)
  EXPECT_EQ(float_to_half(std::ldexp(3.0f, -25)), 0x0002u);         // 1.5 steps: ties to even (2)
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -14) * 0.99999f), 0x0400u);  // rounds up into the normals
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00u);      // halfway: ties to even
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02u);  // halfway: ties to even (up)
  EXPECT_EQ(float_to_half(-0.0f), 0x8000u);
  EXPECT_EQ(float_to_half(INFINITY), 0x7c00u);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
}

TEST(ScoreValues, CompactGridKeepsScoresToElevenBitsAndPrintsTheShortestDecimal) {
  auto v = earmark::ScoreValues::make_compact();
  ASSERT_TRUE(v.compact());
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(10000);
  for (auto& s : x) s = u(rng);
  for (float s : x) v.push_back(s);
  ASSERT_EQ(v.size(), x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_LE(std::abs(v[i] - x[i]), std::max(x[i] * std::ldexp(1.0f, -11), std::ldexp(1.0f, -25))) << x[i];
    EXPECT_EQ(earmark::float_to_half(v.printable(i)), earmark::float_to_half(v[i]));  // reads back the same
  }
  v.assign(3, 0.0f);
  v[0] = 0.1f;
  v[1] = 0.9f;
  v[2] = 0.3f;
  EXPECT_NE(v[0], 0.1f);  // stored as 0.0999756
  EXPECT_EQ(v.printable(0), 0.1f);
  EXPECT_EQ(v.printable(1), 0.9f);
  EXPECT_EQ(v.printable(2), 0.3f);
  // A grid read from a file or built by hand keeps floats (evaluation is exact).
  earmark::ScoreValues exact{0.123456789f};
  EXPECT_FALSE(exact.compact());
  EXPECT_EQ(exact[0], 0.123456789f);
  EXPECT_EQ(exact.printable(0), 0.123456789f);
}

// A long file's grid moves to a temporary file (ScoreValues::spill_beyond, util/spill.hpp) and
// reads back exactly as the grid in memory would, whatever the access order.
TEST(ScoreValues, ALongGridSpillsToATemporaryFileAndReadsBackTheSame) {
  const size_t width = 7, rows = 1500;  // several blocks of 512 rows and an open one
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  auto memory = earmark::ScoreValues::make_compact();
  auto disk = earmark::ScoreValues::make_compact();
  disk.spill_beyond(width, 100);
  for (size_t i = 0; i < rows * width; ++i) {
    const float x = u(rng);
    memory.push_back(x);
    disk.push_back(x);
  }
  ASSERT_TRUE(disk.spilled());
  ASSERT_FALSE(memory.spilled());
  ASSERT_EQ(disk.size(), memory.size());
  for (size_t c = 0; c < width; ++c)  // a class's scores over the file
    for (size_t r = 0; r < rows; ++r) ASSERT_EQ(disk[r * width + c], memory[r * width + c]) << r << " " << c;
  for (size_t i = 0; i < memory.size(); ++i) ASSERT_EQ(disk[i], memory[i]) << i;  // row by row
  for (int k = 0; k < 5000; ++k) {  // anywhere
    const size_t i = size_t(rng()) % memory.size();
    ASSERT_EQ(disk[i], memory[i]) << i;
    ASSERT_EQ(disk.printable(i), memory.printable(i)) << i;
  }
  // Writes: into a written block (cached or not) and into the open one.
  for (size_t i : {size_t(3), size_t(600 * width + 2), memory.size() - 1}) {
    disk[i] = 0.25f;
    memory[i] = 0.25f;
  }
  EXPECT_TRUE(disk == memory);
  // A copy has its own file: changing it leaves the original alone.
  earmark::ScoreValues copy = disk;
  ASSERT_TRUE(copy.spilled());
  copy.set(5, 0.5f);
  EXPECT_EQ(copy[5], 0.5f);
  EXPECT_EQ(disk[5], memory[5]);
  // Shrinking into written blocks and growing again.
  disk.resize(300 * width);
  memory.resize(300 * width);
  for (size_t i = 0; i < 700 * width; ++i) {
    disk.push_back(float(i % 100) / 100.0f);
    memory.push_back(float(i % 100) / 100.0f);
  }
  EXPECT_TRUE(disk == memory);
  // Moved, it is the same grid; a grid under its limit stays in memory.
  const earmark::ScoreValues moved = std::move(disk);
  EXPECT_TRUE(moved == memory);
  auto small = earmark::ScoreValues::make_compact();
  small.spill_beyond(width, 1000);
  for (int i = 0; i < 1000; ++i) small.push_back(0.5f);
  EXPECT_FALSE(small.spilled());
  small.push_back(0.5f);
  EXPECT_TRUE(small.spilled());
}

TEST(ScoreValues, EventsFromASpilledGridAreTheEventsFromTheGridInMemory) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> noise(0.0f, 0.2f);
  const std::vector<std::string> labels = {"Speech", "Dog", "Bark", "Music"};
  FrameScores memory;
  memory.hop_s = 0.16;
  memory.frames = 3000;  // 8 minutes
  memory.labels = labels;
  memory.values = earmark::ScoreValues::make_compact();
  for (int f = 0; f < memory.frames; ++f)
    for (size_t c = 0; c < labels.size(); ++c)
      memory.values.push_back((f / 40) % int(c + 2) == 0 ? 0.6f + noise(rng) : noise(rng));
  FrameScores disk = memory;
  disk.values = earmark::ScoreValues::make_compact();
  disk.values.spill_beyond(labels.size(), 10);
  for (size_t i = 0; i < memory.values.size(); ++i) disk.values.push_back(memory.values[i]);
  ASSERT_TRUE(disk.values.spilled());
  EventsConfig cfg = plain();
  const auto a = find_events(memory, cfg, 480.0), b = find_events(disk, cfg, 480.0);
  ASSERT_GT(a.size(), 20u);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].label, b[i].label);
    EXPECT_EQ(a[i].onset, b[i].onset);
    EXPECT_EQ(a[i].offset, b[i].offset);
    EXPECT_EQ(a[i].confidence, b[i].confidence);
  }
  cfg.groups["Dog"] = {"Bark"};  // a grid made from a spilled grid is spilled too
  const FrameScores grouped = apply_label_config(disk, cfg);
  EXPECT_TRUE(grouped.values.spilled());
  EXPECT_TRUE(grouped.values == apply_label_config(memory, cfg).values);
}

TEST(ScoreValues, ASpillThatCannotWriteSaysWhereAndWhatToDo) {
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old ? old : "";
  setenv("TMPDIR", "/nonexistent/earmark-tmp", 1);
  auto v = earmark::ScoreValues::make_compact();
  v.spill_beyond(4, 8);
  for (int i = 0; i < 8; ++i) v.push_back(0.1f);
  std::string message;
  try {
    v.push_back(0.1f);
  } catch (const earmark::Error& e) {
    message = e.what();
  }
  if (old) setenv("TMPDIR", saved.c_str(), 1); else unsetenv("TMPDIR");
  EXPECT_NE(message.find("/nonexistent/earmark-tmp"), std::string::npos) << message;
  EXPECT_NE(message.find("TMPDIR"), std::string::npos) << message;
  EXPECT_NE(message.find("model.spill_after_s"), std::string::npos) << message;
  EXPECT_FALSE(v.spilled());
}
