// Hostile and careless input to the CLI (issue 14 items 7, 8 and 10): usage errors exit 2
// and name the flag; numbers that are NaN, infinite or out of range are refused; files the
// program parses are read bounded (no FIFOs or devices, capped sizes, capped times).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <string>

#include "eval/tsv.hpp"
#include "model/head.hpp"
#include "test_support.hpp"

namespace {

using earmark::testing::TempDir;
namespace fs = std::filesystem;

struct Ran {
  int status = -1;
  std::string output;
  double seconds = 0;
};

Ran cli(const std::string& args) {
  Ran r;
  const auto t0 = std::chrono::steady_clock::now();
  r.output = earmark::testing::run(earmark::testing::cli_path().string() + " " + args, &r.status);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(CliInput, UsageErrorsExitTwo) {
  // CLI11's own codes were 106 (missing argument), 109 (unknown flag), 105 (bad value).
  for (const char* args : {"", "detect", "detect a.wav --no-such-flag", "nosuchverb", "detect a.wav --threads many",
                           "eval --ref /nonexistent.tsv"}) {
    const Ran r = cli(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.output;
  }
  EXPECT_EQ(cli("--help").status, 0);
  EXPECT_EQ(cli("detect --help").status, 0);
}

TEST(CliInput, BadNumbersAreUsageErrorsNamingTheFlag) {
  struct Case {
    const char* args;
    const char* flag;
    const char* says;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"detect a.wav --threshold nan", "--threshold", "NaN"},
           {"detect a.wav --threshold -1", "--threshold", "between 0 and 1"},
           {"detect a.wav --threshold 1.5", "--threshold", "between 0 and 1"},
           {"detect a.wav --threshold inf", "--threshold", "infinity"},
           {"detect a.wav --threads -1", "--threads", "between 0"},
           {"detect a.wav --threads 100000", "--threads", "256"},
           {"eval --ref /dev/null --est /dev/null --collar nan", "--collar", "NaN"},
           {"eval --ref /dev/null --est /dev/null --segment 0", "--segment", "between"},
           {"eval --ref /dev/null --est /dev/null --threshold 2", "--threshold", "between 0 and 1"},
           {"tune a.wav --ref /dev/null --off-ratio nan", "--off-ratio", "NaN"},
           {"tune a.wav --ref /dev/null --thresholds 0.2,nan", "--thresholds", "NaN"},
           {"train --clips a -o b --lr inf", "--lr", "infinity"},
           {"train --clips a -o b --threads -1", "--threads", "between 0"},
           {"synth -o x --duration nan", "--duration", "NaN"},
           {"synth -o x --snr -inf 3", "--snr", "infinity"},
       }) {
    const Ran r = cli(c.args);
    EXPECT_EQ(r.status, 2) << c.args << "\n" << r.output;
    EXPECT_TRUE(has(r.output, c.flag)) << c.args << "\n" << r.output;
    EXPECT_TRUE(has(r.output, c.says)) << c.args << "\n" << r.output;
  }
}

TEST(CliInput, ServeNumbersMustBeFinite) {
  for (const char* args : {"--keep-hours nan", "--max-upload-mb inf", "--lease-s nan"}) {
    // timeout: were the flag accepted, the server would start and serve.
    int status = -1;
    const std::string out = earmark::testing::run(
        "timeout 20 " + earmark::testing::cli_path().string() + " serve --port 0 " + args, &status);
    EXPECT_EQ(status, 2) << args << "\n" << out;
    EXPECT_TRUE(has(out, std::string(args).substr(0, std::string(args).find(' ')))) << out;
  }
}

TEST(CliInput, ConfigFromADeviceFailsFast) {
  // --config /dev/zero grew to 17 GB.
  const Ran r = cli("detect a.wav --config /dev/zero");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(has(r.output, "/dev/zero")) << r.output;
  EXPECT_TRUE(has(r.output, "not a regular file")) << r.output;
  EXPECT_LT(r.seconds, 30.0);
}

TEST(CliInput, ConfigWithNanIsAnErrorNamingTheKey) {
  TempDir tmp;
  const auto cfg = tmp / "nan.yaml";
  std::ofstream(cfg) << "frames:\n  method: windows\n  hop_s: .nan\n";
  const Ran r = cli("detect a.wav --config " + cfg.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(has(r.output, "frames.hop_s")) << r.output;
  EXPECT_TRUE(has(r.output, "NaN")) << r.output;
}

// eval allocated in proportion to the largest time in a TSV: 1e9 s -> 4 GB, 1e12 -> abort.
TEST(CliInput, EvalRefusesHugeTimesNamingFileAndLine) {
  TempDir tmp;
  const auto ref = tmp / "ref.tsv", est = tmp / "est.tsv";
  std::ofstream(ref) << "filename\tonset\toffset\tevent_label\na.wav\t0\t1\tDog\n";
  for (const char* big : {"1e9", "1e12"}) {
    std::ofstream(est) << "filename\tonset\toffset\tevent_label\na.wav\t0\t1\tDog\na.wav\t5\t" << big << "\tDog\n";
    const Ran r = cli("eval --ref " + ref.string() + " --est " + est.string());
    EXPECT_EQ(r.status, 2) << big << "\n" << r.output;
    EXPECT_TRUE(has(r.output, est.string() + ":3")) << r.output;
    EXPECT_LT(r.seconds, 30.0);
  }
}

TEST(CliInput, EvalBoundsTheSegmentRollsToo) {
  // Times within a week, but 1 ms segments: 6e8 segments per class.
  TempDir tmp;
  const auto ref = tmp / "ref.tsv";
  std::ofstream(ref) << "a.wav\t0\t600000\tDog\n";
  const Ran r = cli("eval --ref " + ref.string() + " --est " + ref.string() + " --segment 0.001");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(has(r.output, "a.wav")) << r.output;
  EXPECT_TRUE(has(r.output, "longer segment")) << r.output;
  EXPECT_LT(r.seconds, 30.0);
}

TEST(CliInput, EvalCapsTimesAtTheFileDuration) {
  TempDir tmp;
  const auto ref = tmp / "ref.tsv", est = tmp / "est.tsv", dur = tmp / "durations.tsv";
  std::ofstream(ref) << "a.wav\t0\t1\tDog\n";
  std::ofstream(dur) << "a.wav\t10\n";
  std::ofstream(est) << "a.wav\t0\t1\tDog\na.wav\t2\t500\tDog\n";
  const Ran r = cli("eval --ref " + ref.string() + " --est " + est.string() + " --durations " + dur.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(has(r.output, est.string() + ":2")) << r.output;
  EXPECT_TRUE(has(r.output, "lasts 10 s")) << r.output;
  // Within the duration (and its slack) it is scored.
  std::ofstream(est) << "a.wav\t0\t1\tDog\na.wav\t2\t10.5\tDog\n";
  const Ran ok = cli("eval --ref " + ref.string() + " --est " + est.string() + " --durations " + dur.string());
  EXPECT_EQ(ok.status, 0) << ok.output;
}

TEST(CliInput, TablesAndHeadsAreNotReadFromPipesOrDevices) {
  TempDir tmp;
  const auto fifo = tmp / "events.tsv";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Would block forever on open() if the reader did not look first.
  const std::string msg = earmark::testing::error_of([&] { earmark::eval::read_events_tsv(fifo.string()); });
  EXPECT_TRUE(has(msg, "not a regular file")) << msg;
  EXPECT_TRUE(has(earmark::testing::error_of([] { earmark::eval::read_durations_tsv("/dev/zero"); }),
                  "not a regular file"));
  EXPECT_TRUE(has(earmark::testing::error_of([] { earmark::eval::read_scores_tsv("/dev/urandom"); }),
                  "not a regular file"));
  const auto head = tmp / "head";
  fs::create_directories(head);
  ASSERT_EQ(::mkfifo((head / "head.json").c_str(), 0600), 0);
  EXPECT_TRUE(has(earmark::testing::error_of([&] { earmark::model::Head::load(head.string()); }), "head.json"));
}

TEST(CliInput, SynthSpecNumbersMustBeFinite) {
  TempDir tmp;
  for (const char* line : {"duration_s: .nan", "peak_dbfs: -.inf", "events: {overlap_prob: .nan}",
                           "noise: {color: pink, snr_db: .inf}"}) {
    const auto spec = tmp / "spec.yaml";
    std::ofstream(spec) << line << "\n";
    const Ran r = cli("synth -o " + (tmp / "out").string() + " --spec " + spec.string());
    EXPECT_EQ(r.status, 2) << line << "\n" << r.output;
    EXPECT_TRUE(has(r.output, "NaN") || has(r.output, "infinite")) << line << "\n" << r.output;
  }
}

TEST(CliInput, SynthSpecFromAPipeFailsFast) {
  TempDir tmp;
  const auto fifo = tmp / "spec.yaml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const Ran r = cli("synth -o " + (tmp / "out").string() + " --spec " + fifo.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(has(r.output, "not a regular file")) << r.output;
}

TEST(CliInput, ReportRefusesADeviceAsEventsJson) {
  TempDir tmp;
  fs::create_symlink("/dev/zero", tmp / "events.json");
  const Ran r = cli("report " + tmp.path().string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(has(r.output, "not a regular file")) << r.output;
  EXPECT_LT(r.seconds, 30.0);
}

}  // namespace
