// report: the human-readable report of a detection run (HTML and Markdown).
#include "report/report.hpp"

#include <cairo.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

extern "C" {
#include <libavutil/avutil.h>
}

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "report/text.hpp"
#include "util/file.hpp"

namespace earmark::report {

namespace fs = std::filesystem;

namespace {

const std::set<std::string> kDetectionKinds = {"low_confidence", "flicker", "overlap", "background_only",
                                               "unknown_sound"};

// ---------- the run's content, gathered file by file ----------

// What the run-wide parts of the report (index, statistics, anomalies summary) need of a file:
// a few hundred bytes, whatever the file's length.
struct FileRow {
  size_t n = 0;  // 1-based
  std::string name, duration, format, level, snr, error;
  size_t events = 0, anomalies = 0;
  std::vector<std::string> warnings;
};

struct ClassStats {
  size_t events = 0, files = 0, last_file = 0;
  double total_s = 0;
  double max_conf = 0, sum_conf = 0;
};

struct PairStats {
  size_t count = 0, files = 0, last_file = 0;
  double total_s = 0;
};

struct AnomalyStats {
  size_t count = 0, files = 0, last_file = 0;
};

struct Content {
  std::vector<FileRow> files;
  std::map<std::string, ClassStats> classes;
  std::map<std::pair<std::string, std::string>, PairStats> pair_map;
  std::vector<std::pair<std::pair<std::string, std::string>, PairStats>> pairs;  // by total overlap, descending
  size_t pair_total = 0;
  std::map<std::string, AnomalyStats> anomalies;  // "kind (severity)"
  size_t events = 0, failed = 0;
  double audio_s = 0;
  size_t label_count = 0;
  size_t without_spectrogram = 0, without_scores = 0;
};

std::string display_name(const FileResult& r) {
  std::string n = fs::path(r.path).filename().string();
  return n.empty() ? r.path : n;
}

bool has_scores(const FileResult& r) {
  const auto& s = r.scores;
  return s.frames > 0 && !s.labels.empty() && s.values.size() >= size_t(s.frames) * s.labels.size();
}
bool has_spectrogram(const FileResult& r) {
  const auto& s = r.spectrogram;
  return s.bins > 0 && s.columns > 0 && s.values.size() >= size_t(s.bins) * size_t(s.columns);
}

// ---------- formatting helpers ----------

std::string secs(double v) { return std::isfinite(v) ? fmt::format("{:.3f}", v) : "n/a"; }
std::string secs1(double v) { return std::isfinite(v) ? fmt::format("{:.1f}", v) : "n/a"; }
std::string conf(float v) { return std::isfinite(v) ? fmt::format("{:.3f}", v) : "n/a"; }

std::string db(double v, const char* unit) {
  // condition::kUnmeasurableDb (-150) marks a level that could not be measured.
  if (!std::isfinite(v) || v <= -149.0) return "n/a";
  return fmt::format("{:.1f} {}", v, unit);
}

std::string duration_text(double s) {
  if (!std::isfinite(s)) return "n/a";
  if (s < 60) return fmt::format("{:.1f} s", s);
  const long total = std::lround(s);
  if (total < 3600) return fmt::format("{}:{:02d} min", total / 60, int(total % 60));
  return fmt::format("{}:{:02d}:{:02d} h", total / 3600, int(total / 60 % 60), int(total % 60));
}

std::string format_text(const FileResult& r) {
  const auto& i = r.info;
  std::vector<std::string> parts;
  if (!i.container.empty()) parts.push_back(i.container);
  if (!i.codec.empty()) parts.push_back(i.codec);
  if (i.source_rate > 0) parts.push_back(fmt::format("{} Hz", i.source_rate));
  if (i.source_channels > 0) parts.push_back(fmt::format("{} ch", i.source_channels));
  if (parts.empty()) return "n/a";
  std::string s = parts[0];
  for (size_t k = 1; k < parts.size(); ++k) s += ", " + parts[k];
  return s;
}

std::string level_text(const QualityInfo& q) {
  if (!q.measured) return "not measured";
  return fmt::format("peak {}, RMS {}, loudness {}", db(q.peak_dbfs, "dBFS"), db(q.rms_dbfs, "dBFS"),
                     db(q.loudness_lufs, "LUFS"));
}

std::string snr_text(const QualityInfo& q) {
  if (!q.measured) return "n/a";
  return fmt::format("{:.1f} dB", q.snr_db);
}

std::string ffmpeg_version() {
  const char* v = av_version_info();
  return v ? v : "unknown";
}

std::string earmark_version(const RunInfo& info) { return info.version.empty() ? version() : info.version; }

std::string picture_file(size_t n, const char* what) { return fmt::format("report/file-{}-{}.png", n, what); }

constexpr const char* kPipeline[][2] = {
    {"decode", "FFmpeg decodes the file, downmixes to mono and resamples to 32 kHz"},
    {"condition", "signal quality is measured; optional DC removal, high-pass, denoising and level normalisation"},
    {"features", "128-band log-mel spectrogram, 10 ms hop, as the network was trained on"},
    {"model",
     "EfficientAT MobileNetV3 (AudioSet-pretrained, LibTorch) scores every class on short chunks, in two passes "
     "shifted by half a column (one network run: the layers before its last time stride serve both), giving a "
     "score every 0.16 s"},
    {"detect",
     "per-class median filtering, hysteresis thresholds, gap merging and minimum duration turn scores into events; "
     "each event's onset and offset are then placed at 10 ms where its sound rises out of and sinks back into the "
     "background, in the frequency bands where that sound stands out (pauses split it, a sound that goes on "
     "extends it)"},
    {"backgrounds",
     "a class that is on for most of a long stretch (events.background_coverage of at least "
     "events.background_min_s, gaps under events.background_bridge_s bridged) is a steady sound: noise, hum, rain, "
     "an engine, a TV or music bed. It is reported once for the stretch, as a background segment (kind "
     "background), not as many events; events are what stands out from it"},
    {"false alarms",
     "each class's on-threshold is raised where the false-alarm calibration (events.calibration; `earmark "
     "calibrate` on background-only audio) measured it firing on audio with no events, for at most a target number "
     "of false alarms per hour; where more than events.burst_max unrelated labels start together (a label burst "
     "at a transient), only those that fired most clearly over their own thresholds are kept. Confidence is the "
     "calibrated probability that a detection is right when the table has a confidence map"},
    {"name",
     "one name per sound (events.rollup): overlapping events whose labels are related in the AudioSet ontology "
     "(ancestor and descendant, such as Animal, Dog and Bark; or two parents of one class, such as Dog and "
     "\"Canidae, dogs, wolves\") are one sound, reported once under its deepest label whose confidence is at least "
     "events.rollup_ratio times that of each label it replaces; the other labels are listed as \"also\". Unrelated "
     "labels stay separate events however they overlap. The hierarchy is the AudioSet ontology by Google, "
     "licensed CC BY-SA 4.0 (github.com/audioset/ontology). With --all-labels (events.rollup: false) or without "
     "the ontology file every label is reported on its own"},
};

// "Dog (also: Animal, Domestic animals, pets)": an event with the labels rolled up into it;
// "Rain [background]": a background segment.
std::string event_name(const Event& e) {
  const std::string name = e.kind == EventKind::background ? e.label + " [background]" : e.label;
  if (e.also.empty()) return name;
  std::string s = name + " (also: ";
  for (size_t k = 0; k < e.also.size(); ++k) s += (k ? ", " : "") + e.also[k].label;
  return s + ")";
}

// Why the conditioning steps are on or off by default (bench/conditioning; docs/conditioning.md).
constexpr const char* kConditioningNote =
    "Conditioning defaults are chosen by measurement (bench/conditioning: noisy, quiet and TV-backed "
    "soundscapes with known events): loudness normalisation is on because it raised event-based F1, "
    "segment-based F1 and PSDS; DC removal and high-pass are off because they did not help, and the "
    "denoiser is off because it lowered event-based F1 by half. "
    "Each file's summary says which steps ran.";

// Lines of the per-file spools that the finished report replaces: the start of file n's
// section (where a page of a large report begins) and the place of its pictures.
constexpr std::string_view kFileMark = "<!--earmark:file:";
constexpr std::string_view kPictureMark = "<!--earmark:pictures:";
std::string mark(std::string_view kind, size_t n) { return std::string(kind) + std::to_string(n) + "-->\n"; }
// n from a mark line ("<!--earmark:file:12-->"), or 0.
size_t mark_number(const std::string& line, std::string_view kind) {
  if (line.compare(0, kind.size(), kind) != 0) return 0;
  size_t n = 0;
  for (size_t k = kind.size(); k < line.size() && std::isdigit(static_cast<unsigned char>(line[k])); ++k)
    n = n * 10 + size_t(line[k] - '0');
  return n;
}

// ---------- HTML ----------

constexpr const char* kCss = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1240px;padding:0 16px 40px;color:#1b1b1b;line-height:1.4}
h1{margin-top:24px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:14px}
th,td{border:1px solid #d6d6d6;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafafb}
pre{background:#f6f6f8;border:1px solid #e2e2e6;padding:8px;overflow:auto;font-size:13px}
img{max-width:100%;height:auto;display:block;margin:8px 0;border:1px solid #e2e2e6}
.note{color:#555;font-style:italic}.sev-error{color:#b00020;font-weight:bold}.sev-warning{color:#a05a00}
.sev-info{color:#3b5b8a}code{font-size:13px}
)";

std::string html_head(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
         html_escape(title) + "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n";
}
constexpr const char* kHtmlTail = "</body>\n</html>\n";

struct Html {
  std::ostringstream os;
  void row(const std::vector<std::string>& cells, const std::vector<bool>& numeric = {}, const char* cls = nullptr) {
    os << (cls ? fmt::format("<tr class=\"{}\">", cls) : std::string("<tr>"));
    for (size_t k = 0; k < cells.size(); ++k)
      os << (k < numeric.size() && numeric[k] ? "<td class=\"num\">" : "<td>") << html_escape(cells[k]) << "</td>";
    os << "</tr>\n";
  }
  void head(const std::vector<std::string>& cells) {
    os << "<tr>";
    for (const auto& c : cells) os << "<th>" << html_escape(c) << "</th>";
    os << "</tr>\n";
  }
};

// Where file n's section is: this page, or report/files-<k>.html of a large run.
struct Pages {
  size_t per_page = 0;  // 0: every section in report.html
  size_t page_of(size_t n) const { return per_page ? (n - 1) / per_page + 1 : 0; }
  std::string page_name(size_t page) const { return fmt::format("report/files-{}.html", page); }
  std::string link(size_t n) const {
    return per_page ? fmt::format("{}#file-{}", page_name(page_of(n)), n) : fmt::format("#file-{}", n);
  }
};

void html_methodology(Html& h, const Content& c, const RunInfo& info) {
  auto& os = h.os;
  os << "<section id=\"methodology\">\n<h2>Methodology</h2>\n<p>Each file went through these stages:</p>\n<ol>\n";
  for (const auto& st : kPipeline) os << "<li><b>" << st[0] << "</b>: " << html_escape(st[1]) << "</li>\n";
  os << "</ol>\n<p>" << html_escape(kConditioningNote) << "</p>\n<table>\n";
  auto kv = [&](const std::string& k, const std::string& v) {
    os << "<tr><th>" << html_escape(k) << "</th><td>" << html_escape(v.empty() ? "n/a" : v) << "</td></tr>\n";
  };
  kv("Model", info.model_name);
  kv("Checkpoint", info.checkpoint_path);
  kv("Checkpoint SHA-256", info.checkpoint_sha256);
  kv("Labels", info.labels_path);
  kv("Label set size", c.label_count > 0 ? std::to_string(c.label_count) : std::string("n/a"));
  kv("Started", info.started_at);
  kv("Wall time", info.wall_s > 0 ? fmt::format("{:.1f} s", info.wall_s) : std::string());
  std::string inputs;
  for (const auto& in : info.inputs) inputs += (inputs.empty() ? "" : "; ") + in;
  kv("Inputs", inputs);
  kv("False-alarm calibration", info.calibration.empty() ? std::string("off (events.calibration: none)") : info.calibration);
  os << "</table>\n<h3>Software</h3>\n<table>\n";
  kv("earmark", earmark_version(info));
  kv("FFmpeg", ffmpeg_version());
  kv("Cairo", cairo_version_string());
  if (!info.torch_version.empty()) kv("LibTorch", info.torch_version);
  os << "</table>\n<h3>Effective parameters</h3>\n";
  if (info.config_yaml.empty())
    os << "<p class=\"note\">The configuration was not recorded with this run.</p>\n";
  else
    os << "<pre>" << html_escape(info.config_yaml) << "</pre>\n";
  if (c.without_spectrogram > 0 || c.without_scores > 0)
    os << "<p class=\"note\">" << c.without_spectrogram << " file(s) have no stored spectrogram and "
       << c.without_scores
       << " no stored frame scores: their pictures show what is available (run detection with frame scores in the "
          "JSON output to keep everything for a later <code>earmark report</code>).</p>\n";
  os << "</section>\n";
}

void html_index(Html& h, const Content& c, const Pages& pages) {
  auto& os = h.os;
  os << "<section id=\"files\">\n<h2>Files</h2>\n";
  if (pages.per_page)
    os << "<p>Each file's details are on pages of " << pages.per_page
       << " files (report/files-&lt;k&gt;.html); pictures are drawn for the files with the most to look at.</p>\n";
  os << "<table id=\"file-index\">\n";
  h.head({"#", "File", "Duration", "Format", "Level", "SNR", "Events", "Anomalies", "Error"});
  for (const auto& f : c.files) {
    os << "<tr><td class=\"num\">" << f.n << "</td><td><a href=\"" << pages.link(f.n) << "\">" << html_escape(f.name)
       << "</a></td><td class=\"num\">" << html_escape(f.duration) << "</td><td>" << html_escape(f.format) << "</td><td>"
       << html_escape(f.level) << "</td><td class=\"num\">" << html_escape(f.snr) << "</td><td class=\"num\">"
       << f.events << "</td><td class=\"num\">" << f.anomalies << "</td><td>" << html_escape(f.error) << "</td></tr>\n";
  }
  os << "</table>\n</section>\n";
}

std::vector<std::pair<std::string, ClassStats>> classes_by_duration(const Content& c) {
  std::vector<std::pair<std::string, ClassStats>> cls(c.classes.begin(), c.classes.end());
  std::stable_sort(cls.begin(), cls.end(), [](const auto& a, const auto& b) { return a.second.total_s > b.second.total_s; });
  return cls;
}

void html_statistics(Html& h, const Content& c) {
  auto& os = h.os;
  os << "<section id=\"statistics\">\n<h2>Overall statistics</h2>\n";
  os << "<p>" << c.files.size() << " file(s), " << c.failed << " failed, " << html_escape(duration_text(c.audio_s))
     << " of audio, " << c.events << " event(s) in " << c.classes.size() << " class(es).</p>\n";
  os << "<h3>Events per class</h3>\n";
  if (c.classes.empty()) {
    os << "<p class=\"note\">No events.</p>\n";
  } else {
    os << "<table id=\"class-stats\">\n";
    h.head({"Class", "Events", "Total duration (s)", "Files", "Mean confidence", "Max confidence"});
    for (const auto& [label, s] : classes_by_duration(c))
      h.row({label, std::to_string(s.events), secs1(s.total_s), std::to_string(s.files),
             fmt::format("{:.3f}", s.sum_conf / double(std::max<size_t>(s.events, 1))), fmt::format("{:.3f}", s.max_conf)},
            {false, true, true, true, true, true});
    os << "</table>\n";
  }
  os << "<h3>Co-occurrences</h3>\n<p>Pairs of classes whose events overlap in time (same file).</p>\n";
  if (c.pairs.empty()) {
    os << "<p class=\"note\">No overlapping events of different classes.</p>\n";
  } else {
    os << "<table id=\"cooccurrence\">\n";
    h.head({"Class A", "Class B", "Overlaps", "Total overlap (s)", "Files"});
    for (const auto& [key, p] : c.pairs)
      h.row({key.first, key.second, std::to_string(p.count), secs1(p.total_s), std::to_string(p.files)},
            {false, false, true, true, true});
    os << "</table>\n";
    if (c.pair_total > c.pairs.size())
      os << "<p class=\"note\">" << c.pair_total - c.pairs.size() << " further pair(s) not listed.</p>\n";
  }
  os << "</section>\n";
}

void html_anomalies_summary(Html& h, const Content& c, const Pages& pages) {
  auto& os = h.os;
  os << "<section id=\"anomalies\">\n<h2>Anomalies and difficulties</h2>\n"
        "<p>Problems found in the signal (quality analysis) and in the detections (a second look at the scores "
        "and events). Each file's section lists its findings with times.</p>\n";
  if (c.anomalies.empty()) {
    os << "<p class=\"note\">None found.</p>\n";
  } else {
    os << "<table id=\"anomaly-summary\">\n";
    h.head({"Kind (severity)", "Findings", "Files"});
    for (const auto& [k, a] : c.anomalies) h.row({k, std::to_string(a.count), std::to_string(a.files)}, {false, true, true});
    os << "</table>\n";
  }
  std::vector<const FileRow*> failed, warned;
  for (const auto& f : c.files) {
    if (!f.error.empty()) failed.push_back(&f);
    if (!f.warnings.empty()) warned.push_back(&f);
  }
  if (!failed.empty()) {
    os << "<h3>Files that could not be processed</h3>\n<ul>\n";
    for (const auto* f : failed)
      os << "<li><a href=\"" << pages.link(f->n) << "\">" << html_escape(f->name) << "</a>: " << html_escape(f->error)
         << "</li>\n";
    os << "</ul>\n";
  }
  if (!warned.empty()) {
    os << "<h3>Decoder and processing warnings</h3>\n<ul>\n";
    for (const auto* f : warned)
      for (const auto& w : f->warnings)
        os << "<li><a href=\"" << pages.link(f->n) << "\">" << html_escape(f->name) << "</a>: " << html_escape(w)
           << "</li>\n";
    os << "</ul>\n";
  }
  os << "</section>\n";
}

// One file's section, with a mark where its pictures go (filled in when the report is finished).
std::string html_file(const FileResult& r, size_t n, const std::string& name, const std::vector<Anomaly>& anomalies) {
  Html h;
  auto& os = h.os;
  os << mark(kFileMark, n);
  os << "<section id=\"file-" << n << "\" class=\"file\">\n<h2>" << n << ". " << html_escape(name) << "</h2>\n";
  os << "<p><code>" << html_escape(r.path) << "</code></p>\n";
  if (!r.ok()) os << "<p class=\"sev-error\">Error: " << html_escape(r.error) << "</p>\n";
  os << "<table>\n";
  auto kv = [&](const std::string& k, const std::string& v) {
    os << "<tr><th>" << html_escape(k) << "</th><td>" << html_escape(v) << "</td></tr>\n";
  };
  kv("Duration", duration_text(r.info.duration_s));
  kv("Format", format_text(r));
  kv("Level", level_text(r.quality));
  if (r.quality.measured) {
    kv("Noise floor / SNR", db(r.quality.noise_floor_dbfs, "dBFS") + " / " + snr_text(r.quality));
    if (!r.quality.noise_colour.empty()) kv("Noise colour", r.quality.noise_colour);
    if (r.quality.hum_hz > 0) kv("Hum", fmt::format("{:.1f} Hz", r.quality.hum_hz));
    if (r.quality.clipped_samples > 0) kv("Clipped samples", std::to_string(r.quality.clipped_samples));
    kv("DC offset", fmt::format("{:.4f}", r.quality.dc_offset));
  }
  if (!r.quality.conditioning.empty()) kv("Conditioning", r.quality.conditioning);
  kv("Events", std::to_string(r.events.size()));
  os << "</table>\n";
  os << mark(kPictureMark, n);

  os << "<h3>Events</h3>\n";
  os << "<table id=\"events-" << n << "\" class=\"events\">\n";
  h.head({"Label", "Onset (s)", "Offset (s)", "Duration (s)", "Confidence"});
  for (const auto& e : r.events)
    h.row({event_name(e), secs(e.onset), secs(e.offset), secs(e.offset - e.onset), conf(e.confidence)},
          {false, true, true, true, true}, "event");
  os << "</table>\n";
  if (r.events.empty()) os << "<p class=\"note\">No events.</p>\n";

  os << "<h3>Anomalies and difficulties</h3>\n";
  if (anomalies.empty() && r.warnings.empty()) {
    os << "<p class=\"note\">None found.</p>\n";
  } else {
    os << "<table id=\"anomalies-" << n << "\">\n";
    h.head({"Severity", "Kind", "Start (s)", "End (s)", "Finding"});
    for (const auto& a : anomalies)
      os << "<tr class=\"anomaly\"><td class=\"sev-" << html_escape(a.severity) << "\">" << html_escape(a.severity)
         << "</td><td>" << html_escape(a.kind) << "</td><td class=\"num\">" << secs(a.start_s)
         << "</td><td class=\"num\">" << secs(a.end_s) << "</td><td>" << html_escape(a.message) << "</td></tr>\n";
    for (const auto& w : r.warnings)
      os << "<tr class=\"anomaly\"><td class=\"sev-warning\">warning</td><td>decoder</td><td></td><td></td><td>"
         << html_escape(w) << "</td></tr>\n";
    os << "</table>\n";
  }
  os << "<p><a href=\"" << "#files" << "\">Back to the file index</a></p>\n</section>\n";
  return os.str();
}

std::string render_html_top(const Content& c, const RunInfo& info, const Pages& pages) {
  Html h;
  auto& os = h.os;
  os << html_head("Earmark report") << "<h1>Earmark detection report</h1>\n";
  os << "<p>" << c.files.size() << " file(s), " << c.events << " event(s)";
  if (!info.started_at.empty()) os << ", run started " << html_escape(info.started_at);
  os << ". Made by earmark " << html_escape(earmark_version(info)) << ".</p>\n";
  os << "<nav><ul><li><a href=\"#methodology\">Methodology</a></li><li><a href=\"#files\">Files</a></li>"
        "<li><a href=\"#statistics\">Overall statistics</a></li><li><a href=\"#anomalies\">Anomalies and "
        "difficulties</a></li></ul></nav>\n";
  html_methodology(h, c, info);
  html_index(h, c, pages);
  html_statistics(h, c);
  html_anomalies_summary(h, c, pages);
  return os.str();
}

// ---------- Markdown ----------

void md_table(std::ostringstream& os, const std::vector<std::string>& head,
              const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& numeric = {}) {
  os << "|";
  for (const auto& hd : head) os << ' ' << md_escape(hd) << " |";
  os << "\n|";
  for (size_t k = 0; k < head.size(); ++k) os << (k < numeric.size() && numeric[k] ? " ---: |" : " --- |");
  os << "\n";
  for (const auto& r : rows) {
    os << "|";
    for (const auto& cell : r) os << ' ' << md_escape(cell) << " |";
    os << "\n";
  }
  os << "\n";
}

std::string render_markdown_top(const Content& c, const RunInfo& info) {
  std::ostringstream os;
  os << "# Earmark detection report\n\n"
     << c.files.size() << " file(s), " << c.events << " event(s)";
  if (!info.started_at.empty()) os << ", run started " << md_escape(info.started_at);
  os << ". Made by earmark " << md_escape(earmark_version(info)) << ".\n\n";

  os << "## Methodology\n\nEach file went through these stages:\n\n";
  int k = 1;
  for (const auto& st : kPipeline) os << k++ << ". **" << st[0] << "**: " << st[1] << "\n";
  os << "\n" << kConditioningNote << "\n\n";
  std::string inputs;
  for (const auto& in : info.inputs) inputs += (inputs.empty() ? "" : "; ") + in;
  auto or_na = [](const std::string& s) { return s.empty() ? std::string("n/a") : s; };
  md_table(os, {"Item", "Value"},
           {{"Model", or_na(info.model_name)},
            {"Checkpoint", or_na(info.checkpoint_path)},
            {"Checkpoint SHA-256", or_na(info.checkpoint_sha256)},
            {"Labels", or_na(info.labels_path)},
            {"Label set size", c.label_count > 0 ? std::to_string(c.label_count) : "n/a"},
            {"Started", or_na(info.started_at)},
            {"Wall time", info.wall_s > 0 ? fmt::format("{:.1f} s", info.wall_s) : "n/a"},
            {"Inputs", or_na(inputs)},
            {"False-alarm calibration", info.calibration.empty() ? "off (events.calibration: none)" : info.calibration}});
  std::vector<std::vector<std::string>> sw = {
      {"earmark", earmark_version(info)}, {"FFmpeg", ffmpeg_version()}, {"Cairo", cairo_version_string()}};
  if (!info.torch_version.empty()) sw.push_back({"LibTorch", info.torch_version});
  os << "### Software\n\n";
  md_table(os, {"Component", "Version"}, sw);
  os << "### Effective parameters\n\n";
  if (info.config_yaml.empty()) {
    os << "_The configuration was not recorded with this run._\n\n";
  } else {
    // A fence longer than any backtick run inside the text cannot be closed by it.
    size_t longest = 0, run = 0;
    for (char ch : info.config_yaml) {
      run = ch == '`' ? run + 1 : 0;
      longest = std::max(longest, run);
    }
    const std::string fence(std::max<size_t>(3, longest + 1), '`');
    os << fence << "yaml\n" << valid_utf8(info.config_yaml);
    if (info.config_yaml.back() != '\n') os << "\n";
    os << fence << "\n\n";
  }
  if (c.without_spectrogram > 0 || c.without_scores > 0)
    os << "_" << c.without_spectrogram << " file(s) have no stored spectrogram and " << c.without_scores
       << " no stored frame scores: their pictures show what is available._\n\n";

  os << "## Files\n\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : c.files)
    rows.push_back({std::to_string(f.n), f.name, f.duration, f.format, f.level, f.snr, std::to_string(f.events),
                    std::to_string(f.anomalies), f.error});
  md_table(os, {"#", "File", "Duration", "Format", "Level", "SNR", "Events", "Anomalies", "Error"}, rows,
           {true, false, true, false, false, true, true, true, false});

  os << "## Overall statistics\n\n"
     << c.files.size() << " file(s), " << c.failed << " failed, " << duration_text(c.audio_s) << " of audio, " << c.events
     << " event(s) in " << c.classes.size() << " class(es).\n\n### Events per class\n\n";
  if (c.classes.empty()) {
    os << "_No events._\n\n";
  } else {
    rows.clear();
    for (const auto& [label, s] : classes_by_duration(c))
      rows.push_back({label, std::to_string(s.events), secs1(s.total_s), std::to_string(s.files),
                      fmt::format("{:.3f}", s.sum_conf / double(std::max<size_t>(s.events, 1))),
                      fmt::format("{:.3f}", s.max_conf)});
    md_table(os, {"Class", "Events", "Total duration (s)", "Files", "Mean confidence", "Max confidence"}, rows,
             {false, true, true, true, true, true});
  }
  os << "### Co-occurrences\n\nPairs of classes whose events overlap in time (same file).\n\n";
  if (c.pairs.empty()) {
    os << "_No overlapping events of different classes._\n\n";
  } else {
    rows.clear();
    for (const auto& [key, p] : c.pairs)
      rows.push_back({key.first, key.second, std::to_string(p.count), secs1(p.total_s), std::to_string(p.files)});
    md_table(os, {"Class A", "Class B", "Overlaps", "Total overlap (s)", "Files"}, rows, {false, false, true, true, true});
    if (c.pair_total > c.pairs.size()) os << "_" << c.pair_total - c.pairs.size() << " further pair(s) not listed._\n\n";
  }

  os << "## Anomalies and difficulties\n\n";
  if (c.anomalies.empty()) {
    os << "_None found._\n\n";
  } else {
    rows.clear();
    for (const auto& [kind, a] : c.anomalies) rows.push_back({kind, std::to_string(a.count), std::to_string(a.files)});
    md_table(os, {"Kind (severity)", "Findings", "Files"}, rows, {false, true, true});
  }
  for (const auto& f : c.files)
    if (!f.error.empty()) os << "- **" << md_escape(f.name) << "** could not be processed: " << md_escape(f.error) << "\n";
  os << "\n";
  return os.str();
}

std::string md_file(const FileResult& r, size_t n, const std::string& name, const std::vector<Anomaly>& anomalies) {
  std::ostringstream os;
  std::vector<std::vector<std::string>> rows;
  os << "## " << n << ". " << md_escape(name) << "\n\n`" << valid_utf8(r.path) << "`\n\n";
  if (!r.ok()) os << "**Error:** " << md_escape(r.error) << "\n\n";
  os << "Duration " << duration_text(r.info.duration_s) << "; " << md_escape(format_text(r)) << "; "
     << md_escape(level_text(r.quality)) << "; SNR " << snr_text(r.quality) << ".\n\n";
  os << mark(kPictureMark, n);
  os << "### Events\n\n";
  if (r.events.empty()) {
    os << "_No events._\n\n";
  } else {
    for (const auto& e : r.events)
      rows.push_back({event_name(e), secs(e.onset), secs(e.offset), secs(e.offset - e.onset), conf(e.confidence)});
    md_table(os, {"Label", "Onset (s)", "Offset (s)", "Duration (s)", "Confidence"}, rows,
             {false, true, true, true, true});
  }
  os << "### Anomalies and difficulties\n\n";
  if (anomalies.empty() && r.warnings.empty()) {
    os << "_None found._\n\n";
  } else {
    rows.clear();
    for (const auto& a : anomalies) rows.push_back({a.severity, a.kind, secs(a.start_s), secs(a.end_s), a.message});
    for (const auto& w : r.warnings) rows.push_back({"warning", "decoder", "", "", w});
    md_table(os, {"Severity", "Kind", "Start (s)", "End (s)", "Finding"}, rows, {false, false, true, true, false});
  }
  return os.str();
}

void write_text(const fs::path& p, const std::string& bytes, std::vector<std::string>& written) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  if (!f) throw Error(p.string() + ": cannot write (" + std::strerror(errno) + "); check the output folder");
  f.write(bytes.data(), std::streamsize(bytes.size()));
  f.flush();
  if (!f) throw Error(p.string() + ": writing failed (" + std::strerror(errno) + "); check free space");
  written.push_back(p.string());
}

// What a file's pictures are drawn from, kept only for the files that may get pictures: the
// result without its score grid except the classes the heat-map shows.
FileResult picture_data(const FileResult& r, const PictureConfig& pc) {
  FileResult p;
  p.path = r.path;
  p.info = r.info;
  p.error = r.error;
  p.events = r.events;
  p.spectrogram = r.spectrogram;
  const FrameScores& s = r.scores;
  if (has_scores(r)) {
    std::vector<size_t> order = top_classes_by_peak(s, size_t(pc.top_classes));
    std::sort(order.begin(), order.end());  // model order, so ties break as in the full grid
    p.scores.hop_s = s.hop_s;
    p.scores.frames = s.frames;
    for (size_t c : order) p.scores.labels.push_back(s.labels[c]);
    p.scores.values.reserve(size_t(s.frames) * order.size());
    for (int f = 0; f < s.frames; ++f)
      for (size_t c : order) p.scores.values.push_back(s.at(f, int(c)));
  } else {
    p.scores = s;
  }
  return p;
}

}  // namespace

// ---------- ReportStream ----------

struct ReportStream::Impl {
  fs::path dir;
  ReportConfig cfg;
  Pages pages;
  Content content;
  std::ofstream html_spool, md_spool;
  fs::path html_spool_path, md_spool_path;
  // Picture candidates: the files that matter most so far (at most max_picture_files, plus
  // those asked for), with what their pictures are drawn from.
  struct Candidate {
    std::array<double, 4> interest;  // larger first; ties: earlier file first
    size_t n = 0;
    FileResult data;
  };
  std::vector<Candidate> candidates;  // asked-for files first are kept apart
  std::vector<Candidate> asked;

  bool asked_for(const FileResult& r) const {
    for (const auto& a : cfg.picture_inputs)
      if (a == r.path || a == display_name(r) || a == fs::path(r.path).stem().string()) return true;
    return false;
  }

  // Files with error-level findings first, then warnings, then the most events.
  static std::array<double, 4> interest(const FileResult& r, const std::vector<Anomaly>& anomalies, size_t n) {
    double errors = 0, warnings = 0;
    for (const auto& a : anomalies) {
      if (a.severity == "error") ++errors;
      else if (a.severity == "warning") ++warnings;
    }
    return {errors, warnings + double(r.warnings.size()), double(r.events.size()), -double(n)};
  }

  void consider(const FileResult& r, const std::vector<Anomaly>& anomalies, size_t n) {
    if (asked_for(r)) {
      asked.push_back({interest(r, anomalies, n), n, picture_data(r, cfg.pictures)});
      return;
    }
    if (cfg.max_picture_files == 0) return;
    const auto key = interest(r, anomalies, n);
    auto worst = std::min_element(candidates.begin(), candidates.end(),
                                  [](const Candidate& a, const Candidate& b) { return a.interest < b.interest; });
    if (candidates.size() < cfg.max_picture_files) {
      candidates.push_back({key, n, picture_data(r, cfg.pictures)});
    } else if (worst->interest < key) {
      *worst = Candidate{key, n, picture_data(r, cfg.pictures)};
    }
  }

  void count(const FileResult& r, const std::vector<Anomaly>& anomalies, size_t n) {
    Content& c = content;
    FileRow row;
    row.n = n;
    row.name = display_name(r);
    row.duration = duration_text(r.info.duration_s);
    row.format = format_text(r);
    row.level = level_text(r.quality);
    row.snr = snr_text(r.quality);
    row.error = r.error;
    row.events = r.events.size();
    row.anomalies = anomalies.size();
    row.warnings = r.warnings;
    c.files.push_back(std::move(row));
    if (!r.ok()) {
      ++c.failed;
    } else {
      if (!has_spectrogram(r)) ++c.without_spectrogram;
      if (!has_scores(r)) ++c.without_scores;
      if (std::isfinite(r.info.duration_s)) c.audio_s += r.info.duration_s;
    }
    if (c.label_count == 0) c.label_count = r.scores.labels.size();
    c.events += r.events.size();
    for (const auto& e : r.events) {
      auto& s = c.classes[e.label];
      ++s.events;
      s.total_s += std::max(e.offset - e.onset, 0.0);
      if (s.last_file != n) ++s.files, s.last_file = n;
      const double cf = std::isfinite(e.confidence) ? e.confidence : 0.0;
      s.max_conf = std::max(s.max_conf, cf);
      s.sum_conf += cf;
    }
    // Overlaps between classes: sweep the events in onset order.
    std::vector<const Event*> ev;
    for (const auto& e : r.events) ev.push_back(&e);
    std::sort(ev.begin(), ev.end(), [](const Event* a, const Event* b) { return a->onset < b->onset; });
    for (size_t a = 0; a < ev.size(); ++a)
      for (size_t b = a + 1; b < ev.size() && ev[b]->onset < ev[a]->offset; ++b) {
        if (ev[a]->label == ev[b]->label) continue;
        const double overlap = std::min(ev[a]->offset, ev[b]->offset) - ev[b]->onset;
        if (!(overlap > 0)) continue;
        auto key = std::minmax(ev[a]->label, ev[b]->label);
        auto& p = c.pair_map[{key.first, key.second}];
        ++p.count;
        p.total_s += overlap;
        if (p.last_file != n) ++p.files, p.last_file = n;
      }
    for (const auto& a : anomalies) {
      auto& s = c.anomalies[a.kind + " (" + a.severity + ")"];
      ++s.count;
      if (s.last_file != n) ++s.files, s.last_file = n;
    }
  }
};

ReportStream::ReportStream(const std::string& out_dir, size_t total_files, const ReportConfig& config,
                           const ReportPositions* resume_at)
    : impl_(std::make_unique<Impl>()) {
  config.pictures.validate();
  config.review.validate();
  auto& s = *impl_;
  s.cfg = config;
  s.dir = out_dir;
  s.pages.per_page = config.page_files > 0 && total_files > config.page_files ? config.page_files : 0;
  std::error_code ec;
  fs::create_directories(s.dir / "report", ec);
  if (ec || !fs::is_directory(s.dir / "report"))
    throw Error(out_dir + ": cannot create the report folder (" +
                (ec ? ec.message() : std::string("a file of that name exists")) + "); choose a writable folder");
  s.html_spool_path = s.dir / "report" / "files.html.part";
  s.md_spool_path = s.dir / "report" / "files.md.part";
  auto open = [&](std::ofstream& f, const fs::path& p, const uint64_t* keep) {
    if (keep) {
      std::error_code e2;
      const auto size = fs::file_size(p, e2);
      if (e2 || size < *keep)
        throw Error(p.string() + ": shorter than the run's progress file records; the folder was changed since the run "
                                 "stopped: run again without --resume (or into another folder)");
      fs::resize_file(p, *keep, e2);
      f.open(p, std::ios::binary | std::ios::app);
    } else {
      f.open(p, std::ios::binary | std::ios::trunc);
    }
    if (!f) throw Error(p.string() + ": cannot write (" + std::strerror(errno) + "); check the output folder");
  };
  open(s.html_spool, s.html_spool_path, resume_at ? &resume_at->html : nullptr);
  open(s.md_spool, s.md_spool_path, resume_at ? &resume_at->md : nullptr);
}

ReportStream::~ReportStream() = default;

ReportPositions ReportStream::positions() {
  auto& s = *impl_;
  s.html_spool.flush();
  s.md_spool.flush();
  return {uint64_t(s.html_spool.tellp()), uint64_t(s.md_spool.tellp())};
}

size_t ReportStream::files() const { return impl_->content.files.size(); }

void ReportStream::add(const FileResult& r) {
  auto& s = *impl_;
  const size_t n = s.content.files.size() + 1;
  std::vector<Anomaly> anomalies = r.anomalies;
  const bool reviewed = std::any_of(r.anomalies.begin(), r.anomalies.end(),
                                    [](const Anomaly& a) { return kDetectionKinds.count(a.kind) != 0; });
  if (s.cfg.run_review && !reviewed && r.ok()) {
    auto more = detect::review_detections(r, s.cfg.review);
    anomalies.insert(anomalies.end(), more.begin(), more.end());
    std::stable_sort(anomalies.begin(), anomalies.end(),
                     [](const Anomaly& a, const Anomaly& b) { return a.start_s < b.start_s; });
  }
  const std::string name = display_name(r);
  s.html_spool << html_file(r, n, name, anomalies);
  s.md_spool << md_file(r, n, name, anomalies);
  if (!s.html_spool || !s.md_spool)
    throw Error(s.html_spool_path.string() + ": writing failed (" + std::strerror(errno) + "); check free space");
  s.count(r, anomalies, n);
  s.consider(r, anomalies, n);
}

void ReportStream::replay(const FileResult& r) {
  auto& s = *impl_;
  const size_t n = s.content.files.size() + 1;
  s.count(r, r.anomalies, n);
}

std::vector<std::string> ReportStream::finish(const RunInfo& info) {
  auto& s = *impl_;
  Content& c = s.content;
  if (info.label_count) c.label_count = info.label_count;
  c.pairs.assign(c.pair_map.begin(), c.pair_map.end());
  std::stable_sort(c.pairs.begin(), c.pairs.end(),
                   [](const auto& a, const auto& b) { return a.second.total_s > b.second.total_s; });
  c.pair_total = c.pairs.size();
  if (c.pairs.size() > s.cfg.max_pairs) c.pairs.resize(s.cfg.max_pairs);
  s.html_spool.close();
  s.md_spool.close();

  // Pictures of the chosen files, by file number.
  std::vector<std::string> written;
  struct Drawn {
    Picture timeline, heatmap;
    bool has_spectrogram = false, ok = true;
  };
  std::map<size_t, Drawn> drawn;
  for (auto* list : {&s.candidates, &s.asked})
    for (const auto& cand : *list) {
      Drawn d;
      d.timeline = timeline_picture(cand.data, s.cfg.pictures);
      d.heatmap = score_heatmap(cand.data, s.cfg.pictures);
      d.has_spectrogram = has_spectrogram(cand.data);
      d.ok = cand.data.ok();
      if (!d.timeline.empty()) write_text(s.dir / picture_file(cand.n, "timeline"), d.timeline.png, written);
      if (!d.heatmap.empty()) write_text(s.dir / picture_file(cand.n, "scores"), d.heatmap.png, written);
      drawn[cand.n] = std::move(d);
    }
  s.candidates.clear();
  s.asked.clear();

  auto html_pictures = [&](std::ostream& os, size_t n, const std::string& name) {
    auto it = drawn.find(n);
    if (it == drawn.end()) {
      os << "<p class=\"note\">Pictures are drawn for the files with the most to look at (errors, warnings, events; "
            "see --pictures-for); <code>earmark report</code> can draw them for others.</p>\n";
      return;
    }
    const Drawn& d = it->second;
    if (!d.timeline.empty())
      os << "<img alt=\"Spectrogram and events of " << html_escape(name) << "\" width=\"" << d.timeline.width
         << "\" height=\"" << d.timeline.height << "\" src=\"" << data_uri(d.timeline) << "\">\n";
    if (!d.has_spectrogram && d.ok)
      os << "<p class=\"note\">No spectrogram was stored for this file; the picture shows the events only.</p>\n";
    if (!d.heatmap.empty())
      os << "<img alt=\"Frame scores of the top classes in " << html_escape(name) << "\" width=\"" << d.heatmap.width
         << "\" height=\"" << d.heatmap.height << "\" src=\"" << data_uri(d.heatmap) << "\">\n";
    else if (d.ok)
      os << "<p class=\"note\">No frame scores were stored for this file, so there is no score heat-map.</p>\n";
  };
  auto md_pictures = [&](std::ostream& os, size_t n) {
    auto it = drawn.find(n);
    if (it == drawn.end()) return;
    const Drawn& d = it->second;
    if (!d.timeline.empty()) os << "![Spectrogram and events](" << picture_file(n, "timeline") << ")\n\n";
    if (!d.heatmap.empty()) os << "![Frame scores of the top classes](" << picture_file(n, "scores") << ")\n\n";
    else if (d.ok) os << "_No frame scores were stored for this file, so there is no score heat-map._\n\n";
  };

  // report.html: the run-wide part, then the sections (or, for a large run, pages of them).
  auto open_out = [&](std::ofstream& f, const fs::path& p) {
    f.open(p, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(p.string() + ": cannot write (" + std::strerror(errno) + "); check the output folder");
  };
  auto close_out = [&](std::ofstream& f, const fs::path& p) {
    f.flush();
    if (!f) throw Error(p.string() + ": writing failed (" + std::strerror(errno) + "); check free space");
    f.close();
    written.push_back(p.string());
  };
  {
    const fs::path html_path = s.dir / "report.html";
    std::ofstream html;
    open_out(html, html_path);
    html << render_html_top(c, info, s.pages);
    std::ifstream spool(s.html_spool_path, std::ios::binary);
    std::ofstream page;
    fs::path page_path;
    std::string line;
    std::ostream* os = &html;
    size_t current_page = 0;
    std::map<size_t, std::string> names;
    for (const auto& f : c.files)
      if (drawn.count(f.n)) names[f.n] = f.name;
    while (std::getline(spool, line)) {
      if (const size_t n = mark_number(line, kFileMark)) {
        if (s.pages.per_page && s.pages.page_of(n) != current_page) {
          if (page.is_open()) {
            page << kHtmlTail;
            close_out(page, page_path);
          }
          current_page = s.pages.page_of(n);
          page_path = s.dir / s.pages.page_name(current_page);
          open_out(page, page_path);
          const size_t last = std::min(c.files.size(), current_page * s.pages.per_page);
          page << html_head(fmt::format("Earmark report: files {} to {}", n, last))
               << "<p><a href=\"../report.html#files\">Back to the report</a></p>\n";
          os = &page;
        }
        continue;
      }
      if (const size_t n = mark_number(line, kPictureMark)) {
        html_pictures(*os, n, names.count(n) ? names[n] : std::string());
        continue;
      }
      if (os == &page && line == "<p><a href=\"#files\">Back to the file index</a></p>")
        line = "<p><a href=\"../report.html#files\">Back to the file index</a></p>";
      *os << line << '\n';
    }
    if (page.is_open()) {
      page << kHtmlTail;
      close_out(page, page_path);
    }
    html << kHtmlTail;
    close_out(html, html_path);
  }
  {
    const fs::path md_path = s.dir / "report.md";
    std::ofstream md;
    open_out(md, md_path);
    md << render_markdown_top(c, info);
    std::ifstream spool(s.md_spool_path, std::ios::binary);
    std::string line;
    while (std::getline(spool, line)) {
      if (const size_t n = mark_number(line, kPictureMark)) {
        md_pictures(md, n);
        continue;
      }
      md << line << '\n';
    }
    close_out(md, md_path);
  }
  write_run_info((s.dir / "run.json").string(), info);
  written.push_back((s.dir / "run.json").string());
  std::error_code ec;
  fs::remove(s.html_spool_path, ec);
  fs::remove(s.md_spool_path, ec);
  return written;
}

std::vector<std::string> write_report(const std::string& out_dir, const std::vector<FileResult>& results,
                                      const RunInfo& info, const ReportConfig& config) {
  ReportStream report(out_dir, results.size(), config);
  for (const auto& r : results) report.add(r);
  return report.finish(info);
}

void write_run_info(const std::string& path, const RunInfo& info) {
  nlohmann::ordered_json j = {{"model_name", info.model_name},
                              {"checkpoint_path", info.checkpoint_path},
                              {"checkpoint_sha256", info.checkpoint_sha256},
                              {"labels_path", info.labels_path},
                              {"label_count", info.label_count},
                              {"version", earmark_version(info)},
                              {"torch_version", info.torch_version},
                              {"calibration", info.calibration},
                              {"started_at", info.started_at},
                              {"wall_s", info.wall_s},
                              {"inputs", info.inputs},
                              {"config_yaml", info.config_yaml}};
  std::vector<std::string> unused;
  write_text(path, j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n", unused);
}

RunInfo read_run_info(const std::string& path) {
  const std::string text = util::read_file_bounded(path, util::kMaxConfigBytes * 16, "run.json");
  RunInfo info;
  try {
    const auto j = nlohmann::json::parse(text);
    if (!j.is_object()) throw Error(path + ": not a JSON object; give the run.json an earmark run wrote");
    info.model_name = j.value("model_name", "");
    info.checkpoint_path = j.value("checkpoint_path", "");
    info.checkpoint_sha256 = j.value("checkpoint_sha256", "");
    info.labels_path = j.value("labels_path", "");
    info.label_count = j.value("label_count", size_t(0));
    info.version = j.value("version", "");
    info.torch_version = j.value("torch_version", "");
    info.calibration = j.value("calibration", "");
    info.started_at = j.value("started_at", "");
    info.wall_s = j.value("wall_s", 0.0);
    info.inputs = j.value("inputs", std::vector<std::string>{});
    info.config_yaml = j.value("config_yaml", "");
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": unexpected content (" + e.what() + "); give the run.json an earmark run wrote");
  }
  return info;
}

}  // namespace earmark::report
