#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <stdexcept>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"
#include "test_support.hpp"

using earmark::Config;

TEST(Config, DefaultsAreValid) { EXPECT_NO_THROW(Config{}.validate()); }

TEST(Config, YamlRoundTrip) {
  Config c;
  c.events.threshold_on = 0.4;
  c.events.per_class["Speech"].on = 0.6;
  c.events.groups["Dog"] = {"Bark", "Yip"};
  c.output.formats = {"csv"};
  c.condition.denoise.enabled = true;
  c.condition.denoise.gain_floor_db = -12;
  c.condition.normalize.mode = "peak";
  const Config d = Config::from_yaml_text(c.to_yaml());
  EXPECT_TRUE(d.condition.denoise.enabled);
  EXPECT_DOUBLE_EQ(d.condition.denoise.gain_floor_db, -12);
  EXPECT_EQ(d.condition.normalize.mode, "peak");
  EXPECT_DOUBLE_EQ(d.events.threshold_on, 0.4);
  EXPECT_DOUBLE_EQ(d.events.per_class.at("Speech").on, 0.6);
  EXPECT_LT(d.events.per_class.at("Speech").off, 0);
  EXPECT_EQ(d.events.groups.at("Dog").size(), 2u);
  EXPECT_EQ(d.output.formats, std::vector<std::string>{"csv"});
  EXPECT_EQ(d.to_yaml(), c.to_yaml());
}

TEST(Config, AcceptsJson) {
  const Config c = Config::from_yaml_text(R"({"events": {"threshold_on": 0.5, "allow": ["Speech"]}})");
  EXPECT_DOUBLE_EQ(c.events.threshold_on, 0.5);
  EXPECT_EQ(c.events.allow, std::vector<std::string>{"Speech"});
}

TEST(Config, UnknownKeyNamesTheKey) {
  try {
    Config::from_yaml_text("events:\n  treshold_on: 0.5\n", "my.yaml");
    FAIL() << "expected an error";
  } catch (const earmark::Error& e) {
    EXPECT_NE(std::string(e.what()).find("events.treshold_on"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("my.yaml"), std::string::npos) << e.what();
  }
}

TEST(Config, WrongTypeIsAnError) {
  EXPECT_THROW(Config::from_yaml_text("model:\n  threads: many\n"), earmark::Error);
}

TEST(Config, ValidateRejectsBadValues) {
  Config c;
  c.events.threshold_off = 0.9;  // above threshold_on
  EXPECT_THROW(c.validate(), earmark::Error);
  c = Config{};
  c.frames.method = "magic";
  EXPECT_THROW(c.validate(), earmark::Error);
  c = Config{};
  c.output.formats = {"xml"};
  EXPECT_THROW(c.validate(), earmark::Error);
  c = Config{};
  c.condition.normalize.mode = "loud";
  EXPECT_THROW(c.validate(), earmark::Error);
  c = Config{};
  c.frames.pool_columns = 2;
  EXPECT_THROW(c.validate(), earmark::Error);
}

TEST(Config, MissingFileSaysSo) {
  try {
    Config::from_file("/nonexistent/earmark.yaml");
    FAIL();
  } catch (const earmark::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/earmark.yaml"), std::string::npos);
  }
}

// ---- issue 14 item 7: one rule for every number (finite, in range, NaN/Inf named) ----------

// Every numeric key of the configuration, as YAML section/key pairs.
static const std::vector<std::pair<std::string, std::string>> kNumericKeys = {
    {"model", "threads"},
    {"model", "batch"},
    {"frames", "chunk_s"},
    {"frames", "context_s"},
    {"frames", "pool_columns"},
    {"frames", "passes"},
    {"frames", "window_s"},
    {"frames", "hop_s"},
    {"frames", "min_input_s"},
    {"events", "threshold_on"},
    {"events", "threshold_off"},
    {"events", "median_s"},
    {"events", "min_duration_s"},
    {"events", "merge_gap_s"},
    {"events", "max_classes_per_frame"},
    {"events", "refine_search_s"},
    {"events", "refine_threshold_db"},
    {"events", "refine_bridge_s"},
};

static const std::vector<std::pair<std::string, std::string>> kConditionKeys = {
    {"dc_remove", "cutoff_hz"},          {"highpass", "cutoff_hz"},          {"denoise", "noise_init_s"},
    {"denoise", "quiet_fraction"},       {"denoise", "update_window_s"},     {"denoise", "update_gate_db"},
    {"denoise", "update_time_s"},        {"denoise", "over_subtraction"},    {"denoise", "dd_alpha"},
    {"denoise", "gain_floor_db"},        {"denoise", "gain_release_s"},      {"normalize", "peak_target_dbfs"},
    {"normalize", "loudness_target_lufs"}, {"normalize", "max_gain_db"},     {"normalize", "max_noise_floor_dbfs"},
    {"normalize", "peak_ceiling_dbfs"},  {"normalize", "analysis_s"},
};

static std::string load_error(const std::string& yaml) {
  return earmark::testing::error_of([&] { Config::from_yaml_text(yaml, "t.yaml").validate(); });
}

TEST(Config, NanAndInfinityAreRefusedForEveryNumberAndNamed) {
  for (const char* bad : {".nan", ".inf", "-.inf"}) {
    for (const auto& [section, key] : kNumericKeys) {
      const bool is_int = key == "threads" || key == "batch" || key == "pool_columns" || key == "passes" ||
                          key == "max_classes_per_frame";
      if (is_int) continue;  // an integer key refuses .nan as the wrong type (checked below)
      const std::string msg = load_error(section + ":\n  " + key + ": " + bad + "\n");
      EXPECT_NE(msg.find(section + "." + key), std::string::npos) << bad << ": " << msg;
      EXPECT_TRUE(msg.find("NaN") != std::string::npos || msg.find("infinity") != std::string::npos)
          << bad << ": " << msg;
    }
    for (const auto& [sub, key] : kConditionKeys) {
      const std::string msg = load_error("condition:\n  " + sub + ":\n    " + key + ": " + bad + "\n");
      EXPECT_NE(msg.find("condition." + sub + "." + key), std::string::npos) << bad << ": " << msg;
      EXPECT_TRUE(msg.find("NaN") != std::string::npos || msg.find("infinity") != std::string::npos)
          << bad << ": " << msg;
    }
    const std::string msg = load_error(std::string("events:\n  per_class:\n    Speech: {on: ") + bad + "}\n");
    EXPECT_NE(msg.find("events.per_class.Speech.on"), std::string::npos) << msg;
  }
  EXPECT_NE(load_error("model:\n  threads: .nan\n").find("model.threads"), std::string::npos);
}

TEST(Config, WindowsWithNanHopIsRefused) {
  // The example of issue 14: detect used to loop forever on this.
  const std::string msg = load_error("frames:\n  method: windows\n  hop_s: .nan\n");
  EXPECT_NE(msg.find("frames.hop_s"), std::string::npos) << msg;
  EXPECT_NE(msg.find("NaN"), std::string::npos) << msg;
}

TEST(Config, EveryNumberHasAnUpperBound) {
  for (const auto& [section, key] : kNumericKeys) {
    const std::string msg = load_error(section + ":\n  " + key + ": 1000001\n");
    EXPECT_NE(msg.find(section + "." + key), std::string::npos) << key << ": " << msg;
  }
  for (const auto& [sub, key] : kConditionKeys) {
    const std::string msg = load_error("condition:\n  " + sub + ":\n    " + key + ": 1000001\n");
    EXPECT_NE(msg.find("condition." + sub + "." + key), std::string::npos) << key << ": " << msg;
  }
}

TEST(Config, CheckConfigNumberNamesTheFlag) {
  EXPECT_NO_THROW(earmark::check_config_number("events.threshold_on", 0.5, "--threshold"));
  for (double v : {std::nan(""), -1.0, 1.5, HUGE_VAL}) {
    const std::string msg = earmark::testing::error_of([&] { earmark::check_config_number("events.threshold_on", v, "--threshold"); });
    EXPECT_EQ(msg.rfind("--threshold", 0), 0u) << msg;
  }
  EXPECT_NE(earmark::testing::error_of([] { earmark::check_config_number("model.threads", -1, "--threads"); })
                .find("--threads"),
            std::string::npos);
  EXPECT_THROW(earmark::check_config_number("events.per_class", 1), std::invalid_argument);
  EXPECT_EQ(earmark::config_rule("events.threshold_on"), "must be a score between 0 and 1");
}

TEST(Config, PrintsEveryKeyAndReadsItBack) {
  Config c;
  c.model.heads = {"/h/a"};
  c.events.per_class["Dog"] = {0.2, -1, -1, 0.1};
  c.events.allow = {"Dog"};
  c.events.deny = {"Silence"};
  c.frames.method = "windows";
  c.frames.hop_s = 0.5;
  c.condition.highpass = {true, 120};
  c.output.per_file = false;
  const std::string y = c.to_yaml();
  for (const char* k : {"name:", "models_dir:", "threads:", "batch:", "heads: [/h/a]", "head_only:", "head_thresholds:",
                        "dc_remove: {enabled: false, cutoff_hz: 5}", "highpass: {enabled: true, cutoff_hz: 120}",
                        "fft_size:", "gain_release_s:", "mode: loudness", "analysis_s:", "method: windows",
                        "hop_s: 0.5", "min_input_s:", "threshold_on: 0.3", "max_classes_per_frame:",
                        "Dog: {on: 0.2, min_duration_s: 0.1}", "allow: [Dog]", "deny: [Silence]",
                        "formats: [csv, json, audacity, tsv]", "frame_scores: false", "per_file: false"})
    EXPECT_NE(y.find(k), std::string::npos) << k << "\n" << y;
  const Config d = Config::from_yaml_text(y);
  EXPECT_EQ(d.to_yaml(), y);
  EXPECT_DOUBLE_EQ(d.events.per_class.at("Dog").min_duration_s, 0.1);
  EXPECT_LT(d.events.per_class.at("Dog").off, 0);
  EXPECT_FALSE(d.output.per_file);
}

TEST(Config, UnknownKeysAreCheckedAtEveryLevel) {
  for (const char* y : {"modle: {}\n", "condition:\n  denoize: {}\n", "condition:\n  denoise:\n    hopp: 4\n",
                        "events:\n  per_class:\n    Dog: {onn: 0.2}\n", "output:\n  format: [csv]\n"}) {
    const std::string msg = load_error(y);
    EXPECT_NE(msg.find("unknown key"), std::string::npos) << y << ": " << msg;
  }
  EXPECT_NE(load_error("condition: 3\n").find("must be a mapping"), std::string::npos);
  // A single name stands for a list of one, as for model.heads before.
  EXPECT_EQ(Config::from_yaml_text("events:\n  allow: Speech\n").events.allow, std::vector<std::string>{"Speech"});
}

TEST(Config, ConfigFileIsReadBounded) {
  // issue 14 item 8: `--config /dev/zero` grew to 17 GB.
  const std::string dev = earmark::testing::error_of([] { Config::from_file("/dev/zero"); });
  EXPECT_NE(dev.find("/dev/zero"), std::string::npos) << dev;
  EXPECT_NE(dev.find("not a regular file"), std::string::npos) << dev;
  earmark::testing::TempDir tmp;
  const auto big = tmp / "big.yaml";
  {
    std::ofstream f(big);
    f << "# " << std::string(2 << 20, 'x') << "\n";
  }
  const std::string msg = earmark::testing::error_of([&] { Config::from_file(big.string()); });
  EXPECT_NE(msg.find("larger than 1 MiB"), std::string::npos) << msg;
  EXPECT_NE(earmark::testing::error_of([&] { Config::from_file(tmp.path().string()); }).find("folder"),
            std::string::npos);
}

// Found by fuzz/fuzz_config: a per_class label with invalid UTF-8 and NUL bytes loaded, but
// printed and read back as another label.
TEST(Config, LabelsAndNamesMustBeText) {
  for (const std::string& y : {std::string("events:\n  per_class: {\"Doc\\0g\": {on: 0.5}}\n"),
                              std::string("events:\n  deny: [\"Sil\xff\xff" "ence\"]\n"),
                              std::string("events:\n  groups: {Dog: [\"Ba\\x01rk\"]}\n"),
                              std::string("model:\n  name: \"mn04\\t_as\"\n")}) {
    const std::string msg = load_error(y);
    EXPECT_TRUE(msg.find("control character") != std::string::npos || msg.find("UTF-8") != std::string::npos)
        << y << ": " << msg;
  }
  EXPECT_EQ(load_error("events:\n  deny: [Whimper (dog), Caf\xc3\xa9]\n"), "<no error>");
}
