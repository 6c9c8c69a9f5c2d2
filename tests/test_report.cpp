// The run report (HTML + Markdown), its pictures, the detection review and `earmark report`.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "detect/review.hpp"
#include "report/pictures.hpp"
#include "report/report.hpp"
#include "report/text.hpp"
#include "report/writers.hpp"
#include "test_support.hpp"

using namespace earmark;
using earmark::testing::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kOddLabel = "Pots <&> pans";

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + what.size())) ++n;
  return n;
}

Event ev(double on, double off, const std::string& label, float conf) {
  Event e;
  e.onset = on;
  e.offset = off;
  e.label = label;
  e.confidence = conf;
  e.score = conf;
  return e;
}

// A 32 s file: 100 score frames of 0.32 s (100 * 0.32 = 32 s), a 64 x 200 spectrogram of
// 0.16 s columns (200 * 0.16 = 32 s), three events, measured quality and one signal anomaly.
FileResult kitchen() {
  FileResult r;
  r.path = "rec/kitchen.wav";
  r.info = {"wav", "pcm_s16le", 44100, 2, 32.0};
  r.events = {ev(1.0, 4.0, "Speech", 0.8f), ev(3.0, 5.0, "Bark", 0.35f), ev(10.0, 12.0, kOddLabel, 0.9f)};
  auto& s = r.scores;
  s.hop_s = 0.32;
  s.frames = 100;
  s.labels = {"Speech", "Bark", kOddLabel, "Music"};
  s.values.assign(size_t(s.frames) * s.labels.size(), 0.02f);
  for (int f = 0; f < s.frames; ++f) {
    const double t = f * s.hop_s;
    if (t >= 1.0 && t < 4.0) s.values[size_t(f) * 4 + 0] = 0.8f;
    if (t >= 3.0 && t < 5.0) s.values[size_t(f) * 4 + 1] = 0.35f;
    if (t >= 10.0 && t < 12.0) s.values[size_t(f) * 4 + 2] = 0.9f;
  }
  auto& sp = r.spectrogram;
  sp.bins = 64;
  sp.columns = 200;
  sp.seconds_per_column = 0.16;
  sp.values.resize(size_t(sp.bins) * size_t(sp.columns));
  for (int b = 0; b < sp.bins; ++b)
    for (int c = 0; c < sp.columns; ++c)
      sp.values[size_t(b) * size_t(sp.columns) + size_t(c)] = float(-1.0 + 0.5 * std::sin(0.1 * c + 0.05 * b));
  r.quality.measured = true;
  r.quality.peak_dbfs = -0.1;
  r.quality.rms_dbfs = -20.5;
  r.quality.loudness_lufs = -21.0;
  r.quality.noise_floor_dbfs = -60.0;
  r.quality.snr_db = 35.2;
  r.quality.noise_colour = "pink";
  r.quality.conditioning = "off";
  r.anomalies = {Anomaly{"clipping", "warning", 20.0, 20.5, "Clipping: 12 samples <clipped>"}};
  r.warnings = {"skipped 1 corrupt packet"};
  return r;
}

FileResult failed() {
  FileResult r;
  r.path = "rec/broken.wav";
  r.error = "rec/broken.wav: not an audio file; check the file";
  return r;
}

report::RunInfo run_info() {
  report::RunInfo info;
  info.model_name = "mn04_as";
  info.checkpoint_path = "/models/mn04_as.pt";
  info.checkpoint_sha256 = "ab12cd34";
  info.labels_path = "/models/labels.csv";
  info.config_yaml = "events:\n  threshold_on: 0.3\n";
  info.started_at = "2026-01-02T03:04:05Z";
  info.wall_s = 1.5;
  info.inputs = {"rec"};
  info.label_count = 527;
  return info;
}

// The text of the first <table id="...">...</table> with this id.
std::string table(const std::string& html, const std::string& id) {
  const size_t a = html.find("<table id=\"" + id + "\"");
  if (a == std::string::npos) return {};
  const size_t b = html.find("</table>", a);
  return html.substr(a, b - a);
}

// Cell texts of every <tr class="event"> row of a table.
std::vector<std::vector<std::string>> event_rows(const std::string& tbl) {
  std::vector<std::vector<std::string>> rows;
  const std::regex row_re("<tr class=\"event\">(.*?)</tr>");
  const std::regex cell_re("<td[^>]*>(.*?)</td>");
  for (auto it = std::sregex_iterator(tbl.begin(), tbl.end(), row_re); it != std::sregex_iterator(); ++it) {
    const std::string row = (*it)[1];
    std::vector<std::string> cells;
    for (auto c = std::sregex_iterator(row.begin(), row.end(), cell_re); c != std::sregex_iterator(); ++c)
      cells.push_back((*c)[1]);
    rows.push_back(cells);
  }
  return rows;
}

std::vector<std::string> data_uri_pngs(const std::string& html) {
  std::vector<std::string> out;
  const std::string key = "src=\"data:image/png;base64,";
  for (size_t pos = html.find(key); pos != std::string::npos; pos = html.find(key, pos + 1)) {
    const size_t start = pos + key.size();
    const size_t end = html.find('"', start);
    std::string bytes;
    EXPECT_TRUE(report::base64_decode(html.substr(start, end - start), bytes));
    out.push_back(bytes);
  }
  return out;
}

bool is_png(const std::string& bytes) {
  return bytes.size() > 24 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0 && bytes.compare(12, 4, "IHDR") == 0;
}

// IHDR width: the big-endian 32-bit integer right after the "IHDR" chunk type (bytes 16-19).
uint32_t png_width(const std::string& b) {
  return uint32_t(static_cast<unsigned char>(b[16])) << 24 | uint32_t(static_cast<unsigned char>(b[17])) << 16 |
         uint32_t(static_cast<unsigned char>(b[18])) << 8 | uint32_t(static_cast<unsigned char>(b[19]));
}

struct Written {
  TempDir dir;
  std::string html, md;
  Written(const std::vector<FileResult>& results, const report::ReportConfig& cfg = {}) {
    report::write_report(dir.path().string(), results, run_info(), cfg);
    html = slurp(dir / "report.html");
    md = slurp(dir / "report.md");
  }
};

}  // namespace

TEST(Text, EscapesAndBase64) {
  EXPECT_EQ(report::html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(report::html_escape("caf\xe9"), "caf\xef\xbf\xbd");  // a lone Latin-1 byte is not UTF-8
  EXPECT_EQ(report::md_escape("a|b\nc"), "a\\|b c");
  EXPECT_EQ(report::md_escape("'Dog' <b> & \"x\""), "'Dog' &lt;b&gt; &amp; \"x\"");
  // RFC 4648 test vectors.
  EXPECT_EQ(report::base64(""), "");
  EXPECT_EQ(report::base64("f"), "Zg==");
  EXPECT_EQ(report::base64("fo"), "Zm8=");
  EXPECT_EQ(report::base64("foobar"), "Zm9vYmFy");
  std::string back;
  ASSERT_TRUE(report::base64_decode("Zm9vYg==", back));
  EXPECT_EQ(back, "foob");
  EXPECT_FALSE(report::base64_decode("Zm9v!", back));
}

TEST(Report, HtmlHasEverySection) {
  Written w({kitchen(), failed()});
  for (const char* id : {"methodology", "files", "statistics", "anomalies", "file-1", "file-2"})
    EXPECT_NE(w.html.find(std::string("<section id=\"") + id + "\""), std::string::npos) << id;
  EXPECT_NE(w.html.find("href=\"#file-1\""), std::string::npos);  // the index links each file
  EXPECT_NE(w.html.find("href=\"#file-2\""), std::string::npos);
  EXPECT_NE(w.html.find("ab12cd34"), std::string::npos);          // checkpoint sha256
  EXPECT_NE(w.html.find("threshold_on: 0.3"), std::string::npos);  // effective parameters
  EXPECT_NE(w.html.find("527"), std::string::npos);               // label set size
  EXPECT_NE(w.html.find("FFmpeg"), std::string::npos);
  EXPECT_NE(w.html.find(earmark::version()), std::string::npos);
  EXPECT_NE(w.html.find("not an audio file"), std::string::npos);  // the failed file's error
  EXPECT_NE(w.html.find("skipped 1 corrupt packet"), std::string::npos);
  EXPECT_NE(w.html.find("35.2 dB"), std::string::npos);  // SNR from QualityInfo
  EXPECT_NE(w.html.find("pcm_s16le"), std::string::npos);
  EXPECT_EQ(w.html.find("http://"), std::string::npos);  // nothing to fetch
  EXPECT_EQ(w.html.find("https://"), std::string::npos);
  EXPECT_TRUE(fs::exists(w.dir / "run.json"));
}

TEST(Report, EventsTableHasOneRowPerEvent) {
  Written w({kitchen(), failed()});
  EXPECT_EQ(count(w.html, "class=\"event\""), 3u);
  const auto rows = event_rows(table(w.html, "events-1"));
  ASSERT_EQ(rows.size(), 3u);
  // Speech 1.0 to 4.0 s: duration 4.0 - 1.0 = 3.0 s.
  EXPECT_EQ(rows[0], (std::vector<std::string>{"Speech", "1.000", "4.000", "3.000", "0.800"}));
  EXPECT_EQ(rows[2][0], "Pots &lt;&amp;&gt; pans");
  EXPECT_TRUE(event_rows(table(w.html, "events-2")).empty());  // the failed file
  EXPECT_NE(table(w.html, "events-2").find("<th>"), std::string::npos);
}

// One sound, one row: the labels rolled up into an event (events.rollup) are shown with it, and
// the methodology says how names are chosen and credits the ontology.
TEST(Report, RolledUpLabelsAreShownWithTheEvent) {
  FileResult r = kitchen();
  r.events[1].label = "Dog";
  r.events[1].also = {{"Animal", 0.9f}, {"Domestic animals, pets", 0.7f}};
  Written w({r});
  const auto rows = event_rows(table(w.html, "events-1"));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1][0], "Dog (also: Animal, Domestic animals, pets)");
  EXPECT_EQ(rows[0][0], "Speech");
  EXPECT_NE(w.md.find("| Dog (also: Animal, Domestic animals, pets) | 3.000 |"), std::string::npos);
  for (const std::string* doc : {&w.html, &w.md}) {
    EXPECT_NE(doc->find("AudioSet ontology"), std::string::npos);
    EXPECT_NE(doc->find("CC BY-SA 4.0"), std::string::npos);
  }
}

TEST(Report, TextIsEscaped) {
  Written w({kitchen()});
  EXPECT_EQ(w.html.find(kOddLabel), std::string::npos);
  EXPECT_EQ(w.html.find("<clipped>"), std::string::npos);
  EXPECT_NE(w.html.find("Pots &lt;&amp;&gt; pans"), std::string::npos);
  EXPECT_NE(w.html.find("&lt;clipped&gt;"), std::string::npos);
  EXPECT_EQ(w.md.find(kOddLabel), std::string::npos);
  EXPECT_NE(w.md.find("Pots &lt;&amp;&gt; pans"), std::string::npos);
}

TEST(Report, PicturesAreEmbeddedPngs) {
  Written w({kitchen(), failed()});
  const auto pngs = data_uri_pngs(w.html);
  // kitchen: timeline + heat-map; the failed file: a timeline saying so.
  ASSERT_EQ(pngs.size(), 3u);
  for (const auto& p : pngs) {
    ASSERT_TRUE(is_png(p));
    EXPECT_EQ(png_width(p), 1200u);
  }
  EXPECT_EQ(count(w.html, "<img "), 3u);
  // The Markdown's pictures are files beside it.
  EXPECT_NE(w.md.find("](report/file-1-timeline.png)"), std::string::npos);
  EXPECT_NE(w.md.find("](report/file-1-scores.png)"), std::string::npos);
  EXPECT_TRUE(is_png(slurp(w.dir / "report/file-1-timeline.png")));
  EXPECT_TRUE(is_png(slurp(w.dir / "report/file-1-scores.png")));
  EXPECT_FALSE(fs::exists(w.dir / "report/file-2-scores.png"));
}

TEST(Report, MarkdownHasTheTables) {
  Written w({kitchen(), failed()});
  for (const char* h : {"## Methodology", "## Files", "## Overall statistics", "## Anomalies and difficulties",
                        "## 1. kitchen.wav", "## 2. broken.wav", "### Events per class", "### Co-occurrences"})
    EXPECT_NE(w.md.find(h), std::string::npos) << h;
  EXPECT_NE(w.md.find("| Label | Onset (s) | Offset (s) | Duration (s) | Confidence |"), std::string::npos);
  EXPECT_NE(w.md.find("| Speech | 1.000 | 4.000 | 3.000 | 0.800 |"), std::string::npos);
  EXPECT_NE(w.md.find("```yaml\nevents:\n  threshold_on: 0.3\n```"), std::string::npos);
}

TEST(Report, StatisticsAndCooccurrence) {
  Written w({kitchen(), kitchen()});
  // Two copies of the file: Speech 2 events of 3 s = 6.0 s in 2 files.
  EXPECT_NE(table(w.html, "class-stats").find("<td>Speech</td><td class=\"num\">2</td><td class=\"num\">6.0</td>"
                                              "<td class=\"num\">2</td>"),
            std::string::npos);
  // Bark (3-5 s) and Speech (1-4 s) overlap from 3 to 4 s: 1.0 s per file, 2 overlaps, 2.0 s.
  EXPECT_NE(table(w.html, "cooccurrence")
                .find("<td>Bark</td><td>Speech</td><td class=\"num\">2</td><td class=\"num\">2.0</td>"),
            std::string::npos);
  // The Pots event (10-12 s) overlaps nothing.
  EXPECT_EQ(table(w.html, "cooccurrence").find("Pots"), std::string::npos);
}

TEST(Report, AnomaliesListSignalAndDetectionFindings) {
  Written w({kitchen()});
  const std::string tbl = table(w.html, "anomalies-1");
  EXPECT_NE(tbl.find("clipping"), std::string::npos);
  // Bark's confidence 0.35 is below 0.30 + 0.10: review adds a low_confidence finding.
  EXPECT_NE(tbl.find("low_confidence"), std::string::npos);
  // No event from 12 to 32 s is 20 s, under the 30 s limit: no background_only.
  EXPECT_EQ(tbl.find("background_only"), std::string::npos);
  EXPECT_NE(table(w.html, "anomaly-summary").find("clipping (warning)"), std::string::npos);

  report::ReportConfig cfg;
  cfg.run_review = false;
  Written plain({kitchen()}, cfg);
  EXPECT_EQ(table(plain.html, "anomalies-1").find("low_confidence"), std::string::npos);
}

TEST(Report, WithoutScoresOrSpectrogramSaysSo) {
  FileResult r = kitchen();
  r.scores = {};
  r.spectrogram = {};
  Written w({r});
  EXPECT_EQ(data_uri_pngs(w.html).size(), 1u);  // the timeline with events only
  EXPECT_NE(w.html.find("No spectrogram was stored"), std::string::npos);
  EXPECT_NE(w.html.find("No frame scores were stored"), std::string::npos);
}

TEST(Report, PictureLimitKeepsTablesForLaterFiles) {
  report::ReportConfig cfg;
  cfg.max_picture_files = 1;
  Written w({kitchen(), kitchen()}, cfg);
  EXPECT_EQ(data_uri_pngs(w.html).size(), 2u);  // the first file's two pictures
  EXPECT_EQ(event_rows(table(w.html, "events-2")).size(), 3u);
}

TEST(Pictures, EdgeCasesStillDraw) {
  FileResult empty;
  empty.path = "empty.wav";
  const auto p = report::timeline_picture(empty);
  ASSERT_TRUE(is_png(p.png));
  EXPECT_EQ(png_width(p.png), 1200u);
  EXPECT_TRUE(report::score_heatmap(empty).empty());

  // A label that is not UTF-8 must not stop Cairo from drawing; many classes overflow the lanes.
  FileResult r = kitchen();
  r.events.push_back(ev(5, 6, "bad \xff label", 0.5f));
  for (int k = 0; k < 40; ++k) r.events.push_back(ev(k * 0.5, k * 0.5 + 0.3, "class " + std::to_string(k), 0.5f));
  report::PictureConfig cfg;
  cfg.width = 800;
  cfg.max_lanes = 10;
  const auto t = report::timeline_picture(r, cfg);
  ASSERT_TRUE(is_png(t.png));
  EXPECT_EQ(png_width(t.png), 800u);
  const auto h = report::score_heatmap(r, cfg);
  ASSERT_TRUE(is_png(h.png));
  EXPECT_EQ(png_width(h.png), 800u);
  cfg.width = 10;
  EXPECT_THROW(report::timeline_picture(r, cfg), earmark::Error);
}

TEST(Pictures, ColourRampRisesInLightness) {
  // Rec. 601 luma of successive ramp colours increases: the ramp reads correctly in grey.
  double last = -1;
  for (int k = 0; k <= 20; ++k) {
    const auto c = report::colour_ramp(k / 20.0);
    const double luma = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
    EXPECT_GT(luma, last) << k;
    last = luma;
  }
  EXPECT_EQ(report::colour_ramp(NAN), report::colour_ramp(0));
  EXPECT_EQ(report::colour_ramp(7), report::colour_ramp(1));
}

// ---------- detection review ----------

namespace {

FileResult blank(double seconds, std::vector<std::string> labels) {
  FileResult r;
  r.path = "x.wav";
  r.info.duration_s = seconds;
  r.scores.hop_s = 0.32;
  r.scores.frames = int(std::lround(seconds / 0.32));
  r.scores.labels = std::move(labels);
  r.scores.values.assign(size_t(r.scores.frames) * r.scores.labels.size(), 0.05f);
  return r;
}

std::vector<Anomaly> of_kind(const std::vector<Anomaly>& all, const std::string& kind) {
  std::vector<Anomaly> out;
  for (const auto& a : all)
    if (a.kind == kind) out.push_back(a);
  return out;
}

}  // namespace

TEST(Review, LowConfidenceEvents) {
  FileResult r = blank(10, {"A", "B"});
  r.events = {ev(1, 3, "A", 0.39f), ev(4, 6, "B", 0.41f), ev(7, 9, "A", 0.45f)};
  detect::ReviewConfig cfg;
  cfg.per_class_on["A"] = 0.4;  // A: flagged below 0.4 + 0.1 = 0.5, so both A events
  const auto low = of_kind(detect::review_detections(r, cfg), "low_confidence");
  // B at 0.41 is not below 0.30 + 0.10 = 0.40.
  ASSERT_EQ(low.size(), 2u);
  EXPECT_DOUBLE_EQ(low[0].start_s, 1.0);
  EXPECT_DOUBLE_EQ(low[1].start_s, 7.0);
}

TEST(Review, UncertainStretch) {
  FileResult r = blank(20, {"A", "B"});
  // Frames 10..29 (3.2 s to 9.6 s, 20 frames = 6.4 s >= 5 s) have a best score of 0.3.
  for (int f = 10; f < 30; ++f) r.scores.values[size_t(f) * 2 + 1] = 0.3f;
  const auto low = of_kind(detect::review_detections(r), "low_confidence");
  ASSERT_EQ(low.size(), 1u);
  EXPECT_NEAR(low[0].start_s, 3.2, 1e-9);
  EXPECT_NEAR(low[0].end_s, 9.6, 1e-9);
}

TEST(Review, Flicker) {
  FileResult r = blank(40, {"Clapping"});
  // Six 0.5 s events 1 s apart (gaps 0.5 s): 2.0-2.5, 3.0-3.5, ..., 7.0-7.5.
  for (int k = 0; k < 6; ++k) r.events.push_back(ev(2.0 + k, 2.5 + k, "Clapping", 0.9f));
  r.events.push_back(ev(30, 31.5, "Clapping", 0.9f));  // long: not part of the flicker
  auto fl = of_kind(detect::review_detections(r), "flicker");
  ASSERT_EQ(fl.size(), 1u);
  EXPECT_DOUBLE_EQ(fl[0].start_s, 2.0);
  EXPECT_DOUBLE_EQ(fl[0].end_s, 7.5);
  r.events.erase(r.events.begin());  // five left: still at the default minimum of 5
  EXPECT_EQ(of_kind(detect::review_detections(r), "flicker").size(), 1u);
  r.events.erase(r.events.begin());  // four: no longer flicker
  EXPECT_TRUE(of_kind(detect::review_detections(r), "flicker").empty());
}

TEST(Review, OverlapAndBackground) {
  FileResult r = blank(100, {"A", "B"});
  // A 0-10 and B 8-12 share 8-10 (2 s >= 0.5 s); then nothing from 12 to 100 s (88 s >= 30 s).
  r.events = {ev(0, 10, "A", 0.9f), ev(8, 12, "B", 0.9f)};
  const auto all = detect::review_detections(r);
  const auto ov = of_kind(all, "overlap");
  ASSERT_EQ(ov.size(), 1u);
  EXPECT_DOUBLE_EQ(ov[0].start_s, 8.0);
  EXPECT_DOUBLE_EQ(ov[0].end_s, 10.0);
  const auto bg = of_kind(all, "background_only");
  ASSERT_EQ(bg.size(), 1u);
  EXPECT_DOUBLE_EQ(bg[0].start_s, 12.0);
  EXPECT_DOUBLE_EQ(bg[0].end_s, 100.0);
  for (size_t k = 1; k < all.size(); ++k) EXPECT_LE(all[k - 1].start_s, all[k].start_s);
}

TEST(Review, UnknownSound) {
  FileResult r = blank(32, {"A"});
  auto& sp = r.spectrogram;
  sp.bins = 8;
  sp.columns = 100;
  sp.seconds_per_column = 0.32;
  sp.values.assign(size_t(sp.bins) * size_t(sp.columns), -1.0f);
  // Columns 50..59 (16.0 to 19.2 s) are 1.0 unit louder: 1.0 * 50 / ln(10) = 21.7 dB >= 10 dB.
  for (int b = 0; b < sp.bins; ++b)
    for (int c = 50; c < 60; ++c) sp.values[size_t(b) * 100 + size_t(c)] = 0.0f;
  auto un = of_kind(detect::review_detections(r), "unknown_sound");
  ASSERT_EQ(un.size(), 1u);
  EXPECT_NEAR(un[0].start_s, 16.0, 1e-9);
  EXPECT_NEAR(un[0].end_s, 19.2, 1e-9);
  // A class that scores 0.5 there explains the sound.
  for (int f = 50; f < 60; ++f) r.scores.values[size_t(f)] = 0.5f;
  EXPECT_TRUE(of_kind(detect::review_detections(r), "unknown_sound").empty());
}

TEST(Review, FailedFileAndBadConfig) {
  EXPECT_TRUE(detect::review_detections(failed()).empty());
  detect::ReviewConfig cfg;
  cfg.uncertain_low = 0.5;
  cfg.uncertain_high = 0.4;
  EXPECT_THROW(detect::review_detections(kitchen(), cfg), earmark::Error);
  EXPECT_EQ(detect::ReviewConfig::from(EventsConfig{}).threshold_on, 0.30);
}

// ---------- JSON round trip and the CLI ----------

TEST(ReportJson, NewFieldsRoundTrip) {
  const FileResult r = kitchen();
  std::stringstream ss;
  report::write_json(ss, {r}, true);
  const auto back = report::read_json(ss);
  ASSERT_EQ(back.size(), 1u);
  const auto& b = back[0];
  EXPECT_TRUE(b.quality.measured);
  EXPECT_DOUBLE_EQ(b.quality.snr_db, 35.2);
  EXPECT_EQ(b.quality.noise_colour, "pink");
  ASSERT_EQ(b.anomalies.size(), 1u);
  EXPECT_EQ(b.anomalies[0].kind, "clipping");
  EXPECT_EQ(b.anomalies[0].message, r.anomalies[0].message);
  EXPECT_EQ(b.warnings, r.warnings);
  ASSERT_EQ(b.spectrogram.bins, 64);
  ASSERT_EQ(b.spectrogram.columns, 200);
  EXPECT_DOUBLE_EQ(b.spectrogram.seconds_per_column, 0.16);
  // 8-bit quantisation over the range [-1.5, -0.5] at most: error <= 1.0 / 255 / 2 (+ float slack).
  for (size_t k = 0; k < r.spectrogram.values.size(); ++k)
    ASSERT_NEAR(b.spectrogram.values[k], r.spectrogram.values[k], 1.0 / 510 + 1e-5) << k;

  std::stringstream lean;
  report::write_json(lean, {r}, false);
  EXPECT_EQ(lean.str().find("\"spectrogram\""), std::string::npos);  // only with frame scores
}

TEST(ReportCli, RegeneratesFromARunFolder) {
  TempDir run, out;
  OutputConfig oc;
  oc.frame_scores = true;
  report::write_outputs(run.path().string(), {kitchen(), failed()}, oc);
  report::write_run_info((run / "run.json").string(), run_info());
  const std::string cmd = "\"" + earmark::testing::cli_path().string() + "\" report \"" + run.path().string() +
                          "\" -o \"" + out.path().string() + "\" > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::string html = slurp(out / "report.html");
  EXPECT_EQ(event_rows(table(html, "events-1")).size(), 3u);
  EXPECT_EQ(data_uri_pngs(html).size(), 3u);  // spectrogram + scores came back from the JSON
  EXPECT_EQ(html.find("No spectrogram was stored"), std::string::npos);
  EXPECT_NE(html.find("ab12cd34"), std::string::npos);  // from run.json

  const std::string missing = "\"" + earmark::testing::cli_path().string() + "\" report \"" +
                              (out.path() / "nope").string() + "\" 2> /dev/null";
  EXPECT_NE(std::system(missing.c_str()), 0);
}

// ---------- a real browser ----------

namespace {

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser"}) {
    const std::string cmd = std::string("command -v ") + name + " > /dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return name;
  }
  return {};
}

}  // namespace

TEST(ReportBrowser, HeadlessChromiumRendersIt) {
  const std::string chromium = find_chromium();
  EARMARK_REQUIRE_TOOL(!chromium.empty(), "chromium");
  Written w({kitchen(), failed()});
  TempDir profile;
  const std::string flags = " --headless --no-sandbox --disable-gpu --disable-background-networking "
                            "--disable-component-update --disable-sync --no-first-run --user-data-dir=\"" +
                            profile.path().string() + "\" ";
  const std::string url = "file://" + fs::absolute(w.dir / "report.html").string();
  const fs::path dom_file = w.dir / "dom.html";
  const std::string dump = "timeout 60 " + chromium + flags + "--dump-dom \"" + url + "\" > \"" +
                           dom_file.string() + "\" 2> /dev/null";
  ASSERT_EQ(std::system(dump.c_str()), 0) << dump;
  const std::string dom = slurp(dom_file);
  EXPECT_EQ(event_rows(table(dom, "events-1")).size(), 3u);
  // (No std::regex here: libstdc++'s recursive matcher overflows the stack on long data: URIs.)
  size_t imgs = 0;
  for (size_t pos = dom.find("<img"); pos != std::string::npos; pos = dom.find("<img", pos + 1)) {
    ++imgs;
    const std::string tag = dom.substr(pos, dom.find('>', pos) - pos);
    EXPECT_NE(tag.find("src=\"data:image/png;base64,"), std::string::npos) << tag.substr(0, 80);
  }
  EXPECT_EQ(imgs, 3u);

  const fs::path shot = w.dir / "shot.png";
  const std::string screenshot = "timeout 60 " + chromium + flags + "--screenshot=\"" + shot.string() +
                                 "\" --window-size=1280,2000 \"" + url + "\" > /dev/null 2>&1";
  ASSERT_EQ(std::system(screenshot.c_str()), 0) << screenshot;
  const std::string png = slurp(shot);
  ASSERT_TRUE(is_png(png));
  EXPECT_EQ(png_width(png), 1280u);
}
