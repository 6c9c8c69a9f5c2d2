// detect: the AudioSet ontology (loading, the DAG) and the roll-up of one sound's labels into
// one event (hand-made event lists on a small hand-written ontology, tests/golden/), and the
// Detector's events.rollup settings with the real model and ontology from ../shared.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "detect/events.hpp"
#include "detect/ontology.hpp"
#include "detect/rollup.hpp"
#include "model/labels.hpp"
#include "test_support.hpp"

using earmark::Event;
using earmark::EventsConfig;
using earmark::LabelInfo;
using earmark::detect::Ontology;
using earmark::detect::Rollup;
using earmark::detect::RollupOptions;
namespace testing_ = earmark::testing;

namespace {

const std::string kSmall = (testing_::source_dir() / "tests" / "golden" / "ontology_small.json").string();

const Ontology& small() {
  static const Ontology o = Ontology::load(kSmall);
  return o;
}

// The model's label list for the small ontology: every class of it, with its mid.
std::vector<LabelInfo> small_labels() {
  std::vector<LabelInfo> l;
  for (const auto& n : small().nodes()) l.push_back(LabelInfo{int(l.size()), n.id, n.name});
  return l;
}

std::vector<std::string> names(const std::vector<LabelInfo>& l) {
  std::vector<std::string> v;
  for (const auto& x : l) v.push_back(x.name);
  return v;
}

struct Fixture {
  std::vector<LabelInfo> labels = small_labels();
  EventsConfig cfg;
  std::vector<std::string> grid;  // the score grid's columns after the label config
  explicit Fixture(EventsConfig c = {}) : cfg(std::move(c)) {
    earmark::FrameScores probe;
    probe.labels = names(labels);
    grid = earmark::detect::apply_label_config(probe, cfg).labels;
  }
  Rollup rollup(RollupOptions o = {}) const { return Rollup(small(), grid, labels, cfg, o); }
  Event ev(const std::string& label, double on, double off, float conf) const {
    Event e;
    e.label = label;
    e.onset = on;
    e.offset = off;
    e.confidence = conf;
    const auto it = std::find(grid.begin(), grid.end(), label);
    e.class_index = it == grid.end() ? -1 : int(it - grid.begin());
    return e;
  }
};

std::vector<std::string> also_labels(const Event& e) {
  std::vector<std::string> v;
  for (const auto& a : e.also) v.push_back(a.label);
  return v;
}

std::string describe(const std::vector<Event>& ev) {
  std::string s;
  for (const auto& e : ev) {
    s += e.label + " [" + std::to_string(e.onset) + ", " + std::to_string(e.offset) + "]";
    if (!e.also.empty()) {
      s += " also:";
      for (const auto& a : e.also) s += " " + a.label;
    }
    s += "; ";
  }
  return s;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

TEST(Ontology, LoadsTheSmallHandWrittenFile) {
  const Ontology& o = small();
  ASSERT_EQ(o.size(), 18u);
  const int animal = o.find_name("Animal"), domestic = o.find_name("Domestic animals, pets"), dog = o.find_name("Dog"),
            bark = o.find_name("Bark"), howl = o.find_name("Howl"), canidae = o.find_name("Canidae, dogs, wolves"),
            wild = o.find_name("Wild animals"), bleat = o.find_name("Bleat"), goat = o.find_name("Goat"),
            sheep = o.find_name("Sheep"), speech = o.find_name("Speech");
  for (int i : {animal, domestic, dog, bark, howl, canidae, wild, bleat, goat, sheep, speech}) ASSERT_GE(i, 0);
  EXPECT_EQ(o.find_id("/m/0bt9lr"), dog);
  EXPECT_EQ(o.find_id("/m/nope"), -1);
  EXPECT_EQ(o.node(animal).depth, 0);
  EXPECT_EQ(o.node(dog).depth, 2);
  EXPECT_EQ(o.node(bark).depth, 3);
  // Chain Animal > Domestic animals > Dog > Bark.
  EXPECT_EQ(o.ancestors(bark), (std::vector<int>{animal, domestic, dog}));
  EXPECT_TRUE(o.is_ancestor(animal, bark));
  EXPECT_FALSE(o.is_ancestor(bark, animal));
  // DAG: Howl has two parents, and both lines of ancestors.
  EXPECT_EQ(o.node(howl).parents.size(), 2u);
  for (int a : {dog, canidae, domestic, wild, animal}) EXPECT_TRUE(o.is_ancestor(a, howl)) << o.node(a).name;
  EXPECT_EQ(o.ancestors(howl).size(), 5u);  // Animal once, though reached twice
  EXPECT_EQ(o.node(bleat).parents.size(), 2u);
  EXPECT_TRUE(o.is_ancestor(goat, bleat) && o.is_ancestor(sheep, bleat));
  EXPECT_TRUE(o.node(o.find_name("Human voice")).abstract);
  EXPECT_FALSE(o.node(speech).abstract);
  EXPECT_EQ(o.node(speech).depth, 2);
}

TEST(Ontology, BadFilesAreErrorsNamingTheFile) {
  testing_::TempDir tmp;
  const auto expect_error = [&](const std::string& text, const std::string& part) {
    const std::string path = (tmp.path() / "o.json").string();
    write(path, text);
    try {
      Ontology::load(path);
      ADD_FAILURE() << "no error for " << text;
    } catch (const earmark::Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(path), std::string::npos) << m;
      EXPECT_NE(m.find(part), std::string::npos) << m;
    }
  };
  expect_error("{not json", "not valid JSON");
  expect_error("{\"id\": \"/m/1\"}", "not a list");
  expect_error("[{\"name\": \"A\"}]", "'id'");
  expect_error("[{\"id\": \"/m/1\", \"name\": \"A\", \"child_ids\": [\"/m/2\"]}]", "/m/2");
  expect_error("[{\"id\": \"/m/1\", \"name\": \"A\"}, {\"id\": \"/m/1\", \"name\": \"B\"}]", "twice");
  expect_error("[{\"id\": \"/m/1\", \"name\": \"A\", \"child_ids\": [\"/m/2\"]},"
               " {\"id\": \"/m/2\", \"name\": \"B\", \"child_ids\": [\"/m/1\"]}]",
               "cycle");
  EXPECT_THROW(Ontology::load((tmp.path() / "absent.json").string()), earmark::Error);
}

TEST(Ontology, TheRealFileWhenPresent) {
  const auto path = testing_::shared_dir() / "models" / "audioset" / "ontology.json";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not found";
  const Ontology o = Ontology::load(path.string());
  EXPECT_EQ(o.size(), 632u);
  size_t multi = 0;
  for (const auto& n : o.nodes()) multi += n.parents.size() > 1 ? 1 : 0;
  EXPECT_EQ(multi, 38u);
  const int dog = o.find_name("Dog");
  ASSERT_GE(dog, 0);
  ASSERT_EQ(o.node(dog).parents.size(), 1u);
  EXPECT_EQ(o.node(o.node(dog).parents[0]).name, "Domestic animals, pets");
  // Every label of the model is a class of the ontology, found by its mid.
  const auto labels = earmark::model::read_labels((testing_::models_dir() / "class_labels_indices.csv").string());
  ASSERT_EQ(labels.size(), 527u);
  for (const auto& l : labels) {
    const int i = o.find_id(l.mid);
    ASSERT_GE(i, 0) << l.mid << " " << l.name;
    EXPECT_EQ(o.node(i).name, l.name);
  }
}

TEST(Rollup, ChainBecomesOneEventUnderTheDeepestConfidentLabel) {
  const Fixture f;
  const auto out = f.rollup().apply({f.ev("Animal", 0.0, 3.0, 0.9f), f.ev("Domestic animals, pets", 0.32, 3.0, 0.7f),
                                     f.ev("Dog", 0.32, 2.88, 0.8f), f.ev("Bark", 0.64, 2.56, 0.6f)});
  ASSERT_EQ(out.size(), 1u) << describe(out);
  EXPECT_EQ(out[0].label, "Bark");
  EXPECT_FLOAT_EQ(out[0].confidence, 0.6f);
  // Most confident first, each with its own confidence.
  EXPECT_EQ(also_labels(out[0]), (std::vector<std::string>{"Animal", "Dog", "Domestic animals, pets"}));
  EXPECT_FLOAT_EQ(out[0].also[1].confidence, 0.8f);
  // The span reaches as far as the labels of this one sound.
  EXPECT_DOUBLE_EQ(out[0].onset, 0.0);
  EXPECT_DOUBLE_EQ(out[0].offset, 3.0);
  // Without the span extension the chosen label keeps its own span.
  RollupOptions own;
  own.extend_span = false;
  const auto kept = f.rollup(own).apply({f.ev("Animal", 0.0, 3.0, 0.9f), f.ev("Bark", 0.64, 2.56, 0.6f)});
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_DOUBLE_EQ(kept[0].onset, 0.64);
  EXPECT_DOUBLE_EQ(kept[0].offset, 2.56);
}

TEST(Rollup, AWeakChildDoesNotReplaceAConfidentParent) {
  const Fixture f;
  const auto out = f.rollup().apply({f.ev("Dog", 1.0, 4.0, 0.8f), f.ev("Whimper (dog)", 2.0, 3.0, 0.31f)});
  ASSERT_EQ(out.size(), 1u) << describe(out);
  EXPECT_EQ(out[0].label, "Dog");
  EXPECT_EQ(also_labels(out[0]), (std::vector<std::string>{"Whimper (dog)"}));
  EXPECT_FLOAT_EQ(out[0].also[0].confidence, 0.31f);
  // At half the parent's confidence or more the child names the sound.
  const auto strong = f.rollup().apply({f.ev("Dog", 1.0, 4.0, 0.8f), f.ev("Whimper (dog)", 2.0, 3.0, 0.45f)});
  ASSERT_EQ(strong.size(), 1u) << describe(strong);
  EXPECT_EQ(strong[0].label, "Whimper (dog)");
  // The ratio is the setting: with 0.6 the same child is too weak.
  RollupOptions strict;
  strict.child_ratio = 0.6;
  EXPECT_EQ(f.rollup(strict).apply({f.ev("Dog", 1.0, 4.0, 0.8f), f.ev("Whimper (dog)", 2.0, 3.0, 0.45f)})[0].label, "Dog");
}

TEST(Rollup, TwoDifferentOverlappingSoundsStayTwo) {
  const Fixture f;
  const auto out = f.rollup().apply(
      {f.ev("Speech", 0.0, 6.0, 0.9f), f.ev("Dog", 1.0, 3.0, 0.8f), f.ev("Animal", 1.0, 3.0, 0.7f), f.ev("Music", 0.0, 6.0, 0.5f)});
  ASSERT_EQ(out.size(), 3u) << describe(out);
  EXPECT_EQ(out[0].label, "Music");
  EXPECT_TRUE(out[0].also.empty());
  EXPECT_EQ(out[1].label, "Speech");
  EXPECT_TRUE(out[1].also.empty());
  EXPECT_DOUBLE_EQ(out[1].offset, 6.0);
  EXPECT_EQ(out[2].label, "Dog");
  EXPECT_EQ(also_labels(out[2]), (std::vector<std::string>{"Animal"}));
  // Related labels that do not overlap in time are different sounds too.
  const auto apart = f.rollup().apply({f.ev("Dog", 0.0, 1.0, 0.8f), f.ev("Bark", 5.0, 6.0, 0.7f)});
  ASSERT_EQ(apart.size(), 2u) << describe(apart);
  EXPECT_TRUE(apart[0].also.empty() && apart[1].also.empty());
}

TEST(Rollup, AGenericLabelOverTwoSoundsNamesNeitherAndExtendsNeither) {
  const Fixture f;
  const auto out = f.rollup().apply({f.ev("Animal", 0.0, 10.0, 0.9f), f.ev("Dog", 1.0, 2.0, 0.8f), f.ev("Cat", 6.0, 7.0, 0.7f)});
  ASSERT_EQ(out.size(), 2u) << describe(out);
  EXPECT_EQ(out[0].label, "Dog");
  EXPECT_EQ(out[1].label, "Cat");
  for (const auto& e : out) {
    EXPECT_EQ(also_labels(e), (std::vector<std::string>{"Animal"}));
    EXPECT_DOUBLE_EQ(e.offset - e.onset, 1.0) << e.label;
  }
}

TEST(Rollup, ALabelWithTwoParentsAndCoParents) {
  const Fixture f;
  // Bleat is under Goat and under Sheep: both are its ancestors.
  const auto out = f.rollup().apply({f.ev("Goat", 0.0, 2.0, 0.6f), f.ev("Sheep", 0.0, 2.0, 0.5f), f.ev("Bleat", 0.32, 1.6, 0.7f)});
  ASSERT_EQ(out.size(), 1u) << describe(out);
  EXPECT_EQ(out[0].label, "Bleat");
  EXPECT_EQ(also_labels(out[0]), (std::vector<std::string>{"Goat", "Sheep"}));
  // Goat and Sheep alone are co-parents (of Bleat): one sound when they overlap strongly, named by
  // the more confident.
  const auto pair = f.rollup().apply({f.ev("Goat", 0.0, 2.0, 0.6f), f.ev("Sheep", 0.32, 2.0, 0.5f)});
  ASSERT_EQ(pair.size(), 1u) << describe(pair);
  EXPECT_EQ(pair[0].label, "Goat");
  EXPECT_EQ(also_labels(pair[0]), (std::vector<std::string>{"Sheep"}));
  // Dog (Domestic animals) and "Canidae, dogs, wolves" (Wild animals) share Howl.
  const auto dog = f.rollup().apply({f.ev("Dog", 0.0, 2.0, 0.8f), f.ev("Canidae, dogs, wolves", 0.32, 1.92, 0.4f),
                                     f.ev("Animal", 0.0, 2.0, 0.85f), f.ev("Domestic animals, pets", 0.0, 2.0, 0.6f)});
  ASSERT_EQ(dog.size(), 1u) << describe(dog);
  EXPECT_EQ(dog[0].label, "Dog");
  EXPECT_EQ(also_labels(dog[0]), (std::vector<std::string>{"Animal", "Domestic animals, pets", "Canidae, dogs, wolves"}));
  // Co-parents overlapping by less than half of the shorter event are two sounds.
  const auto brief = f.rollup().apply({f.ev("Goat", 0.0, 2.0, 0.6f), f.ev("Sheep", 1.5, 4.0, 0.5f)});
  EXPECT_EQ(brief.size(), 2u) << describe(brief);
}

TEST(Rollup, SiblingsAreOneSoundOnlyWhileTheirParentFiresOverBoth) {
  const Fixture f;
  // Dog and Cat (siblings under Domestic animals) alone: a dog and a cat, two sounds.
  EXPECT_EQ(f.rollup().apply({f.ev("Dog", 0.0, 2.0, 0.8f), f.ev("Cat", 0.0, 2.0, 0.5f)}).size(), 2u);
  // With their parent firing over both, the network is naming one sound three ways.
  const std::vector<Event> three = {f.ev("Dog", 0.0, 2.0, 0.8f), f.ev("Cat", 0.32, 2.0, 0.5f),
                                    f.ev("Domestic animals, pets", 0.0, 2.0, 0.7f)};
  const auto out = f.rollup().apply(three);
  ASSERT_EQ(out.size(), 1u) << describe(out);
  EXPECT_EQ(out[0].label, "Dog");
  EXPECT_EQ(also_labels(out[0]), (std::vector<std::string>{"Domestic animals, pets", "Cat"}));
  // ... unless the parent covers only one of them,
  EXPECT_EQ(f.rollup().apply({f.ev("Dog", 0.0, 2.0, 0.8f), f.ev("Cat", 0.32, 2.0, 0.5f),
                              f.ev("Domestic animals, pets", 0.0, 0.3, 0.7f)})
                .size(),
            2u);
  // ... or siblings are switched off.
  RollupOptions no;
  no.siblings = false;
  EXPECT_EQ(f.rollup(no).apply(three).size(), 2u);
  // A root does not make siblings: Domestic and Wild animals under Animal stay two.
  EXPECT_EQ(f.rollup().apply({f.ev("Domestic animals, pets", 0.0, 2.0, 0.8f), f.ev("Wild animals", 0.0, 2.0, 0.6f),
                              f.ev("Animal", 0.0, 2.0, 0.9f)})
                .size(),
            2u);
}

TEST(Rollup, GroupsAreKeptAndAbsorbTheirMembersRelatives) {
  EventsConfig cfg;
  cfg.groups["Pets"] = {"Dog", "Cat"};
  const Fixture f(cfg);
  ASSERT_NE(std::find(f.grid.begin(), f.grid.end(), "Pets"), f.grid.end());
  const Rollup r = f.rollup();
  // Above every member: Domestic animals and Animal; below a member: Bark.
  EXPECT_EQ(r.relation(r.column("Pets"), r.column("Animal")), Rollup::Relation::ancestor);
  EXPECT_EQ(r.relation(r.column("Pets"), r.column("Domestic animals, pets")), Rollup::Relation::ancestor);
  EXPECT_EQ(r.relation(r.column("Pets"), r.column("Bark")), Rollup::Relation::descendant);
  EXPECT_EQ(r.relation(r.column("Pets"), r.column("Speech")), Rollup::Relation::none);
  const auto out = r.apply({f.ev("Pets", 0.0, 2.0, 0.5f), f.ev("Animal", 0.0, 2.0, 0.9f), f.ev("Bark", 0.5, 1.5, 0.45f)});
  ASSERT_EQ(out.size(), 1u) << describe(out);
  EXPECT_EQ(out[0].label, "Pets");  // the user's name, though Bark is deeper and Animal more confident
  EXPECT_EQ(also_labels(out[0]), (std::vector<std::string>{"Animal", "Bark"}));
  // Two groups are two names the user asked for: neither absorbs the other.
  EventsConfig two;
  two.groups["Pets"] = {"Dog", "Cat"};
  two.groups["Barking"] = {"Bark"};
  const Fixture g(two);
  EXPECT_EQ(g.rollup().apply({g.ev("Pets", 0.0, 2.0, 0.8f), g.ev("Barking", 0.0, 2.0, 0.7f)}).size(), 2u);
}

TEST(Rollup, LabelsWithoutAnOntologyClassPassThrough) {
  Fixture f;
  f.labels.push_back(LabelInfo{int(f.labels.size()), "head:/heads/mine/head.json", "Drawer"});
  earmark::FrameScores probe;
  probe.labels = names(f.labels);
  f.grid = earmark::detect::apply_label_config(probe, f.cfg).labels;
  const auto out = f.rollup().apply({f.ev("Drawer", 0.0, 2.0, 0.4f), f.ev("Dog", 0.0, 2.0, 0.8f), f.ev("Animal", 0.0, 2.0, 0.9f)});
  ASSERT_EQ(out.size(), 2u) << describe(out);
  EXPECT_EQ(out[0].label, "Dog");
  EXPECT_EQ(out[1].label, "Drawer");
  EXPECT_TRUE(out[1].also.empty());
  // An event list naming no grid column at all is returned as is (sorted).
  const Event stray = f.ev("Not a label", 1.0, 2.0, 0.5f);
  const auto same = f.rollup().apply({stray});
  ASSERT_EQ(same.size(), 1u);
  EXPECT_EQ(same[0].label, "Not a label");
  EXPECT_TRUE(f.rollup().apply({}).empty());
}

TEST(RollupConfig, KeysParseAndBadValuesNameTheKey) {
  const auto c = earmark::Config::from_yaml_text(
      "events: {rollup: false, rollup_ratio: 0.7, ontology: /x/ontology.json, require_ontology: true}");
  EXPECT_FALSE(c.events.rollup);
  EXPECT_DOUBLE_EQ(c.events.rollup_ratio, 0.7);
  EXPECT_EQ(c.events.ontology, "/x/ontology.json");
  EXPECT_TRUE(c.events.require_ontology);
  EXPECT_TRUE(earmark::Config{}.events.rollup);
  try {
    earmark::Config::from_yaml_text("events: {rollup_ratio: 1.5}").validate();
    FAIL() << "expected an error";
  } catch (const earmark::Error& e) {
    EXPECT_NE(std::string(e.what()).find("events.rollup_ratio"), std::string::npos) << e.what();
  }
  const auto back = earmark::Config::from_yaml_text(c.to_yaml());
  EXPECT_FALSE(back.events.rollup);
  EXPECT_EQ(back.events.ontology, "/x/ontology.json");
}

// The Detector with the real model: roll-up on by default (ontology found in the sibling
// audioset/ of the models folder), --all-labels (events.rollup: false) gives today's events,
// a models folder without the ontology gives all labels, or an error with require_ontology.
TEST(RollupDetector, DefaultAllLabelsAndMissingOntology) {
  EARMARK_REQUIRE_SHARED();
  const auto models = testing_::models_dir();
  if (!std::filesystem::exists(models.parent_path() / "audioset" / "ontology.json"))
    GTEST_SKIP() << "no audioset/ontology.json beside " << models;
  const std::string clip = (testing_::shared_dir() / "audio" / "speech.wav").string();
  earmark::Config cfg;
  cfg.model.models_dir = models.string();
  cfg.model.threads = 1;
  cfg.events.threshold_on = 0.1;  // many labels on, so that related ones overlap
  cfg.events.threshold_off = 0.05;
  const auto rolled = earmark::Detector(cfg).detect_file(clip);
  ASSERT_TRUE(rolled.ok()) << rolled.error;
  cfg.events.rollup = false;
  const auto all = earmark::Detector(cfg).detect_file(clip);
  ASSERT_TRUE(all.ok()) << all.error;

  std::set<std::string> all_labels, rolled_labels;
  for (const auto& e : all.events) {
    all_labels.insert(e.label);
    EXPECT_TRUE(e.also.empty());
  }
  size_t also = 0;
  for (const auto& e : rolled.events) {
    rolled_labels.insert(e.label);
    also += e.also.size();
    for (const auto& a : e.also) EXPECT_TRUE(all_labels.count(a.label)) << a.label;
  }
  EXPECT_LT(rolled.events.size(), all.events.size());
  EXPECT_GT(also, 0u);
  EXPECT_TRUE(rolled_labels.count("Speech")) << "speech.wav is speech";
  // No label is lost: each is an event's label or in an event's "also".
  std::set<std::string> kept = rolled_labels;
  for (const auto& e : rolled.events)
    for (const auto& a : e.also) kept.insert(a.label);
  EXPECT_EQ(kept, all_labels);

  // A models folder without the ontology: every label (a warning), or an error when required.
  testing_::TempDir bare;
  for (const char* f : {"mn04_as_mAP_432.pt", "class_labels_indices.csv"})
    std::filesystem::create_symlink(models / f, bare.path() / f);
  cfg.model.models_dir = bare.path().string();
  cfg.events.rollup = true;
  const auto without = earmark::Detector(cfg).detect_file(clip);
  ASSERT_TRUE(without.ok()) << without.error;
  EXPECT_EQ(without.events.size(), all.events.size());
  cfg.events.require_ontology = true;
  try {
    earmark::Detector d(cfg);
    FAIL() << "expected an error";
  } catch (const earmark::Error& e) {
    EXPECT_NE(std::string(e.what()).find("events.require_ontology"), std::string::npos) << e.what();
  }
  // events.ontology names the file explicitly.
  cfg.events.ontology = (models.parent_path() / "audioset" / "ontology.json").string();
  EXPECT_EQ(earmark::Detector(cfg).detect_file(clip).events.size(), rolled.events.size());
  cfg.events.ontology = (bare.path() / "absent.json").string();
  EXPECT_THROW(earmark::Detector{cfg}, earmark::Error);
}

// `earmark detect --all-labels` gives every label's own events (today's output before the
// roll-up); without it, typing.wav's one sound is one row, Computer keyboard, with Typing in "also".
TEST(RollupCli, AllLabelsFlag) {
  EARMARK_REQUIRE_SHARED();
  if (!std::filesystem::exists(testing_::models_dir().parent_path() / "audioset" / "ontology.json"))
    GTEST_SKIP() << "no audioset/ontology.json beside " << testing_::models_dir();
  testing_::TempDir tmp;
  const std::string clip = (testing_::shared_dir() / "audio" / "typing.wav").string();
  auto detect = [&](const std::string& name, const std::string& flags) {
    int status = 0;
    const auto out = tmp / name;
    const std::string text = testing_::run("EARMARK_MODELS='" + testing_::models_dir().string() + "' '" +
                                               testing_::cli_path().string() + "' detect -q --no-report " + flags +
                                               " --format csv,json -o '" + out.string() + "' '" + clip + "'",
                                           &status);
    EXPECT_EQ(status, 0) << text;
    return nlohmann::json::parse(std::ifstream(out / "events.json"))["files"][0]["events"];
  };
  const auto rolled = detect("rolled", "");
  const auto all = detect("all", "--all-labels");
  std::set<std::string> rolled_labels, all_labels, also;
  for (const auto& e : rolled) {
    rolled_labels.insert(e["label"].get<std::string>());
    for (const auto& a : e["also"]) also.insert(a["label"].get<std::string>());
  }
  for (const auto& e : all) {
    all_labels.insert(e["label"].get<std::string>());
    EXPECT_TRUE(e["also"].empty()) << e.dump();
  }
  EXPECT_TRUE(all_labels.count("Typing") && all_labels.count("Computer keyboard")) << all.dump();
  EXPECT_TRUE(rolled_labels.count("Computer keyboard")) << rolled.dump();
  EXPECT_FALSE(rolled_labels.count("Typing")) << rolled.dump();
  EXPECT_TRUE(also.count("Typing")) << rolled.dump();
  EXPECT_LT(rolled.size(), all.size());
}
