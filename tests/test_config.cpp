#include <gtest/gtest.h>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"

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
