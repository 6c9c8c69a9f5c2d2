// End to end: real recordings in several containers/codecs through the library and the CLI,
// the expected events, frame-grid properties, and every bad-input case of `earmark detect`.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "earmark/earmark.hpp"
#include "features/logmel.hpp"
#include "model/network.hpp"
#include "model/scorer.hpp"
#include "test_support.hpp"

namespace {

using namespace earmark;
using earmark::testing::shared_dir;
using earmark::testing::TempDir;
namespace fs = std::filesystem;

Config test_config() {
  Config c;
  c.model.models_dir = earmark::testing::models_dir().string();
  c.model.threads = 2;
  return c;
}

const Detector& detector() {
  static const Detector d(test_config());
  return d;
}

// An event in [from, to) named `label`, or with `label` rolled up into it (events.rollup: the
// same sound under a more specific name, e.g. Speech in "Male speech, man speaking").
bool has_event(const FileResult& r, const std::string& label, double from = 0, double to = 1e9) {
  return std::any_of(r.events.begin(), r.events.end(), [&](const Event& e) {
    const bool named = e.label == label || std::any_of(e.also.begin(), e.also.end(),
                                                       [&](const earmark::RolledLabel& a) { return a.label == label; });
    return named && e.offset > from && e.onset < to;
  });
}

using earmark::testing::run;

bool have_ffmpeg() { return std::system("ffmpeg -version >/dev/null 2>&1") == 0; }

std::string cli() {
  return "EARMARK_MODELS='" + earmark::testing::models_dir().string() + "' '" + earmark::testing::cli_path().string() + "'";
}

TEST(Detect, ExpectedEventsOnTheGoldenClips) {
  EARMARK_REQUIRE_SHARED();
  const auto speech = detector().detect_file((shared_dir() / "audio/speech.wav").string());
  ASSERT_TRUE(speech.ok()) << speech.error;
  EXPECT_TRUE(has_event(speech, "Speech"));
  // The door slams at about 4.5 s.
  EXPECT_TRUE(has_event(speech, "Door", 4.0, 5.5) || has_event(speech, "Slam", 4.0, 5.5));
  const auto typing = detector().detect_file((shared_dir() / "audio/typing.wav").string());
  ASSERT_TRUE(typing.ok()) << typing.error;
  EXPECT_TRUE(has_event(typing, "Typing") || has_event(typing, "Computer keyboard"));
  const auto music = detector().detect_file((shared_dir() / "audio/music.wav").string());
  ASSERT_TRUE(music.ok()) << music.error;
  EXPECT_TRUE(has_event(music, "Music"));
  // No event of any class on the keyboard recording should be speech or music.
  EXPECT_FALSE(has_event(typing, "Music"));
}

TEST(Detect, ScoreGridCoversTheFile) {
  EARMARK_REQUIRE_SHARED();
  const auto r = detector().detect_file((shared_dir() / "audio/speech.wav").string());
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r.info.duration_s, 10.0, 1e-3);
  EXPECT_DOUBLE_EQ(r.scores.hop_s, 0.16);  // two passes over 0.32 s columns
  EXPECT_EQ(r.scores.frames, 63);  // ceil(10 / 0.16)
  EXPECT_EQ(r.scores.labels.size(), 527u);
  for (float v : r.scores.values) ASSERT_TRUE(v >= 0.0f && v <= 1.0f);
  EXPECT_TRUE(r.scores.values.compact());  // half floats: a long file's grid at half the size
  for (const auto& e : r.events) {
    EXPECT_GE(e.onset, 0.0);
    EXPECT_LE(e.offset, 10.0 + 1e-9);
    EXPECT_LT(e.onset, e.offset);
  }
}

TEST(Detect, StreamingBlockSizeDoesNotChangeScores) {
  EARMARK_REQUIRE_SHARED();
  // The same 10 s through the frame scorer in mel blocks of 1, 37 and all frames, with one and
  // with several passes (shifted chunks reach back before the block that completes them).
  const auto audio = earmark::testing::read_wav16(shared_dir() / "audio/typing.wav");
  const model::Network net((earmark::testing::models_dir() / "mn04_as_mAP_432.pt").string(), 0, 1);
  for (int passes : {1, 2, 4}) {
  std::vector<std::vector<float>> results;
  FramesConfig fc;
  fc.passes = passes;
  for (size_t block : {size_t(1), size_t(37), size_t(100000)}) {
    features::LogMelStream mel;
    model::FrameScorer scorer(net, fc, 3);
    std::vector<float> frames;
    for (size_t i = 0; i < audio.size(); i += block * 320) {
      const size_t n = std::min(block * 320, audio.size() - i);
      mel.push(std::span<const float>(audio).subspan(i, n));
      frames.clear();
      const size_t k = mel.take(frames, mel.available());
      scorer.push(frames, k);
    }
    mel.finish();
    frames.clear();
    scorer.push(frames, mel.take(frames, mel.available()));
    scorer.finish(audio.size());
    results.push_back(scorer.logits());
  }
  // ceil(10 s / (0.32 s / passes)) rows.
  ASSERT_EQ(results[0].size(), size_t(std::ceil(10.0 / (0.32 / passes) - 1e-9)) * 527u) << passes << " passes";
  for (size_t k = 1; k < results.size(); ++k) {
    ASSERT_EQ(results[k].size(), results[0].size());
    float d = 0;
    for (size_t i = 0; i < results[0].size(); ++i) d = std::max(d, std::abs(results[k][i] - results[0][i]));
    EXPECT_LT(d, 1e-4f) << "block variant " << k << ", " << passes << " passes";
  }
  }
}

// A long file's grid and envelope go to a temporary file (model.spill_after_s): the results are
// those of a run that keeps everything in memory.
TEST(Detect, ALongFileSpilledToDiskGivesTheSameResults) {
  EARMARK_REQUIRE_SHARED();
  std::vector<float> audio;  // 3 minutes: several blocks of the spilled grid and envelope
  for (int k = 0; k < 6; ++k)
    for (const char* clip : {"audio/speech.wav", "audio/typing.wav", "audio/music.wav"}) {
      const auto a = earmark::testing::read_wav16(shared_dir() / clip);
      audio.insert(audio.end(), a.begin(), a.end());
    }
  const fs::path wav = fs::temp_directory_path() / "earmark-test-spill.wav";
  earmark::testing::write_wav16(wav, audio, 32000, 1);
  Config in_memory = test_config();
  in_memory.model.spill_after_s = 0;
  Config spilled = test_config();
  spilled.model.spill_after_s = 5;
  const auto a = Detector(in_memory).detect_file(wav.string());
  const auto b = Detector(spilled).detect_file(wav.string());
  // Where the temporary file cannot be made, the file fails with a message that names it, the
  // folder and what to do.
  const char* old_tmp = std::getenv("TMPDIR");
  const std::string saved_tmp = old_tmp ? old_tmp : "";
  setenv("TMPDIR", "/nonexistent/earmark-tmp", 1);
  const auto c = Detector(spilled).detect_file(wav.string());
  if (old_tmp) setenv("TMPDIR", saved_tmp.c_str(), 1); else unsetenv("TMPDIR");
  fs::remove(wav);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.error.rfind(wav.string() + ": ", 0), 0u) << c.error;
  EXPECT_NE(c.error.find("/nonexistent/earmark-tmp"), std::string::npos) << c.error;
  EXPECT_NE(c.error.find("model.spill_after_s"), std::string::npos) << c.error;
  ASSERT_TRUE(a.ok()) << a.error;
  ASSERT_TRUE(b.ok()) << b.error;
  EXPECT_FALSE(a.scores.values.spilled());
  EXPECT_TRUE(b.scores.values.spilled());
  EXPECT_TRUE(a.scores.values == b.scores.values);
  ASSERT_GT(a.events.size(), 5u);
  ASSERT_EQ(a.events.size(), b.events.size());
  for (size_t i = 0; i < a.events.size(); ++i) {
    EXPECT_EQ(a.events[i].label, b.events[i].label) << i;
    EXPECT_EQ(a.events[i].onset, b.events[i].onset) << i;
    EXPECT_EQ(a.events[i].offset, b.events[i].offset) << i;
    EXPECT_EQ(a.events[i].confidence, b.events[i].confidence) << i;
    const float sa = a.events[i].salience_db, sb = b.events[i].salience_db;
    EXPECT_TRUE(sa == sb || (std::isnan(sa) && std::isnan(sb))) << i;
  }
}

// The scaled rows' unscaled scores of a long file go to a temporary file too; an odd number of
// classes (AudioSet has 527) packs two scores per stored value but the last.
TEST(Detect, UnscaledScoresReadBackTheSameWhenSpilled) {
  const size_t classes = 7;
  model::FrameScorer::Unscaled memory(classes), disk(classes);
  disk.spill_after(3);
  std::vector<uint8_t> row(classes);
  for (long r = 0; r < 2000; r += 1 + r % 3) {
    for (size_t c = 0; c < classes; ++c) row[c] = uint8_t((r * 31 + long(c) * 17) % 256);
    memory.add(r, row.data());
    disk.add(r, row.data());
  }
  ASSERT_EQ(disk.size(), memory.size());
  for (size_t k = 0; k < memory.size(); ++k) {
    ASSERT_EQ(disk.row(k), memory.row(k));
    for (size_t c = 0; c < classes; ++c) ASSERT_EQ(disk.score(k, c), memory.score(k, c)) << k << " " << c;
  }
  EXPECT_EQ(disk.first_at_or_after(100), memory.first_at_or_after(100));
  EXPECT_GE(memory.row(memory.first_at_or_after(100)), 100);
  EXPECT_LT(memory.row(memory.first_at_or_after(100) - 1), 100);
  EXPECT_EQ(memory.first_at_or_after(5000), memory.size());
}

TEST(Detect, ShortClipsAndEdgesGetScores) {
  EARMARK_REQUIRE_SHARED();
  // 0.8 s of typing: shorter than the network likes, at both file edges at once.
  const auto audio = earmark::testing::read_wav16(shared_dir() / "audio/typing.wav");
  const std::vector<float> excerpt(audio.begin() + 3 * 32000, audio.begin() + 3 * 32000 + 25600);
  const auto r = detector().detect_samples(excerpt, "typing-excerpt");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.scores.frames, 5);  // ceil(0.8 / 0.16)
  const auto col = [&](const char* name) {
    return int(std::find(r.scores.labels.begin(), r.scores.labels.end(), name) - r.scores.labels.begin());
  };
  for (int f = 0; f < r.scores.frames; ++f) {
    // Every grid cell, the edges included, recognises the keyboard.
    EXPECT_GT(std::max(r.scores.at(f, col("Typing")), r.scores.at(f, col("Computer keyboard"))), 0.3f) << "frame " << f;
  }
  // A single sample and zero samples: no crash, no events.
  EXPECT_TRUE(detector().detect_samples(std::vector<float>{0.1f}).events.empty());
  EXPECT_TRUE(detector().detect_samples(std::vector<float>{}).events.empty());
  // Digital silence: at most the class "Silence".
  for (const auto& e : detector().detect_samples(std::vector<float>(32000 * 5, 0.0f)).events) EXPECT_EQ(e.label, "Silence");
}

TEST(Detect, WindowsMethodFindsTheSameMainEvents) {
  EARMARK_REQUIRE_SHARED();
  Config c = test_config();
  c.frames.method = "windows";
  const Detector d(c);
  const auto r = d.detect_file((shared_dir() / "audio/typing.wav").string());
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.scores.frames, 32);
  EXPECT_TRUE(has_event(r, "Typing") || has_event(r, "Computer keyboard"));
}

// The same clip in other containers and codecs decodes and gives the same main events.
TEST(Detect, ContainersAndCodecs) {
  EARMARK_REQUIRE_SHARED();
  EARMARK_REQUIRE_TOOL(have_ffmpeg(), "the ffmpeg CLI");
  TempDir tmp;
  const std::string src = (shared_dir() / "audio/speech.wav").string();
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"speech.flac", "-c:a flac"},
      {"speech.ogg", "-c:a libvorbis -q:a 5"},
      {"speech.opus", "-c:a libopus -b:a 64k"},
      {"speech.mp3", "-c:a libmp3lame -b:a 128k"},
      {"speech.m4a", "-c:a aac -b:a 128k"},
      {"speech-48k-stereo.wav", "-ar 48000 -ac 2"},
  };
  for (const auto& [name, args] : variants) {
    const auto out = (tmp / name).string();
    ASSERT_EQ(std::system(("ffmpeg -loglevel error -y -i '" + src + "' " + args + " '" + out + "'").c_str()), 0) << name;
    const auto r = detector().detect_file(out);
    ASSERT_TRUE(r.ok()) << name << ": " << r.error;
    EXPECT_NEAR(r.info.duration_s, 10.0, 0.1) << name;
    EXPECT_TRUE(has_event(r, "Speech")) << name;
    EXPECT_TRUE(has_event(r, "Door", 4.0, 5.5) || has_event(r, "Slam", 4.0, 5.5)) << name;
  }
}

TEST(DetectCli, WritesAllFormatsForAFolder) {
  EARMARK_REQUIRE_SHARED();
  TempDir tmp;
  int status = 0;
  const auto out = run(cli() + " detect --quiet '" + (shared_dir() / "audio").string() + "' -o '" + tmp.path().string() + "'", &status);
  ASSERT_EQ(status, 0) << out;
  for (const char* f : {"events.csv", "events.json", "events.tsv", "speech.labels.txt", "typing.labels.txt",
                        "music.labels.txt", "report.html", "report.md"})
    EXPECT_TRUE(fs::exists(tmp / f)) << f;
  std::ifstream csv(tmp / "events.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header, "file,onset,offset,label,confidence,kind");
  const auto j = nlohmann::json::parse(std::ifstream(tmp / "events.json"));
  ASSERT_EQ(j["files"].size(), 3u);
}

TEST(DetectCli, BadInputsGetOneLineErrorsAndTheRestIsStillWritten) {
  EARMARK_REQUIRE_SHARED();
  TempDir tmp;
  const fs::path in = tmp / "in";
  fs::create_directories(in / "empty-folder");
  std::ofstream(in / "empty.wav").close();
  std::ofstream(in / "notes.mp3") << "these are not the sounds you are looking for\n";
  {  // a WAV cut in the middle of its header
    std::ifstream src(shared_dir() / "audio/typing.wav", std::ios::binary);
    std::vector<char> head(30);
    src.read(head.data(), 30);
    std::ofstream(in / "truncated.wav", std::ios::binary).write(head.data(), 30);
  }
  fs::copy_file(shared_dir() / "audio/typing.wav", in / "good.wav");
  const fs::path out = tmp / "out";
  int status = 0;
  const std::string cmd = cli() + " detect --quiet '" + (in / "empty.wav").string() + "' '" + (in / "notes.mp3").string() +
                          "' '" + (in / "truncated.wav").string() + "' '" + (in / "empty-folder").string() + "' '" +
                          (in / "good.wav").string() + "' '" + (in / "missing.flac").string() + "' -o '" + out.string() + "'";
  const auto text = run(cmd, &status);
  EXPECT_EQ(status, 1) << text;
  for (const char* name : {"empty.wav", "notes.mp3", "truncated.wav", "empty-folder", "missing.flac"}) {
    // One line per bad input, naming it.
    size_t lines = 0;
    std::istringstream ss(text);
    for (std::string l; std::getline(ss, l);) lines += l.find(name) != std::string::npos ? 1 : 0;
    EXPECT_EQ(lines, 1u) << name << " in:\n" << text;
  }
  EXPECT_EQ(text.find("terminate"), std::string::npos) << text;
  // The good file's results were written.
  std::ifstream csv(out / "events.csv");
  const std::string all((std::istreambuf_iterator<char>(csv)), std::istreambuf_iterator<char>());
  EXPECT_NE(all.find("good.wav"), std::string::npos) << all;
  // One sound, one name: Computer keyboard, with its parent Typing rolled up into it (JSON "also").
  EXPECT_NE(all.find("Computer keyboard"), std::string::npos) << all;
  const auto j = nlohmann::json::parse(std::ifstream(out / "events.json"));
  EXPECT_EQ(j["files"].size(), 6u);
  bool typing = false;
  for (const auto& f : j["files"])
    for (const auto& e : f["events"])
      for (const auto& a : e["also"]) typing = typing || a["label"] == "Typing";
  EXPECT_TRUE(typing) << j.dump();
}

TEST(DetectCli, ModelErrors) {
  EARMARK_REQUIRE_SHARED();
  TempDir tmp;
  int status = 0;
  auto text = run(cli() + " detect --quiet --model mn99_as '" + (shared_dir() / "audio").string() + "' -o '" + tmp.path().string() + "'", &status);
  EXPECT_EQ(status, 2) << text;
  EXPECT_NE(text.find("unknown model 'mn99_as'"), std::string::npos) << text;

  // A real PyTorch checkpoint of another network: wrong keys, named in the message.
  const fs::path bad = tmp / "wrong_keys.pt";
  const std::string py = "import torch; torch.save({'encoder.weight': torch.zeros(3, 3), 'encoder.bias': torch.zeros(3)}, '" + bad.string() + "')";
  EARMARK_REQUIRE_TOOL(std::system(("/usr/bin/python3 -c \"" + py + "\" 2>/dev/null").c_str()) == 0, "python3-torch");
  fs::copy_file(earmark::testing::models_dir() / "class_labels_indices.csv", tmp / "class_labels_indices.csv");
  text = run(cli() + " detect --quiet --model '" + bad.string() + "' '" + (shared_dir() / "audio").string() + "' -o '" + (tmp / "o").string() + "'", &status);
  EXPECT_EQ(status, 2) << text;
  EXPECT_NE(text.find("wrong_keys.pt"), std::string::npos) << text;
  EXPECT_NE(text.find("unexpected keys: encoder.bias, encoder.weight"), std::string::npos) << text;
  EXPECT_NE(text.find("missing keys"), std::string::npos) << text;

  // Not a checkpoint at all.
  std::ofstream(tmp / "garbage.pt") << "not a zip";
  text = run(cli() + " detect --quiet --model '" + (tmp / "garbage.pt").string() + "' '" + (shared_dir() / "audio").string() + "' -o '" + (tmp / "o").string() + "'", &status);
  EXPECT_EQ(status, 2) << text;
  EXPECT_NE(text.find("garbage.pt"), std::string::npos) << text;
}

}  // namespace
