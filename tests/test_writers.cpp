// report: exact text of CSV/Audacity/TSV output, JSON round trips, output folder layout.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <locale>
#include <set>
#include <sstream>

#include "report/report.hpp"
#include "report/writers.hpp"
#include "test_support.hpp"

using earmark::Event;
using earmark::FileResult;
using earmark::OutputConfig;
namespace report = earmark::report;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

Event event(double onset, double offset, const std::string& label, float confidence) {
  Event e;
  e.onset = onset;
  e.offset = offset;
  e.label = label;
  e.confidence = confidence;
  return e;
}

FileResult ok_file(const std::string& path, std::vector<Event> events) {
  FileResult r;
  r.path = path;
  r.info.container = "wav";
  r.info.codec = "pcm_s16le";
  r.info.source_rate = 44100;
  r.info.source_channels = 2;
  r.info.duration_s = 12.5;
  r.events = std::move(events);
  return r;
}

FileResult failed_file(const std::string& path) {
  FileResult r;
  r.path = path;
  r.error = path + ": not an audio file; check the file";
  return r;
}

// Two good files (one with a quote in its name) around a failed one.
std::vector<FileResult> sample_run() {
  return {ok_file("rec/a.wav", {event(0.0, 1.25, "Speech", 0.8126f),
                                event(3 * 0.32, 2.5, "Male speech, man speaking", 0.5f)}),
          failed_file("rec/b.wav"),
          ok_file("rec/odd \"name\".wav", {event(3 * 0.32, 10.0 / 3.0, "Say \"hi\"", 0.9999f)})};
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> names_of(const std::vector<std::string>& paths) {
  std::vector<std::string> v;
  for (const auto& p : paths) v.push_back(fs::path(p).filename().string());
  return v;
}

// A locale that writes 1234.5 as "1.234,5", as de_DE does, without needing it installed.
struct CommaDecimal : std::numpunct<char> {
  char do_decimal_point() const override { return ','; }
  char do_thousands_sep() const override { return '.'; }
  std::string do_grouping() const override { return "\3"; }
};

}  // namespace

TEST(Csv, ExactTextWithQuotingAndMillisecondPrecision) {
  std::ostringstream os;
  report::write_csv(os, sample_run());
  // 3 * 0.32 = 0.9600000000000001 -> 0.960; 10/3 -> 3.333; 0.8126f -> 0.813; 0.9999f -> 1.000.
  // The failed rec/b.wav has no rows.
  EXPECT_EQ(os.str(),
            "file,onset,offset,label,confidence,kind\n"
            "rec/a.wav,0.000,1.250,Speech,0.813,event\n"
            "rec/a.wav,0.960,2.500,\"Male speech, man speaking\",0.500,event\n"
            "\"rec/odd \"\"name\"\".wav\",0.960,3.333,\"Say \"\"hi\"\"\",1.000,event\n");
}

TEST(Csv, EmptyRunIsJustTheHeader) {
  std::ostringstream os;
  report::write_csv(os, {});
  EXPECT_EQ(os.str(), "file,onset,offset,label,confidence,kind\n");
}

TEST(Csv, DecimalPointIgnoresTheLocale) {
  const std::locale comma(std::locale::classic(), new CommaDecimal);
  const std::locale before = std::locale::global(comma);
  std::ostringstream os;
  os.imbue(comma);
  report::write_csv(os, {ok_file("x.wav", {event(1234.5, 1300.25, "Music", 0.25f)})});
  std::ostringstream tsv;
  tsv.imbue(comma);
  report::write_dcase_tsv(tsv, {ok_file("x.wav", {event(1234.5, 1300.25, "Music", 0.25f)})});
  std::locale::global(before);
  EXPECT_EQ(os.str(), "file,onset,offset,label,confidence,kind\nx.wav,1234.500,1300.250,Music,0.250,event\n");
  EXPECT_EQ(tsv.str(), "filename\tonset\toffset\tevent_label\tkind\nx.wav\t1234.500\t1300.250\tMusic\tevent\n");
}

TEST(Audacity, ExactText) {
  std::ostringstream os;
  report::write_audacity(os, sample_run()[0]);
  EXPECT_EQ(os.str(), "0.000\t1.250\tSpeech\n0.960\t2.500\tMale speech, man speaking\n");

  std::ostringstream tabbed;  // a tab in a label would make a fourth column
  report::write_audacity(tabbed, ok_file("x.wav", {event(0.5, 1, "a\tb\nc", 1.0f)}));
  EXPECT_EQ(tabbed.str(), "0.500\t1.000\ta b c\n");

  std::ostringstream failed;
  report::write_audacity(failed, failed_file("x.wav"));
  EXPECT_EQ(failed.str(), "");
}

TEST(DcaseTsv, ExactTextWithBaseNames) {
  std::ostringstream os;
  report::write_dcase_tsv(os, sample_run());
  EXPECT_EQ(os.str(),
            "filename\tonset\toffset\tevent_label\tkind\n"
            "a.wav\t0.000\t1.250\tSpeech\tevent\n"
            "a.wav\t0.960\t2.500\tMale speech, man speaking\tevent\n"
            "odd \"name\".wav\t0.960\t3.333\tSay \"hi\"\tevent\n");
}

TEST(Kinds, BackgroundSegmentsAreMarkedInEveryFormat) {
  Event bg = event(0, 60, "Rain", 0.7f);
  bg.kind = earmark::EventKind::background;
  bg.score = 0.7f;
  const auto run = std::vector<FileResult>{ok_file("r.wav", {bg, event(3, 4, "Dog", 0.9f)})};
  std::ostringstream csv, tsv, aud, js;
  report::write_csv(csv, run);
  report::write_dcase_tsv(tsv, run);
  report::write_audacity(aud, run[0]);
  report::write_json(js, run, false);
  EXPECT_NE(csv.str().find("r.wav,0.000,60.000,Rain,0.700,background\n"), std::string::npos) << csv.str();
  EXPECT_NE(csv.str().find("r.wav,3.000,4.000,Dog,0.900,event\n"), std::string::npos) << csv.str();
  EXPECT_NE(tsv.str().find("r.wav\t0.000\t60.000\tRain\tbackground\n"), std::string::npos) << tsv.str();
  EXPECT_NE(aud.str().find("0.000\t60.000\tRain (background)\n"), std::string::npos) << aud.str();
  const json j = json::parse(js.str());
  EXPECT_EQ(j["files"][0]["events"][0]["kind"], "background");
  EXPECT_EQ(j["files"][0]["events"][1]["kind"], "event");
  // ... and the JSON reads back with its kinds.
  std::istringstream in(js.str());
  const auto back = report::read_json(in, "round trip");
  ASSERT_EQ(back.size(), 1u);
  ASSERT_EQ(back[0].events.size(), 2u);
  EXPECT_EQ(back[0].events[0].kind, earmark::EventKind::background);
  EXPECT_EQ(back[0].events[1].kind, earmark::EventKind::event);
  EXPECT_FLOAT_EQ(back[0].events[0].score, 0.7f);
}

TEST(Json, ParsesBackWithTheSameValues) {
  const auto run = sample_run();
  std::ostringstream os;
  report::write_json(os, run, false);
  const json j = json::parse(os.str());
  EXPECT_EQ(j.at("earmark_version"), earmark::version());
  ASSERT_EQ(j.at("files").size(), 3u);

  const json& a = j["files"][0];
  EXPECT_EQ(a.at("path"), "rec/a.wav");
  EXPECT_EQ(a.at("ok"), true);
  EXPECT_TRUE(a.at("error").is_null());
  EXPECT_EQ(a.at("info").at("container"), "wav");
  EXPECT_EQ(a.at("info").at("codec"), "pcm_s16le");
  EXPECT_EQ(a.at("info").at("source_rate"), 44100);
  EXPECT_EQ(a.at("info").at("source_channels"), 2);
  EXPECT_DOUBLE_EQ(a.at("info").at("duration_s").get<double>(), 12.5);
  EXPECT_FALSE(a.contains("frame_scores"));
  ASSERT_EQ(a.at("events").size(), 2u);
  const json& e1 = a["events"][1];
  EXPECT_EQ(e1.at("label"), "Male speech, man speaking");
  EXPECT_EQ(e1.at("onset").get<double>(), 0.96);  // rounded to ms: no 0.9600000000000001
  EXPECT_EQ(e1.at("offset").get<double>(), 2.5);
  EXPECT_EQ(a["events"][0].at("confidence").get<float>(), 0.8126f);  // the exact float
  EXPECT_NE(os.str().find("0.8126"), std::string::npos);             // written as its short form
  EXPECT_EQ(os.str().find("0.812600016"), std::string::npos);
  EXPECT_LT(os.str().find("\"path\""), os.str().find("\"events\""));  // reading order, not sorted

  const json& b = j["files"][1];
  EXPECT_EQ(b.at("ok"), false);
  EXPECT_EQ(b.at("error"), "rec/b.wav: not an audio file; check the file");
  EXPECT_TRUE(b.at("events").empty());

  EXPECT_EQ(j["files"][2]["events"][0].at("label"), "Say \"hi\"");
  EXPECT_EQ(j["files"][2]["events"][0].at("offset").get<double>(), 3.333);
}

TEST(Json, FrameScoresWhenAsked) {
  auto run = sample_run();
  auto& s = run[0].scores;
  s.hop_s = 0.32;
  s.frames = 2;
  s.labels = {"Speech", "Male speech, man speaking"};
  s.values = {0.1f, 0.2f, 0.7f, std::numeric_limits<float>::quiet_NaN()};
  std::ostringstream os;
  report::write_json(os, run, true);
  const json j = json::parse(os.str());
  const json& fs_json = j["files"][0].at("frame_scores");
  EXPECT_DOUBLE_EQ(fs_json.at("hop_s").get<double>(), 0.32);
  EXPECT_EQ(fs_json.at("labels"), json(s.labels));
  ASSERT_EQ(fs_json.at("values").size(), 2u);  // one row per frame
  EXPECT_EQ(fs_json["values"][0][0].get<float>(), 0.1f);
  EXPECT_EQ(fs_json["values"][0][1].get<float>(), 0.2f);
  EXPECT_EQ(fs_json["values"][1][0].get<float>(), 0.7f);
  EXPECT_TRUE(fs_json["values"][1][1].is_null());  // NaN is not JSON
  EXPECT_FALSE(j["files"][1].contains("frame_scores"));  // the failed file
  EXPECT_TRUE(j["files"][2].at("frame_scores").at("values").empty());
}

TEST(Json, ReadJsonRoundTrip) {
  auto run = sample_run();
  run[0].scores.frames = 1;
  run[0].scores.labels = {"Speech", "Music"};
  run[0].scores.values = {0.25f, 0.8126f};
  std::stringstream ss;
  report::write_json(ss, run, true);
  const auto back = report::read_json(ss, "run.json");
  ASSERT_EQ(back.size(), run.size());
  for (size_t i = 0; i < run.size(); ++i) {
    EXPECT_EQ(back[i].path, run[i].path);
    EXPECT_EQ(back[i].error, run[i].error);
    EXPECT_EQ(back[i].info.codec, run[i].info.codec);
    EXPECT_EQ(back[i].info.source_rate, run[i].info.source_rate);
    ASSERT_EQ(back[i].events.size(), run[i].events.size());
    for (size_t k = 0; k < run[i].events.size(); ++k) {
      EXPECT_NEAR(back[i].events[k].onset, run[i].events[k].onset, 0.0005);  // ms rounding
      EXPECT_NEAR(back[i].events[k].offset, run[i].events[k].offset, 0.0005);
      EXPECT_EQ(back[i].events[k].label, run[i].events[k].label);
      EXPECT_EQ(back[i].events[k].confidence, run[i].events[k].confidence);
    }
  }
  EXPECT_EQ(back[0].scores.frames, 1);
  EXPECT_EQ(back[0].scores.labels, run[0].scores.labels);
  EXPECT_EQ(back[0].scores.values, run[0].scores.values);

  std::istringstream bad("{\"files\": 3}");
  try {
    report::read_json(bad, "run.json");
    FAIL() << "expected an error";
  } catch (const earmark::Error& e) {
    EXPECT_NE(std::string(e.what()).find("run.json"), std::string::npos) << e.what();
  }
  std::istringstream not_json("file,onset\n");
  EXPECT_THROW(report::read_json(not_json, "x"), earmark::Error);
}

// The labels rolled up into an event (events.rollup) are written as "also" and read back; an
// event without any has an empty list, and the text formats keep their columns.
TEST(Json, AlsoRoundTrip) {
  auto run = sample_run();
  run[0].events[0].also = {{"Animal", 0.9f}, {"Domestic animals, pets", 0.7f}};
  std::stringstream ss;
  report::write_json(ss, run, false);
  const json j = json::parse(ss.str());
  const json& also = j["files"][0]["events"][0].at("also");
  ASSERT_EQ(also.size(), 2u);
  EXPECT_EQ(also[0].at("label"), "Animal");
  EXPECT_EQ(also[0].at("confidence").get<float>(), 0.9f);
  EXPECT_EQ(also[1].at("label"), "Domestic animals, pets");
  EXPECT_TRUE(j["files"][0]["events"][1].at("also").empty());
  const auto back = report::read_json(ss, "run.json");
  ASSERT_EQ(back[0].events[0].also.size(), 2u);
  EXPECT_EQ(back[0].events[0].also[1].label, "Domestic animals, pets");
  EXPECT_EQ(back[0].events[0].also[1].confidence, 0.7f);
  EXPECT_TRUE(back[0].events[1].also.empty());
  std::ostringstream csv;
  report::write_csv(csv, run);
  EXPECT_EQ(csv.str().find("Animal"), std::string::npos);
  EXPECT_EQ(csv.str().substr(0, csv.str().find('\n')), "file,onset,offset,label,confidence,kind");
}

TEST(Json, InvalidUtf8PathDoesNotThrow) {
  std::ostringstream os;
  EXPECT_NO_THROW(report::write_json(os, {ok_file("caf\xe9.wav", {})}, false));
  EXPECT_TRUE(json::accept(os.str()));
  EXPECT_NE(os.str().find("caf\xef\xbf\xbd.wav"), std::string::npos);  // U+FFFD replaces the bad byte
}

TEST(WriteOutputs, LayoutWithStemCollisionsAndFailedFiles) {
  earmark::testing::TempDir tmp;
  const std::vector<FileResult> run = {
      ok_file("a/x.wav", {event(0, 1, "Speech", 0.9f)}),  ok_file("b/x.flac", {event(0, 1, "Music", 0.9f)}),
      ok_file("c/X.ogg", {event(0, 1, "Dog", 0.9f)}),      ok_file("d/events.wav", {event(0, 1, "Cat", 0.9f)}),
      failed_file("e/bad.wav")};
  const auto out = tmp / "nested" / "run";
  const auto written = report::write_outputs(out.string(), run, OutputConfig{});
  EXPECT_EQ(names_of(written), (std::vector<std::string>{
                                   "events.csv", "events.json", "events.tsv",              //
                                   "x.labels.txt", "x.csv", "x.json",                      //
                                   "x-2.labels.txt", "x-2.csv", "x-2.json",                //
                                   "X-3.labels.txt", "X-3.csv", "X-3.json",                //
                                   "events-2.labels.txt", "events-2.csv", "events-2.json",  //
                                   "bad.json"}));
  for (const auto& p : written) EXPECT_TRUE(fs::is_regular_file(p)) << p;
  EXPECT_EQ(fs::path(written[0]).parent_path(), out);

  EXPECT_EQ(slurp(out / "x.labels.txt"), "0.000\t1.000\tSpeech\n");
  EXPECT_EQ(slurp(out / "x-2.labels.txt"), "0.000\t1.000\tMusic\n");
  EXPECT_EQ(slurp(out / "X-3.labels.txt"), "0.000\t1.000\tDog\n");
  EXPECT_EQ(slurp(out / "events-2.csv"), "file,onset,offset,label,confidence,kind\nd/events.wav,0.000,1.000,Cat,0.900,event\n");
  EXPECT_EQ(json::parse(slurp(out / "bad.json"))["files"][0].at("error"), run[4].error);
  EXPECT_EQ(slurp(out / "events.csv").find("bad.wav"), std::string::npos);
  EXPECT_EQ(json::parse(slurp(out / "events.json"))["files"].size(), 5u);

  // Same input, same names.
  earmark::testing::TempDir again;
  EXPECT_EQ(names_of(report::write_outputs(again.path().string(), run, OutputConfig{})), names_of(written));
}

TEST(WriteOutputs, FormatsAndPerFileChooseTheFiles) {
  earmark::testing::TempDir tmp;
  OutputConfig cfg;
  cfg.formats = {"audacity", "tsv"};
  cfg.per_file = false;
  const auto written = report::write_outputs(tmp.path().string(), sample_run(), cfg);
  // Audacity labels are per file by nature; the failed file has none; "odd "name"" keeps its quotes
  // out of the file name.
  EXPECT_EQ(names_of(written), (std::vector<std::string>{"events.tsv", "a.labels.txt", "odd _name_.labels.txt"}));
}

TEST(WriteOutputs, EmptyRunWritesHeadersOnly) {
  earmark::testing::TempDir tmp;
  const auto written = report::write_outputs(tmp.path().string(), {}, OutputConfig{});
  EXPECT_EQ(names_of(written), (std::vector<std::string>{"events.csv", "events.json", "events.tsv"}));
  EXPECT_EQ(slurp(tmp / "events.csv"), "file,onset,offset,label,confidence,kind\n");
  EXPECT_EQ(slurp(tmp / "events.tsv"), "filename\tonset\toffset\tevent_label\tkind\n");
  EXPECT_TRUE(json::parse(slurp(tmp / "events.json")).at("files").empty());
}

TEST(WriteOutputs, UnwritableTargetsNameThePath) {
  earmark::testing::TempDir tmp;
  // A folder below a regular file cannot be created, even by root.
  std::ofstream(tmp / "plain.txt") << "x";
  const std::string blocked = (tmp / "plain.txt" / "out").string();
  try {
    report::write_outputs(blocked, sample_run(), OutputConfig{});
    FAIL() << "expected an error";
  } catch (const earmark::Error& e) {
    EXPECT_NE(std::string(e.what()).find(blocked), std::string::npos) << e.what();
  }
  // A folder where events.csv should go cannot be opened as a file.
  fs::create_directories(tmp / "out" / "events.csv");
  try {
    report::write_outputs((tmp / "out").string(), sample_run(), OutputConfig{});
    FAIL() << "expected an error";
  } catch (const earmark::Error& e) {
    EXPECT_NE(std::string(e.what()).find("events.csv"), std::string::npos) << e.what();
  }
  OutputConfig xml;
  xml.formats = {"xml"};
  EXPECT_THROW(report::write_outputs(tmp.path().string(), {}, xml), earmark::Error);
}

// issue 14 item 9: an input named run.wav lost its per-file JSON to the run's run.json.
// Per-file outputs never collide with run-wide files, whatever the inputs are called; two
// inputs with one name in different folders keep one output each too.
TEST(WriteOutputs, PerFileOutputsNeverOverwriteRunWideFiles) {
  earmark::testing::TempDir tmp;
  const std::vector<FileResult> run = {
      ok_file("a/run.wav", {event(0, 1, "Speech", 0.9f)}), ok_file("b/run.flac", {event(0, 1, "Music", 0.9f)}),
      ok_file("c/RUN.ogg", {event(0, 1, "Dog", 0.9f)}),    ok_file("d/events.wav", {event(0, 1, "Cat", 0.9f)}),
      ok_file("e/report.wav", {event(0, 1, "Cow", 0.9f)}), ok_file("f/Events.mp3", {event(0, 1, "Owl", 0.9f)}),
      ok_file("g/events.json.wav", {event(0, 1, "Bee", 0.9f)})};
  const auto out = tmp / "out";
  const auto written = report::write_outputs(out.string(), run, OutputConfig{});
  earmark::report::RunInfo info;
  info.model_name = "mn04_as";
  for (const auto& r : run) info.inputs.push_back(r.path);
  const auto report_files = report::write_report(out.string(), run, info);

  // Every per-file JSON still holds its own file after the report was written.
  std::set<std::string> seen;
  for (const auto& p : written) {
    const std::string name = fs::path(p).filename().string();
    if (name == "events.json" || fs::path(p).extension() != ".json") continue;
    std::ifstream f(p, std::ios::binary);
    std::vector<FileResult> back;
    ASSERT_NO_THROW(back = report::read_json(f, p)) << p << " was overwritten";
    ASSERT_EQ(back.size(), 1u) << p;
    EXPECT_TRUE(seen.insert(back[0].path).second) << back[0].path << " written twice";
  }
  EXPECT_EQ(seen.size(), run.size());
  EXPECT_NO_THROW(report::read_run_info((out / "run.json").string()));

  // The run-wide list covers everything a run writes besides per-file outputs.
  for (const auto& entry : fs::directory_iterator(out)) {
    const std::string name = entry.path().filename().string();
    bool per_file = false;
    for (const auto& s : report::kPerFileSuffixes)
      per_file = per_file || (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0);
    const bool run_wide =
        std::find(report::kRunWideFiles.begin(), report::kRunWideFiles.end(), name) != report::kRunWideFiles.end();
    EXPECT_TRUE(per_file || run_wide) << name << " is neither a per-file output nor in kRunWideFiles";
  }
}

// Found by fuzz/fuzz_report: a float where events.json has an integer (1e21 spectrogram bins,
// sample rate) was converted to int with undefined behaviour; now it is an error naming it.
TEST(Json, ReadJsonRefusesNonIntegerCounts) {
  for (const char* text :
       {R"({"files": [{"path": "a.wav", "info": {"source_rate": 1e21}}]})",
        R"({"files": [{"path": "a.wav", "spectrogram": {"bins": 1e21, "columns": 1, "min": 0, "max": 1,
            "seconds_per_column": 0.1, "encoding": "u8_base64", "data": "AA=="}}]})",
        R"({"files": [{"path": "a.wav", "quality": {"clipped_samples": -3}}]})",
        R"({"files": [{"path": "a.wav", "info": {"source_channels": 2.5}}]})"}) {
    std::istringstream in(text);
    const std::string msg = earmark::testing::error_of([&] { report::read_json(in, "e.json"); });
    EXPECT_NE(msg.find("e.json: a.wav"), std::string::npos) << text << ": " << msg;
  }
}
