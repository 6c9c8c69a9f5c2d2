// run: the Run layer end to end: outputs streamed file by file, a killed run leaves parseable
// outputs and --resume completes it with the same results, `earmark report` judges a run with
// its own thresholds, the report of a large run stays small.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "earmark/run.hpp"
#include "report/report.hpp"
#include "report/writers.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using earmark::FileResult;
using earmark::testing::cli_path;
using earmark::testing::shared_dir;
using earmark::testing::TempDir;
using nlohmann::json;
namespace report = earmark::report;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Separators outside RFC 4180 quotes.
size_t fields_of(const std::string& line, char sep) {
  size_t n = 1;
  bool quoted = false;
  for (char ch : line) {
    if (ch == '"') quoted = !quoted;
    else if (ch == sep && !quoted) ++n;
  }
  return n;
}

size_t lines_of(const std::string& text) { return size_t(std::count(text.begin(), text.end(), '\n')); }

FileResult result(const std::string& path, std::vector<std::pair<std::string, float>> events) {
  FileResult r;
  r.path = path;
  r.info.duration_s = 10;
  double t = 0;
  for (const auto& [label, conf] : events) {
    earmark::Event e;
    e.onset = t;
    e.offset = t + 1;
    e.label = label;
    e.confidence = conf;
    r.events.push_back(e);
    t += 2;
  }
  return r;
}

// A folder of `n` ten-second clips (links to the shared ones).
fs::path clip_folder(const fs::path& root, size_t n) {
  const fs::path in = root / "in";
  fs::create_directories(in);
  const char* clips[] = {"speech.wav", "music.wav", "typing.wav"};
  for (size_t k = 0; k < n; ++k) {
    char name[32];
    std::snprintf(name, sizeof name, "clip-%03zu.wav", k);
    fs::create_symlink(shared_dir() / "audio" / clips[k % 3], in / name);
  }
  return in;
}

pid_t spawn(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    freopen("/dev/null", "w", stderr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

size_t finished_lines(const fs::path& progress) {
  const std::string text = slurp(progress);
  size_t n = 0;
  std::istringstream ss(text);
  for (std::string l; std::getline(ss, l);) n += l.rfind("{\"n\":", 0) == 0 ? 1 : 0;
  return n;
}

}  // namespace

// After every file, events.json parses and lists exactly the files added so far.
TEST(OutputStream, EveryPrefixIsValid) {
  TempDir tmp;
  earmark::OutputConfig oc;
  for (bool frame_scores : {false, true}) {
    oc.frame_scores = frame_scores;
    report::OutputStream out(tmp.path().string(), oc);
    for (int k = 0; k < 4; ++k) {
      out.add(result("a/f" + std::to_string(k) + ".wav", {{"Speech", 0.9f}, {"Dog", 0.5f}}));
      const auto j = json::parse(slurp(tmp / "events.json"));
      EXPECT_EQ(j["files"].size(), size_t(k + 1));
      EXPECT_EQ(lines_of(slurp(tmp / "events.csv")), size_t(1 + 2 * (k + 1)));
      EXPECT_EQ(lines_of(slurp(tmp / "events.tsv")), size_t(1 + 2 * (k + 1)));
    }
  }
}

// Cut back to where an earlier stream stood and go on: the same bytes as one stream.
TEST(OutputStream, ResumeFromPositionsGivesTheSameFiles) {
  TempDir whole, cut;
  std::vector<FileResult> run;
  for (int k = 0; k < 5; ++k) run.push_back(result("x/f" + std::to_string(k) + ".wav", {{"Music", 0.7f}}));
  run.push_back(result("y/f0.wav", {{"Cat", 0.6f}}));  // a stem collision after the cut
  report::write_outputs(whole.path().string(), run, {});
  report::OutputPositions at;
  {
    report::OutputStream out(cut.path().string(), {});
    for (int k = 0; k < 3; ++k) out.add(run[size_t(k)]);
    at = out.positions();
    out.add(run[3]);  // written, then "killed" before it was recorded
  }
  {
    report::OutputStream out(cut.path().string(), {}, &at, {run[0].path, run[1].path, run[2].path});
    for (size_t k = 3; k < run.size(); ++k) out.add(run[k]);
  }
  for (const char* f : {"events.csv", "events.json", "events.tsv", "f0-2.labels.txt", "f0-2.json"})
    EXPECT_EQ(slurp(cut / f), slurp(whole / f)) << f;
}

// A run of many files: sections on pages, pictures only for the files that matter.
TEST(ReportStream, LargeRunHasPagesAndFewPictures) {
  TempDir tmp;
  report::ReportConfig cfg;
  cfg.max_picture_files = 2;
  cfg.page_files = 10;
  cfg.picture_inputs = {"asked.wav"};
  std::vector<FileResult> run;
  for (int k = 0; k < 25; ++k) run.push_back(result("f" + std::to_string(k) + ".wav", {{"Speech", 0.9f}}));
  run[7].events.push_back(run[7].events[0]);  // the most events
  run[7].events.push_back(run[7].events[0]);
  earmark::Anomaly bad{"clipping", "error", 0, 1, "clipped"};
  run[19].anomalies.push_back(bad);  // an error-level finding
  run.push_back(result("asked.wav", {}));
  report::RunInfo info;
  report::write_report(tmp.path().string(), run, info, cfg);
  const std::string html = slurp(tmp / "report.html");
  for (int p = 1; p <= 3; ++p) EXPECT_TRUE(fs::exists(tmp / "report" / ("files-" + std::to_string(p) + ".html"))) << p;
  EXPECT_EQ(html.find("<section id=\"file-1\""), std::string::npos);  // details are on the pages
  EXPECT_NE(html.find("href=\"report/files-2.html#file-20\""), std::string::npos);
  const std::string page2 = slurp(tmp / "report" / "files-2.html");
  EXPECT_NE(page2.find("<section id=\"file-20\""), std::string::npos);
  EXPECT_NE(page2.find("id=\"events-20\""), std::string::npos);
  // Pictures: file 20 (error), file 8 (most events) and the one asked for; no others.
  std::set<std::string> pngs;
  for (const auto& e : fs::directory_iterator(tmp / "report"))
    if (e.path().extension() == ".png") pngs.insert(e.path().filename().string());
  EXPECT_EQ(pngs, (std::set<std::string>{"file-20-timeline.png", "file-8-timeline.png", "file-26-timeline.png"}));
  EXPECT_FALSE(fs::exists(tmp / "report" / "files.html.part"));
}

// `earmark report` on a run folder flags low-confidence events against the run's own
// threshold (0.6 here), not the default (0.3).
TEST(ReportCli, UsesTheRunsOwnThresholds) {
  TempDir run, out;
  report::write_outputs(run.path().string(), {result("rec.wav", {{"Speech", 0.65f}})}, {});
  earmark::Config cfg;
  cfg.events.threshold_on = 0.6;
  cfg.events.threshold_off = 0.5;
  report::RunInfo info;
  info.config_yaml = cfg.to_yaml();
  report::write_run_info((run / "run.json").string(), info);
  const std::string cmd = "\"" + cli_path().string() + "\" report \"" + run.path().string() + "\" -o \"" +
                          out.path().string() + "\" > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::string html = slurp(out / "report.html");
  EXPECT_NE(html.find("<td>low_confidence</td>"), std::string::npos)
      << "confidence 0.65 is within 0.1 of the run's threshold 0.6";
}

// Killed half way: parseable outputs for the files done; --resume completes the run with the
// same outputs as one run that was never stopped.
TEST(DetectCli, KilledRunResumesToTheSameResults) {
  EARMARK_REQUIRE_SHARED();
  // The CLI children find the model as a user's would, through EARMARK_MODELS.
  setenv("EARMARK_MODELS", earmark::testing::models_dir().c_str(), 1);
  TempDir tmp;
  const fs::path in = clip_folder(tmp.path(), 40);
  const fs::path whole = tmp / "whole", cut = tmp / "cut";
  const std::string cli = cli_path().string();
  int status = 0;
  const std::string text = earmark::testing::run(
      "\"" + cli + "\" detect --quiet --threads 1 \"" + in.string() + "\" -o \"" + whole.string() + "\"", &status);
  ASSERT_EQ(status, 0) << text;

  const pid_t pid = spawn({cli, "detect", "--quiet", "--threads", "1", in.string(), "-o", cut.string()});
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (finished_lines(cut / "run.progress.jsonl") < 5 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pid, SIGKILL);
  int ws = 0;
  waitpid(pid, &ws, 0);
  ASSERT_TRUE(WIFSIGNALED(ws)) << "the run ended before it could be killed half way";
  const size_t done = finished_lines(cut / "run.progress.jsonl");
  ASSERT_GE(done, 5u);
  ASSERT_LT(done, 40u);
  // What a killed run leaves: each file parses and holds the files finished (maybe one more).
  const auto j = json::parse(slurp(cut / "events.json"));
  EXPECT_GE(j["files"].size(), done);
  EXPECT_LE(j["files"].size(), done + 1);
  for (const char* f : {"events.csv", "events.tsv"}) {
    const std::string t = slurp(cut / f);
    ASSERT_FALSE(t.empty()) << f;
    EXPECT_EQ(t.back(), '\n') << f;
    std::istringstream ss(t);
    for (std::string l; std::getline(ss, l);)
      EXPECT_EQ(fields_of(l, f[7] == 'c' ? ',' : '\t'), f[7] == 'c' ? 6u : 5u) << f << ": " << l;
  }
  EXPECT_FALSE(fs::exists(cut / "report.html"));

  const std::string resumed = earmark::testing::run(
      "\"" + cli + "\" detect --threads 1 --resume \"" + in.string() + "\" -o \"" + cut.string() + "\"", &status);
  ASSERT_EQ(status, 0) << resumed;
  EXPECT_NE(resumed.find("resumed: " + std::to_string(done) + " file(s)"), std::string::npos) << resumed;
  for (const char* f : {"events.csv", "events.json", "events.tsv", "clip-000.labels.txt", "clip-039.json"})
    EXPECT_EQ(slurp(cut / f), slurp(whole / f)) << f;
  const std::string html = slurp(cut / "report.html");
  EXPECT_NE(html.find("id=\"events-40\""), std::string::npos);
  EXPECT_NE(html.find("id=\"events-1\""), std::string::npos);

  // Resuming with other settings is refused, naming the progress file.
  const std::string other = earmark::testing::run(
      "\"" + cli + "\" detect --quiet --threshold 0.5 --resume \"" + in.string() + "\" -o \"" + cut.string() + "\"",
      &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(other.find("run.progress.jsonl"), std::string::npos) << other;
}

// Two threads: files in parallel, results in input order and equal to one thread's.
TEST(DetectCli, TwoThreadsGiveTheSameOutputs) {
  EARMARK_REQUIRE_SHARED();
  // The CLI children find the model as a user's would, through EARMARK_MODELS.
  setenv("EARMARK_MODELS", earmark::testing::models_dir().c_str(), 1);
  TempDir tmp;
  const fs::path in = clip_folder(tmp.path(), 6);
  const std::string cli = cli_path().string();
  int status = 0;
  for (const char* t : {"1", "2"}) {
    const std::string text = earmark::testing::run("\"" + cli + "\" detect --quiet --no-report --threads " + t + " \"" +
                                                       in.string() + "\" -o \"" + (tmp / t).string() + "\"",
                                                   &status);
    ASSERT_EQ(status, 0) << text;
  }
  for (const char* f : {"events.csv", "events.json", "events.tsv"}) EXPECT_EQ(slurp(tmp / "1" / f), slurp(tmp / "2" / f)) << f;
}
