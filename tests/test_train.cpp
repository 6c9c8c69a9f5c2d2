// Custom-class heads: training determinism, save/load, bad inputs, backbone mismatch, and an
// end-to-end run (train on real clips from shared/sounds, detect a held-out clip).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "earmark/earmark.hpp"
#include "model/head.hpp"
#include "model/train.hpp"
#include "test_support.hpp"
#include "util/wav.hpp"

namespace earmark {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

fs::path events_dir() { return testing::shared_dir() / "sounds" / "events"; }

// Clips 0..n-1 (sorted) of a class in shared/sounds/events.
std::vector<fs::path> clips_of(const std::string& cls, size_t first, size_t n) {
  std::vector<fs::path> all;
  for (const auto& e : fs::directory_iterator(events_dir() / cls)) all.push_back(e.path());
  std::sort(all.begin(), all.end());
  return {all.begin() + long(first), all.begin() + long(std::min(all.size(), first + n))};
}

Config test_config() {
  Config c;
  c.model.models_dir = testing::models_dir().string();
  c.model.threads = 2;
  return c;
}

// A clip list CSV with `n` clips for each class.
fs::path write_list(const TempDir& dir, const std::vector<std::string>& classes, size_t n, const std::string& extra = "") {
  const fs::path p = dir / "clips.csv";
  std::ofstream f(p);
  f << "file,label\n";
  for (const auto& c : classes)
    for (const auto& clip : clips_of(c, 0, n)) f << clip.string() << "," << c << "\n";
  f << extra;
  return p;
}

model::TrainOptions small_options(const fs::path& list) {
  model::TrainOptions o;
  o.config = test_config();
  o.clips = list.string();
  o.mixes = 1;
  o.fit.max_epochs = 60;
  return o;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const model::Log kQuiet = [](const std::string&) {};

TEST(ClipList, ParsesFoldersAndBothCsvKinds) {
  TempDir dir;
  fs::create_directories(dir / "a");
  fs::create_directories(dir / "b" / "sub");
  util::write_wav((dir / "a" / "x.wav").string(), testing::sine(440, 0.5, 32000), 32000);
  util::write_wav((dir / "b" / "sub" / "y.wav").string(), testing::sine(880, 0.5, 32000), 32000);
  util::write_wav((dir / "top.wav").string(), testing::sine(880, 0.5, 32000), 32000);
  std::vector<std::string> warnings;
  const auto folder = model::read_clip_list(dir.path().string(), warnings);
  ASSERT_EQ(folder.size(), 2u);
  EXPECT_EQ(folder[0].label, "a");
  EXPECT_EQ(folder[1].label, "b");
  ASSERT_EQ(warnings.size(), 1u);  // top.wav is not in a class folder
  EXPECT_NE(warnings[0].find("top.wav"), std::string::npos);

  std::ofstream(dir / "weak.csv") << "a/x.wav,alpha\nb/sub/y.wav,beta\n";
  const auto weak = model::read_clip_list((dir / "weak.csv").string(), warnings);
  ASSERT_EQ(weak.size(), 2u);
  EXPECT_EQ(weak[1].label, "beta");
  EXPECT_LT(weak[1].onset, 0);
  EXPECT_EQ(fs::path(weak[0].file), (dir / "a" / "x.wav").lexically_normal());

  std::ofstream(dir / "strong.tsv") << "filename\tonset\toffset\tevent_label\na/x.wav\t0.1\t0.3\talpha\n";
  const auto strong = model::read_clip_list((dir / "strong.tsv").string(), warnings);
  ASSERT_EQ(strong.size(), 1u);
  EXPECT_DOUBLE_EQ(strong[0].onset, 0.1);
  EXPECT_DOUBLE_EQ(strong[0].offset, 0.3);

  std::ofstream(dir / "bad.csv") << "a/x.wav,0.5,0.2,alpha\n";
  EXPECT_NE(error_of([&] { model::read_clip_list((dir / "bad.csv").string(), warnings); }).find("bad.csv:1"), std::string::npos);
  fs::create_directories(dir / "empty" / "c");
  EXPECT_NE(error_of([&] { model::read_clip_list((dir / "empty").string(), warnings); }).find("has no audio files"),
            std::string::npos);
}

class TrainTest : public ::testing::Test {
 protected:
  void SetUp() override { EARMARK_REQUIRE_SHARED(); }
};

TEST_F(TrainTest, SameSeedSameWeightsAndSaveLoadRoundTrip) {
  TempDir dir;
  const auto opt = small_options(write_list(dir, {"drawer", "pageturn", "doorslam"}, 4));
  const auto a = model::train_head(opt, kQuiet);
  const auto b = model::train_head(opt, kQuiet);
  EXPECT_EQ(a.head.w2, b.head.w2);
  EXPECT_EQ(a.head.b2, b.head.b2);
  EXPECT_EQ(a.head.mean, b.head.mean);
  auto other = opt;
  other.fit.seed = 7;
  EXPECT_NE(model::train_head(other, kQuiet).head.w2, a.head.w2);

  a.head.save((dir / "head").string());
  const auto loaded = model::Head::load((dir / "head").string());
  EXPECT_EQ(loaded.classes, a.head.classes);
  EXPECT_EQ(loaded.backbone_sha256, a.head.backbone_sha256);
  const model::Embedder emb(opt.config);
  std::vector<float> e;
  const int frames = emb.embed(model::read_audio(clips_of("drawer", 10, 1)[0].string()), e);
  ASSERT_GT(frames, 0);
  std::vector<float> s1(size_t(frames) * 3), s2(size_t(frames) * 3);
  a.head.logits(e.data(), size_t(frames), s1.data());
  loaded.logits(e.data(), size_t(frames), s2.data());
  EXPECT_EQ(s1, s2);

  // An MLP head round-trips too.
  auto mlp = opt;
  mlp.fit.hidden = 16;
  const auto m = model::train_head(mlp, kQuiet);
  m.head.save((dir / "mlp").string());
  const auto ml = model::Head::load((dir / "mlp" / "head.json").string());
  EXPECT_EQ(ml.hidden, 16);
  a.head.logits(e.data(), size_t(frames), s1.data());
  m.head.logits(e.data(), size_t(frames), s1.data());
  ml.logits(e.data(), size_t(frames), s2.data());
  EXPECT_EQ(s1, s2);
}

TEST_F(TrainTest, BadInputsAreClearErrorsOrWarnings) {
  TempDir dir;
  // A class with one clip.
  {
    std::ofstream f(dir / "one.csv");
    for (const auto& c : clips_of("drawer", 0, 3)) f << c.string() << ",drawer\n";
    f << clips_of("knock", 0, 1)[0].string() << ",knock\n";
  }
  auto opt = small_options(dir / "one.csv");
  EXPECT_NE(error_of([&] { model::train_head(opt, kQuiet); }).find("class 'knock' has only 1 usable clip"), std::string::npos);

  // A label whose files are all unreadable (no audio), and an unreadable clip among good ones.
  std::ofstream(dir / "garbage.wav") << "this is not audio";
  std::ofstream(dir / "garbage2.flac") << "nor this";
  const auto list = write_list(dir, {"drawer", "doorslam"}, 3,
                               (dir / "garbage.wav").string() + ",ghost\n" + (dir / "garbage2.flac").string() + ",ghost\n");
  opt.clips = list.string();
  const std::string ghost = error_of([&] { model::train_head(opt, kQuiet); });
  EXPECT_NE(ghost.find("class 'ghost': none of its files could be used"), std::string::npos) << ghost;

  const auto list2 = write_list(dir, {"drawer", "doorslam"}, 3, (dir / "garbage.wav").string() + ",drawer\n");
  opt.clips = list2.string();
  // A clip shorter than a mel frame.
  util::write_wav((dir / "tiny.wav").string(), testing::sine(1000, 0.005, 32000), 32000);
  std::ofstream(list2, std::ios::app) << (dir / "tiny.wav").string() << ",doorslam\n";
  const auto r = model::train_head(opt, kQuiet);
  std::string all;
  for (const auto& w : r.warnings) all += w + "\n";
  EXPECT_NE(all.find("garbage.wav"), std::string::npos) << all;
  EXPECT_NE(all.find("tiny.wav"), std::string::npos) << all;
  EXPECT_NE(all.find("shorter than"), std::string::npos) << all;
  EXPECT_EQ(r.head.classes, (std::vector<std::string>{"doorslam", "drawer"}));

  // All clips of one class: an error without negatives, fine with them.
  opt.clips = write_list(dir, {"drawer"}, 4).string();
  EXPECT_NE(error_of([&] { model::train_head(opt, kQuiet); }).find("all clips are of one class ('drawer')"), std::string::npos);
  opt.negatives = {(testing::shared_dir() / "sounds" / "backgrounds" / "fireplace.flac").string()};
  opt.negatives_max_s = 10;
  EXPECT_EQ(model::train_head(opt, kQuiet).head.classes, std::vector<std::string>{"drawer"});
}

TEST_F(TrainTest, CorruptOrForeignHeadsAreErrorsNamingTheFile) {
  TempDir dir;
  const auto opt = small_options(write_list(dir, {"drawer", "doorslam"}, 3));
  const auto r = model::train_head(opt, kQuiet);
  const fs::path h = dir / "head";
  r.head.save(h.string());
  Config cfg = test_config();
  cfg.model.heads = {h.string()};
  EXPECT_NO_THROW(Detector{cfg});

  // Another backbone: the sha256 does not match.
  auto foreign = r.head;
  foreign.backbone_sha256 = std::string(64, 'a');
  foreign.save((dir / "foreign").string());
  cfg.model.heads = {(dir / "foreign").string()};
  const std::string mismatch = error_of([&] { Detector d(cfg); });
  EXPECT_NE(mismatch.find((dir / "foreign" / "head.json").string()), std::string::npos) << mismatch;
  EXPECT_NE(mismatch.find("trained on another network"), std::string::npos) << mismatch;

  // Other frames settings than the head was trained with.
  cfg.model.heads = {h.string()};
  cfg.frames.pool_columns = 5;
  EXPECT_NE(error_of([&] { Detector d(cfg); }).find("pool_columns"), std::string::npos);
  cfg.frames.pool_columns = 3;

  // A class name clashing with an AudioSet label.
  auto clash = r.head;
  clash.classes[0] = "Speech";
  clash.save((dir / "clash").string());
  cfg.model.heads = {(dir / "clash").string()};
  EXPECT_NE(error_of([&] { Detector d(cfg); }).find("class 'Speech' is already a label"), std::string::npos);
  clash.classes[0] = "speech";  // names are matched case-insensitively by per_class, allow, deny
  clash.save((dir / "clash").string());
  EXPECT_NE(error_of([&] { Detector d(cfg); }).find("class 'speech' is already a label ('Speech')"), std::string::npos);
  cfg.model.head_only = true;
  EXPECT_NO_THROW(Detector{cfg});
  cfg.model.head_only = false;

  // Corrupt files.
  fs::copy(h, dir / "bad", fs::copy_options::recursive);
  std::ofstream(dir / "bad" / "weights.bin", std::ios::binary | std::ios::app) << "x";
  cfg.model.heads = {(dir / "bad").string()};
  EXPECT_NE(error_of([&] { Detector d(cfg); }).find((dir / "bad" / "weights.bin").string()), std::string::npos);
  std::ofstream(dir / "bad" / "head.json") << "{ not json";
  EXPECT_NE(error_of([&] { Detector d(cfg); }).find((dir / "bad" / "head.json").string() + ": not valid JSON"),
            std::string::npos);
  std::ofstream(dir / "bad" / "head.json") << R"({"format": "earmark-head", "version": 99})";
  EXPECT_NE(error_of([&] { Detector d(cfg); }).find("version 99 is not supported"), std::string::npos);
  cfg.model.heads = {(dir / "missing").string()};
  EXPECT_NE(error_of([&] { Detector d(cfg); }).find("missing: no such head file"), std::string::npos);
  // Config validation.
  cfg.model.heads = {};
  cfg.model.head_only = true;
  EXPECT_NE(error_of([&] { cfg.validate(); }).find("model.head_only"), std::string::npos);
  const Config y = Config::from_yaml_text("model: {heads: [a, b], head_only: true}");
  EXPECT_EQ(y.model.heads, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(y.model.head_only);
}

TEST_F(TrainTest, EndToEndTrainThenDetectAHeldOutClip) {
  TempDir dir;
  // A folder per class, as a user would make it.
  for (const std::string c : {"drawer", "pageturn", "doorslam"}) {
    fs::create_directories(dir / "clips" / c);
    for (const auto& clip : clips_of(c, 0, 6)) fs::copy_file(clip, dir / "clips" / c / clip.filename());
  }
  const fs::path head = dir / "head";
  const std::string train = testing::cli_path().string() + " train -q --clips " + (dir / "clips").string() + " --negatives " +
                            (testing::shared_dir() / "sounds" / "backgrounds" / "wind.flac").string() + " --models-dir " +
                            testing::models_dir().string() + " -t 2 --mixes 1 -o " + head.string() + " > " +
                            (dir / "train.txt").string();
  ASSERT_EQ(std::system(train.c_str()), 0);
  ASSERT_TRUE(fs::exists(head / "head.json"));

  // A held-out drawer clip in 1 s of quiet noise on each side.
  auto clip = model::read_audio(clips_of("drawer", 15, 1)[0].string());
  std::vector<float> audio = testing::white_noise(32000, 0.001, 3);
  audio.insert(audio.end(), clip.begin(), clip.end());
  const auto tail = testing::white_noise(32000, 0.001, 4);
  audio.insert(audio.end(), tail.begin(), tail.end());
  Config cfg = test_config();
  cfg.model.heads = {head.string()};
  cfg.model.head_only = true;
  const Detector det(cfg);
  ASSERT_EQ(det.labels().size(), 3u);
  const auto r = det.detect_samples(audio, "drawer-test");
  ASSERT_TRUE(r.ok()) << r.error;
  bool found = false;
  for (const auto& e : r.events)
    if (e.label == "drawer" && e.onset < 1.0 + double(clip.size()) / 32000 && e.offset > 1.0) found = true;
  std::string events;
  for (const auto& e : r.events) events += e.label + " " + std::to_string(e.onset) + "-" + std::to_string(e.offset) + "\n";
  EXPECT_TRUE(found) << events;

  // The same through the CLI: detect --head --head-only on a file.
  util::write_wav((dir / "test.wav").string(), audio, 32000);
  const std::string detect = testing::cli_path().string() + " detect -q --no-report --head " + head.string() +
                             " --head-only --models-dir " + testing::models_dir().string() + " -t 2 " +
                             (dir / "test.wav").string() + " -o " + (dir / "out").string();
  ASSERT_EQ(std::system(detect.c_str()), 0);
  std::ifstream csv(dir / "out" / "events.csv");
  const std::string text((std::istreambuf_iterator<char>(csv)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find(",drawer,"), std::string::npos) << text;
}


// One front half (condition -> log-mel -> network) for train and detect: the AudioSet scores of
// the frames a head is trained on are the detector's own, for a short clip (whose loudness
// gain detect takes from its quality analysis) and for a long input read in several blocks.
TEST_F(TrainTest, TrainingFeaturesAreTheDetectorsFeatures) {
  Config cfg = test_config();
  cfg.model.threads = 1;
  const model::Embedder emb(cfg);
  const earmark::Detector det(cfg);
  std::vector<float> clip = earmark::testing::shared_speech();
  std::vector<float> longer;
  for (int k = 0; k < 3; ++k) longer.insert(longer.end(), clip.begin(), clip.end() - 32000 * k);  // 27 s
  for (const std::vector<float>* samples : {&clip, &longer}) {
    std::vector<float> e, logits;
    const int frames = emb.embed(*samples, e, &logits);
    const earmark::FileResult r = det.detect_samples(*samples);
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.scores.frames, frames);
    const size_t classes = r.scores.labels.size();
    ASSERT_EQ(logits.size(), size_t(frames) * classes);
    size_t differ = 0;
    for (size_t k = 0; k < logits.size(); ++k)
      // The detector keeps its grid in half floats (earmark::ScoreValues): the same value, stored.
      differ += r.scores.values[k] != earmark::half_to_float(earmark::float_to_half(1.0f / (1.0f + std::exp(-logits[k]))))
                    ? 1
                    : 0;
    EXPECT_EQ(differ, 0u) << "of " << logits.size() << " scores, " << samples->size() << " samples";
  }
}

}  // namespace
}  // namespace earmark
