// False alarms (issue: what happened, said once): background segments, label bursts, the
// calibration table (thresholds and confidence map) and how the detector uses it, on constructed
// inputs; steady noise and hum through the whole detector.
#include <cmath>
#include <map>
#include <random>

#include <fmt/format.h>

#include "decode/decoder.hpp"
#include "detect/background.hpp"
#include "detect/bursts.hpp"
#include "detect/calibration.hpp"
#include "detect/events.hpp"
#include "eval/calibrate.hpp"
#include "synth/soundscape.hpp"
#include "test_support.hpp"

namespace earmark {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

Event ev(double on, double off, const std::string& label, float score = 0.5f) {
  Event e;
  e.onset = on;
  e.offset = off;
  e.label = label;
  e.confidence = score;
  e.score = score;
  return e;
}

size_t count_kind(const std::vector<Event>& v, EventKind k, const std::string& label = "") {
  return size_t(std::count_if(v.begin(), v.end(), [&](const Event& e) { return e.kind == k && (label.empty() || e.label == label); }));
}

// ---- backgrounds ---------------------------------------------------------------------------

TEST(Backgrounds, SteadyFlickeringClassBecomesOneSegment) {
  // 60 s of a noise class that the events stage cut into 11 pieces with gaps of 1-3 s.
  std::vector<Event> in;
  double t = 0;
  for (int i = 0; i < 11; ++i) {
    in.push_back(ev(t, t + 3.5, "Pink noise", 0.4f + 0.01f * float(i)));
    t += 3.5 + 1.0 + (i % 3);
  }
  in.push_back(ev(10.0, 10.6, "Dog", 0.8f));  // a sound over it stays an event
  const auto out = detect::mark_backgrounds(in, {});
  ASSERT_EQ(count_kind(out, EventKind::background, "Pink noise"), 1u);
  EXPECT_EQ(count_kind(out, EventKind::event, "Pink noise"), 0u);
  EXPECT_EQ(count_kind(out, EventKind::event, "Dog"), 1u);
  const auto bg = *std::find_if(out.begin(), out.end(), [](const Event& e) { return e.kind == EventKind::background; });
  EXPECT_DOUBLE_EQ(bg.onset, 0.0);
  EXPECT_NEAR(bg.offset, in[10].offset, 1e-9);
  EXPECT_FLOAT_EQ(bg.confidence, 0.5f);  // the highest of its pieces
}

TEST(Backgrounds, SparseOrShortEventsStayEvents) {
  // Barks every 6 s for a minute: covers a tenth of the time, not a background.
  std::vector<Event> barks;
  for (int i = 0; i < 10; ++i) barks.push_back(ev(6.0 * i, 6.0 * i + 0.6, "Bark"));
  EXPECT_EQ(count_kind(detect::mark_backgrounds(barks, {}), EventKind::background), 0u);
  // 15 s of continuous music is under background_min_s (20 s).
  EXPECT_EQ(count_kind(detect::mark_backgrounds({ev(0, 15, "Music")}, {}), EventKind::background), 0u);
  // ... 25 s is a background; with the stage off it is an event.
  EXPECT_EQ(count_kind(detect::mark_backgrounds({ev(0, 25, "Music")}, {}), EventKind::background), 1u);
  detect::BackgroundParams off;
  off.enabled = false;
  EXPECT_EQ(count_kind(detect::mark_backgrounds({ev(0, 25, "Music")}, off), EventKind::background), 0u);
}

TEST(Backgrounds, TwoStretchesWithALongPauseAreTwoSegments) {
  const auto out = detect::mark_backgrounds({ev(0, 30, "Rain"), ev(60, 100, "Rain")}, {});
  EXPECT_EQ(count_kind(out, EventKind::background, "Rain"), 2u);
}

// ---- bursts --------------------------------------------------------------------------------

TEST(Bursts, AManyLabelBurstKeepsTheBestSupported) {
  std::vector<Event> in;
  const char* labels[] = {"Accordion", "Aircraft engine", "Bass guitar", "Blues", "Boat", "Cello", "Cough"};
  for (int i = 0; i < 7; ++i) in.push_back(ev(5.0 + 0.05 * i, 5.8, labels[i], 0.31f + 0.05f * float(i)));
  in.push_back(ev(0, 60, "Rain", 0.9f));
  in.back().kind = EventKind::background;
  size_t removed = 0;
  const auto out = detect::suppress_bursts(in, {}, &removed);
  EXPECT_EQ(removed, 3u);
  EXPECT_EQ(count_kind(out, EventKind::event), 4u);
  EXPECT_EQ(count_kind(out, EventKind::background), 1u);  // never removed
  for (const auto& e : out) {  // the four with the highest scores
    if (e.kind == EventKind::event) {
      EXPECT_GE(e.score, 0.31f + 0.05f * 3 - 1e-6f) << e.label;
    }
  }
}

TEST(Bursts, SupportIsRelativeToTheClassThreshold) {
  // Cello scores 0.6 but its threshold is 0.7 (calibrated): a 0.4 over 0.3 is clearer.
  detect::BurstParams p;
  p.max_events = 1;
  p.on["Cello"] = 0.7;
  const auto out = detect::suppress_bursts({ev(1.0, 2.0, "Cello", 0.6f), ev(1.1, 2.0, "Dog", 0.4f)}, p);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].label, "Dog");
}

TEST(Bursts, TrueOverlapsAndSeparateOnsetsSurvive) {
  // Two sounds starting together (a dog and speech), then more sounds a second apart.
  std::vector<Event> in = {ev(1.0, 3.0, "Dog"), ev(1.1, 4.0, "Speech")};
  for (int i = 0; i < 6; ++i) in.push_back(ev(5.0 + i, 5.5 + i, "Knock"));
  const auto out = detect::suppress_bursts(in, {});
  EXPECT_EQ(out.size(), in.size());
}

// ---- the calibration table -----------------------------------------------------------------

TEST(Calibration, JsonRoundTrip) {
  detect::Calibration c;
  c.model = "mn04_as";
  c.checkpoint_sha256 = "abc";
  c.created = "2026-12-06T00:00:00Z";
  c.provenance = "room tone";
  c.hours = 1.5;
  c.target_per_hour = 2;
  c.classes["Violin, fiddle"] = {0.62, 0.58, 7, true, 0.85};
  c.classes["Static"] = {-1, 0.2, 0, false, -1};
  c.has_confidence = true;
  c.shared = {1.2, -0.7, 300};
  c.per_class["Dog"] = {1.2, 0.3, 12};
  c.ece_fit = 0.04;
  const auto d = detect::Calibration::parse(c.to_json(), "round trip");
  EXPECT_EQ(d.model, "mn04_as");
  EXPECT_EQ(d.checkpoint_sha256, "abc");
  EXPECT_EQ(d.provenance, "room tone");
  EXPECT_DOUBLE_EQ(d.hours, 1.5);
  ASSERT_EQ(d.classes.size(), 2u);
  EXPECT_DOUBLE_EQ(d.classes.at("Violin, fiddle").on, 0.62);
  EXPECT_EQ(d.classes.at("Violin, fiddle").false_alarms, 7);
  EXPECT_TRUE(d.classes.at("Violin, fiddle").capped);
  EXPECT_DOUBLE_EQ(d.classes.at("Violin, fiddle").recall, 0.85);
  EXPECT_EQ(d.raised(), 1u);
  ASSERT_TRUE(d.has_confidence);
  EXPECT_DOUBLE_EQ(d.shared.b, -0.7);
  EXPECT_DOUBLE_EQ(d.per_class.at("Dog").b, 0.3);
  EXPECT_NEAR(d.confidence("Dog", 0.5f), 1 / (1 + std::exp(-0.3)), 1e-6);
  EXPECT_NEAR(d.confidence("Cat", 0.5f), 1 / (1 + std::exp(0.7)), 1e-6);  // the shared curve
  EXPECT_EQ(d.to_json(), c.to_json());
}

TEST(Calibration, MalformedTablesSayWhatToDo) {
  auto msg = [](const std::string& text) {
    try {
      detect::Calibration::parse(text, "cal.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg("{").find("earmark calibrate"), std::string::npos);
  EXPECT_NE(msg("{\"format\": \"other\"}").find("not a calibration table"), std::string::npos);
  EXPECT_NE(msg(R"({"format": "earmark-calibration", "version": 99})").find("version"), std::string::npos);
  EXPECT_NE(msg(R"({"format": "earmark-calibration", "version": 1, "thresholds": {"Dog": 3}})").find("Dog"),
            std::string::npos);
  EXPECT_NE(msg(R"({"format": "earmark-calibration", "version": 1, "confidence": {"shared": {"a": "x"}}})").find("a and b"),
            std::string::npos);
}

TEST(Calibration, BuiltInTableIsReadable) {
  // Whatever the shipped table holds, it parses and names the model's checkpoint.
  const auto* b = detect::builtin_calibration("899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->model, "mn04_as");
  EXPECT_EQ(detect::builtin_calibration("not-a-checkpoint"), nullptr);
}

TEST(Calibration, ThresholdsRaiseOnlyUnsetClassesAndKeepTheHysteresisGap) {
  detect::Calibration c;
  c.classes["Violin, fiddle"].on = 0.6;
  c.classes["Dog"].on = 0.7;
  c.classes["Cat"].on = 0.2;  // below the configured threshold: never lowers it
  EventsConfig e;
  e.per_class["dog"].on = 0.4;  // the user's setting wins (names are case-insensitive)
  detect::apply_thresholds(c, {"Violin, fiddle", "Dog", "Cat"}, e);
  ASSERT_TRUE(e.per_class.count("Violin, fiddle"));
  EXPECT_DOUBLE_EQ(e.per_class["Violin, fiddle"].on, 0.6);
  EXPECT_NEAR(e.per_class["Violin, fiddle"].off, 0.6 - (e.threshold_on - e.threshold_off), 1e-12);
  EXPECT_DOUBLE_EQ(e.per_class["dog"].on, 0.4);
  EXPECT_FALSE(e.per_class.count("Dog"));
  EXPECT_FALSE(e.per_class.count("Cat"));
}

TEST(Calibration, PlattRecoversAKnownCurveAndLowersTheError) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0.05, 0.95);
  std::vector<float> s;
  std::vector<int> y;
  // Truth: p = sigmoid(2 logit(score) - 1): the scores are not probabilities.
  std::uniform_real_distribution<double> v(0, 1);
  for (int i = 0; i < 20000; ++i) {
    const double x = u(rng), z = 2 * std::log(x / (1 - x)) - 1;
    s.push_back(float(x));
    y.push_back(v(rng) < 1 / (1 + std::exp(-z)) ? 1 : 0);
  }
  const auto c = detect::fit_platt(s, y);
  EXPECT_NEAR(c.a, 2.0, 0.15);
  EXPECT_NEAR(c.b, -1.0, 0.1);
  std::vector<float> mapped;
  for (float x : s) mapped.push_back(float(c(x)));
  const double raw = detect::expected_calibration_error(s, y), fitted = detect::expected_calibration_error(mapped, y);
  EXPECT_GT(raw, 0.05);
  EXPECT_LT(fitted, 0.02);
}

TEST(Calibration, PlattConvergesWhereScoresSayLittle) {
  // Right about half the time whatever the score, with scores near 0 and 1 (large logits): plain
  // Newton steps swing back and forth here; the fit must find the flat curve near 0.5.
  std::vector<float> s;
  std::vector<int> y;
  for (int i = 0; i < 400; ++i) {
    s.push_back(i % 4 == 0 ? 0.9999f : (i % 4 == 1 ? 0.31f : (i % 4 == 2 ? 0.62f : 0.97f)));
    y.push_back((i / 4) % 2);
  }
  const auto c = detect::fit_platt(s, y);
  EXPECT_NEAR(c.a, 0.0, 0.05);
  for (float x : {0.31f, 0.62f, 0.97f}) EXPECT_NEAR(c(x), 0.5, 0.05) << x;
}

TEST(Calibration, ExpectedCalibrationError) {
  // Half right at confidence 0.5: calibrated. Always wrong at 0.9: error 0.9.
  EXPECT_NEAR(detect::expected_calibration_error({0.5f, 0.5f, 0.5f, 0.5f}, {1, 0, 1, 0}), 0.0, 1e-9);
  EXPECT_NEAR(detect::expected_calibration_error({0.9f, 0.9f}, {0, 0}), 0.9, 1e-6);
  EXPECT_DOUBLE_EQ(detect::expected_calibration_error({}, {}), 0.0);
  // Events without a confidence are not judged.
  EXPECT_NEAR(detect::expected_calibration_error({0.9f, NAN, 0.9f}, {0, 1, 0}), 0.9, 1e-6);
}

// A grid of `labels` over `seconds` at 0.16 s filled by `fill(frame, class)`.
template <class F>
FrameScores grid(const std::vector<std::string>& labels, double seconds, F fill) {
  FrameScores s;
  s.hop_s = 0.16;
  s.labels = labels;
  s.frames = int(seconds / s.hop_s);
  s.values.resize(size_t(s.frames) * labels.size());
  for (int f = 0; f < s.frames; ++f)
    for (size_t c = 0; c < labels.size(); ++c) s.values[size_t(f) * labels.size() + c] = fill(f, int(c));
  return s;
}

TEST(ThresholdCalibrator, RaisesClassesThatFireOnBackgroundsButNotSteadyOnes) {
  // On 10 minutes of background: "Chirp tone" pops up to 0.55 a few times; "Hum" is on all
  // the time (a background segment, not a false alarm); "Dog" never rises.
  const std::vector<std::string> labels = {"Chirp tone", "Hum", "Dog"};
  const auto g = grid(labels, 600, [](int f, int c) {
    if (c == 0) return (f % 500 > 100 && f % 500 < 110) ? 0.55f : 0.05f;
    if (c == 1) return 0.6f;
    return 0.02f;
  });
  eval::ThresholdCalibrator cal(EventsConfig{}, {});
  cal.add_background(g, 600);
  const auto t = cal.finish();
  EXPECT_NEAR(t.hours, 600 / 3600.0, 1e-9);
  ASSERT_TRUE(t.classes.count("Chirp tone"));
  EXPECT_GT(t.classes.at("Chirp tone").on, 0.55);
  EXPECT_LT(t.classes.at("Chirp tone").on, 0.6);
  EXPECT_GE(t.classes.at("Chirp tone").false_alarms, 7);
  EXPECT_FALSE(t.classes.count("Hum"));
  EXPECT_FALSE(t.classes.count("Dog"));
}

TEST(ThresholdCalibrator, TheRecallCheckHoldsAThresholdDown) {
  const std::vector<std::string> labels = {"Cowbell"};
  eval::ThresholdCalibrator cal(EventsConfig{}, {});
  // It fires twice on the background (one blip alone would not raise it: min_false_alarms).
  cal.add_background(grid(labels, 60, [](int f, int) { return (f > 100 && f < 110) || (f > 300 && f < 310) ? 0.7f : 0.0f; }), 60);
  // Its own clips peak at 0.45 .. 0.9: a threshold of 0.72 would lose most of them.
  for (float peak : {0.45f, 0.5f, 0.55f, 0.6f, 0.9f})
    cal.add_event_clip(grid(labels, 3, [&](int f, int) { return f > 5 && f < 12 ? peak : 0.0f; }), 3, {"Cowbell"});
  const auto t = cal.finish();
  ASSERT_TRUE(t.classes.count("Cowbell"));
  const auto& k = t.classes.at("Cowbell");
  EXPECT_TRUE(k.capped);
  EXPECT_NEAR(k.on, 0.5, 1e-6);  // keeps 4 of the 5 clips (min_recall 0.8)
  EXPECT_NEAR(k.recall, 0.8, 1e-9);
}

TEST(ConfidenceFit, JudgesByTheMapAndShrinksRareClasses) {
  eval::LabelMap map;
  map.add("dog", "Dog");
  map.add("dog", "Bark");
  const std::vector<Event> ref = {ev(1, 2, "dog")};
  std::vector<Event> est = {ev(1.1, 1.9, "Bark", 0.8f), ev(5, 6, "Dog", 0.7f), ev(1, 2, "Speech", 0.9f)};
  const auto j = eval::judge_events(est, ref, map);
  ASSERT_EQ(j.size(), 2u);  // Speech cannot be judged
  EXPECT_EQ(j[0].right, 1);
  EXPECT_EQ(j[1].right, 0);

  // Many judged detections of a common class, two of a rare one that were both right: the rare
  // class stays near the shared curve.
  std::vector<eval::JudgedEvent> judged;
  for (int i = 0; i < 400; ++i) judged.push_back({"Dog", 0.6f, i % 2});
  judged.push_back({"Cowbell", 0.6f, 1});
  judged.push_back({"Cowbell", 0.6f, 1});
  detect::Calibration c;
  eval::fit_confidence(judged, {}, c);
  ASSERT_TRUE(c.has_confidence);
  EXPECT_NEAR(c.confidence("Dog", 0.6f), 0.5, 0.02);
  EXPECT_LT(c.confidence("Cowbell", 0.6f), 0.65);
  EXPECT_GT(c.confidence("Cowbell", 0.6f), c.confidence("Dog", 0.6f));
  EXPECT_LT(c.ece_fit, 0.05);
}

// ---- through the detector --------------------------------------------------------------------

Config detector_config() {
  Config c;
  c.model.models_dir = testing::models_dir().string();
  c.model.threads = 2;
  return c;
}

#ifdef EARMARK_SANITIZE_BUILD
constexpr double kSteadySeconds = 60;  // the sanitizer build is ~20x slower; same code paths
#else
constexpr double kSteadySeconds = 600;
#endif

// 10 minutes of each noise colour and of hum, at -60 and -20 dBFS: one steady sound, so at most
// one background segment per label and no burst of events.
TEST(SteadySounds, NoiseAndHumGiveOneBackgroundSegmentPerSound) {
  EXPECT_NO_FATAL_FAILURE(EARMARK_REQUIRE_SHARED());
  if (::testing::Test::IsSkipped()) return;
  const Detector det(detector_config());
  const auto n = size_t(kSteadySeconds * kSampleRate);
  struct Case {
    std::string name;
    std::vector<float> x;
  };
  std::vector<Case> cases;
  for (double level : {-60.0, -20.0}) {
    const double g = std::pow(10.0, level / 20);
    for (const char* colour : {"white", "pink", "brown"}) {
      auto x = synth::make_noise(colour, n, kSampleRate, 11);
      for (auto& v : x) v = float(v * g);
      cases.push_back({std::string(colour) + " noise " + std::to_string(int(level)) + " dBFS", std::move(x)});
    }
    std::vector<float> hum(n);
    for (size_t i = 0; i < n; ++i)
      hum[i] = float(g * std::sqrt(2.0) * (0.8 * std::sin(2 * M_PI * 50 * double(i) / kSampleRate) +
                                           0.6 * std::sin(2 * M_PI * 100 * double(i) / kSampleRate)));
    cases.push_back({"hum " + std::to_string(int(level)) + " dBFS", std::move(hum)});
  }
  for (const auto& c : cases) {
    const FileResult r = det.detect_samples(c.x, c.name);
    ASSERT_TRUE(r.ok()) << r.error;
    std::map<std::string, int> segments;
    size_t events = 0;
    for (const auto& e : r.events) {
      if (e.kind == EventKind::background) ++segments[e.label];
      else ++events;
    }
    std::string listing;
    for (const auto& e : r.events)
      listing += fmt::format("  {} {:.2f}-{:.2f} {} {:.2f}\n", kind_name(e.kind), e.onset, e.offset, e.label, e.score);
    for (const auto& [label, k] : segments) EXPECT_EQ(k, 1) << c.name << ": " << label << "\n" << listing;
    // A steady sound is not a series of events: at most a couple per 10 minutes (false alarms
    // at the calibrated thresholds), never the dozens of fragments of before.
    EXPECT_LE(double(events), 2.0 * kSteadySeconds / 600.0 + 1) << c.name << "\n" << listing;
  }
}

// A loud sound in a quiet room: the network's columns are scaled back into the range of the
// clip-level features its classifier was trained on (frames.column_norm_max). Unscaled, the
// columns holding a loud moo drive well over a hundred unrelated classes (crying, yip,
// whistling, traffic) to 1.0; scaled, only the cow's own classes stand out, and the event's
// confidence is still the network's unscaled peak for its label.
TEST(Bursts, ALoudSoundDoesNotLightUpHundredsOfClasses) {
  EXPECT_NO_FATAL_FAILURE(EARMARK_REQUIRE_SHARED());
  if (::testing::Test::IsSkipped()) return;
  const auto cow = decode::decode_file((testing::shared_dir() / "sounds/events/cow/tuxpaint_cow_white.flac").string());
  ASSERT_GT(cow.size(), size_t(kSampleRate));
  const size_t at = 3 * kSampleRate;
  auto x = testing::pink_noise(at + cow.size() + 3 * kSampleRate, 0.0005);
  float peak = 0;
  for (float v : cow) peak = std::max(peak, std::abs(v));
  for (size_t i = 0; i < cow.size(); ++i) x[at + i] += cow[i] * 0.89f / peak;  // -1 dBFS
  auto most_classes_above_half = [](const FrameScores& s) {
    size_t most = 0;
    for (int f = 0; f < s.frames; ++f) {
      size_t n = 0;
      for (size_t c = 0; c < s.labels.size(); ++c) n += s.at(f, int(c)) > 0.5f;
      most = std::max(most, n);
    }
    return most;
  };
  Config unscaled_cfg = detector_config();
  unscaled_cfg.frames.column_norm_max = 0;
  const FileResult unscaled = Detector(unscaled_cfg).detect_samples(x, "loud cow, unscaled");
  ASSERT_TRUE(unscaled.ok()) << unscaled.error;
  EXPECT_GT(most_classes_above_half(unscaled.scores), 50u) << "the case no longer shows the failure";
  const FileResult r = Detector(detector_config()).detect_samples(x, "loud cow");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_LE(most_classes_above_half(r.scores), 6u);
  const double on = double(at) / kSampleRate, off = double(at + cow.size()) / kSampleRate;
  bool cattle = false;
  std::string listing;
  for (const auto& e : r.events) {
    listing += fmt::format("  {} {:.2f}-{:.2f} {} {:.2f}/{:.2f}\n", kind_name(e.kind), e.onset, e.offset, e.label,
                           e.score, e.confidence);
    if (e.kind != EventKind::event) continue;
    EXPECT_GE(e.confidence, e.score - 1e-6f) << e.label;
    if ((e.label == "Cattle, bovinae" || e.label == "Moo") && e.onset < off && e.offset > on) {
      cattle = true;
      EXPECT_GT(e.confidence, 0.9f) << "a loud, clear moo";
    }
  }
  EXPECT_TRUE(cattle) << listing;
  // One sound, one name: not a spray of labels around the moo.
  EXPECT_LE(r.events.size(), 4u) << listing;
}

TEST(SteadySounds, CalibrationOffAndABadTableAreClear) {
  EXPECT_NO_FATAL_FAILURE(EARMARK_REQUIRE_SHARED());
  if (::testing::Test::IsSkipped()) return;
  Config c = detector_config();
  c.events.calibration = "none";
  EXPECT_TRUE(Detector(c).calibration().empty());
  TempDir dir;
  const auto path = (dir.path() / "cal.json").string();
  {
    detect::Calibration t;
    t.checkpoint_sha256 = "0000";
    t.model = "other";
    std::ofstream(path) << t.to_json();
  }
  c.events.calibration = path;
  try {
    Detector d(c);
    FAIL() << "a table for another checkpoint was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("earmark calibrate"), std::string::npos) << e.what();
  }
}

// A user's own backgrounds: `earmark calibrate` on a folder of them writes a table that raises
// the classes that fired there, and a run with it uses those thresholds and says so.
TEST(CalibrateCli, UsersBackgroundsChangeTheThresholdsAndTheReportSaysSo) {
  EXPECT_NO_FATAL_FAILURE(EARMARK_REQUIRE_SHARED());
  if (::testing::Test::IsSkipped()) return;
  TempDir tmp;
  const fs::path room = tmp.path() / "room";
  fs::create_directories(room);
  // A crackling fire: short wooden clicks that fire knock-like classes again and again.
  fs::copy_file(testing::shared_dir() / "sounds" / "backgrounds" / "fireplace.flac", room / "fireplace.flac");
  const std::string cli = testing::cli_path().string();
  const fs::path table = tmp.path() / "room.calibration.json";
  int status = 0;
  std::string out = testing::run("EARMARK_MODELS=\"" + testing::models_dir().string() + "\" \"" + cli + "\" calibrate -q \"" +
                                     room.string() + "\" -o \"" + table.string() + "\"",
                                 &status);
  ASSERT_EQ(status, 0) << out;
  const auto cal = detect::Calibration::load(table.string());
  ASSERT_GT(cal.raised(), 0u) << out;
  EXPECT_NE(cal.provenance.find("room"), std::string::npos) << cal.provenance;
  EXPECT_NEAR(cal.hours, 36.4 / 3600, 0.5 / 3600);
  std::string raised;
  for (const auto& [label, k] : cal.classes)
    if (k.on > 0) raised = label;

  const fs::path run_dir = tmp.path() / "run";
  out = testing::run("EARMARK_MODELS=\"" + testing::models_dir().string() + "\" \"" + cli + "\" detect -q --calibration \"" +
                         table.string() + "\" \"" + (testing::shared_dir() / "audio" / "speech.wav").string() +
                         "\" -o \"" + run_dir.string() + "\"",
                     &status);
  ASSERT_EQ(status, 0) << out;
  std::ifstream rj(run_dir / "run.json");
  const std::string run_json((std::istreambuf_iterator<char>(rj)), std::istreambuf_iterator<char>());
  EXPECT_NE(run_json.find(table.string()), std::string::npos) << "run.json does not name the calibration";
  EXPECT_NE(run_json.find(raised), std::string::npos) << "the raised threshold of '" << raised << "' is not in the run's config";
  std::ifstream rh(run_dir / "report.html");
  const std::string html((std::istreambuf_iterator<char>(rh)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("False-alarm calibration"), std::string::npos);
  EXPECT_NE(html.find("room.calibration.json"), std::string::npos);
  EXPECT_NE(html.find("thresholds raised"), std::string::npos);
}

}  // namespace
}  // namespace earmark
