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

// ---------- the run's content, computed once for both formats ----------

struct FileView {
  const FileResult* r = nullptr;
  size_t n = 0;  // 1-based
  std::string name;
  std::vector<Anomaly> anomalies;
  Picture timeline, heatmap;
  bool pictures = false;  // drawn (within max_picture_files)
};

struct ClassStats {
  size_t events = 0;
  double total_s = 0;
  std::set<size_t> files;
  double max_conf = 0, sum_conf = 0;
};

struct PairStats {
  size_t count = 0;
  double total_s = 0;
  std::set<size_t> files;
};

struct Content {
  std::vector<FileView> files;
  std::map<std::string, ClassStats> classes;
  std::vector<std::pair<std::pair<std::string, std::string>, PairStats>> pairs;  // by total overlap, descending
  size_t pair_total = 0;
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

Content build(const std::vector<FileResult>& results, const RunInfo& info, const ReportConfig& cfg) {
  Content c;
  c.label_count = info.label_count;
  for (size_t i = 0; i < results.size(); ++i) {
    const FileResult& r = results[i];
    FileView v;
    v.r = &r;
    v.n = i + 1;
    v.name = display_name(r);
    v.anomalies = r.anomalies;
    const bool reviewed = std::any_of(r.anomalies.begin(), r.anomalies.end(),
                                      [](const Anomaly& a) { return kDetectionKinds.count(a.kind) != 0; });
    if (cfg.run_review && !reviewed && r.ok()) {
      auto more = detect::review_detections(r, cfg.review);
      v.anomalies.insert(v.anomalies.end(), more.begin(), more.end());
      std::stable_sort(v.anomalies.begin(), v.anomalies.end(),
                       [](const Anomaly& a, const Anomaly& b) { return a.start_s < b.start_s; });
    }
    if (i < cfg.max_picture_files) {
      v.pictures = true;
      v.timeline = timeline_picture(r, cfg.pictures);
      v.heatmap = score_heatmap(r, cfg.pictures);
    }
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
      s.files.insert(i);
      const double conf = std::isfinite(e.confidence) ? e.confidence : 0.0;
      s.max_conf = std::max(s.max_conf, conf);
      s.sum_conf += conf;
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
        c.pairs.push_back({{key.first, key.second}, {}});  // placeholder, folded below
        auto& p = c.pairs.back().second;
        p.count = 1;
        p.total_s = overlap;
        p.files.insert(i);
      }
    c.files.push_back(std::move(v));
  }
  // Fold the per-overlap entries into one per class pair.
  std::map<std::pair<std::string, std::string>, PairStats> folded;
  for (auto& [key, p] : c.pairs) {
    auto& f = folded[key];
    f.count += p.count;
    f.total_s += p.total_s;
    f.files.insert(p.files.begin(), p.files.end());
  }
  c.pairs.assign(folded.begin(), folded.end());
  std::stable_sort(c.pairs.begin(), c.pairs.end(),
                   [](const auto& a, const auto& b) { return a.second.total_s > b.second.total_s; });
  c.pair_total = c.pairs.size();
  if (c.pairs.size() > cfg.max_pairs) c.pairs.resize(cfg.max_pairs);
  return c;
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

std::vector<std::pair<std::string, size_t>> anomaly_counts(const Content& c, std::map<std::string, size_t>* files) {
  std::map<std::string, size_t> count;
  for (const auto& f : c.files) {
    std::set<std::string> here;
    for (const auto& a : f.anomalies) {
      const std::string key = a.kind + " (" + a.severity + ")";
      ++count[key];
      here.insert(key);
    }
    for (const auto& k : here) ++(*files)[k];
  }
  return {count.begin(), count.end()};
}

constexpr const char* kPipeline[][2] = {
    {"decode", "FFmpeg decodes the file, downmixes to mono and resamples to 32 kHz"},
    {"condition", "signal quality is measured; optional DC removal, high-pass, denoising and level normalisation"},
    {"features", "128-band log-mel spectrogram, 10 ms hop, as the network was trained on"},
    {"model",
     "EfficientAT MobileNetV3 (AudioSet-pretrained, LibTorch) scores every class on short chunks, in two passes "
     "shifted by half a column, giving a score every 0.16 s"},
    {"detect",
     "per-class median filtering, hysteresis thresholds, gap merging and minimum duration turn scores into events; "
     "each event's onset and offset are then placed at 10 ms where its sound rises out of and sinks back into the "
     "background, in the frequency bands where that sound stands out (pauses split it, a sound that goes on "
     "extends it)"},
};

// Why the conditioning steps are on or off by default (bench/conditioning; docs/conditioning.md).
constexpr const char* kConditioningNote =
    "Conditioning defaults are chosen by measurement (bench/conditioning: noisy, quiet and TV-backed "
    "soundscapes with known events): loudness normalisation is on because it raised event-based F1, "
    "segment-based F1 and PSDS; DC removal and high-pass are off because they did not help, and the "
    "denoiser is off because it lowered event-based F1 by half. "
    "Each file's summary says which steps ran.";

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

struct Html {
  std::ostringstream os;
  void text(std::string_view s) { os << html_escape(s); }
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

void html_index(Html& h, const Content& c) {
  auto& os = h.os;
  os << "<section id=\"files\">\n<h2>Files</h2>\n<table id=\"file-index\">\n";
  h.head({"#", "File", "Duration", "Format", "Level", "SNR", "Events", "Anomalies", "Error"});
  for (const auto& f : c.files) {
    const FileResult& r = *f.r;
    os << "<tr><td class=\"num\">" << f.n << "</td><td><a href=\"#file-" << f.n << "\">" << html_escape(f.name)
       << "</a></td><td class=\"num\">" << html_escape(duration_text(r.info.duration_s)) << "</td><td>"
       << html_escape(format_text(r)) << "</td><td>" << html_escape(level_text(r.quality)) << "</td><td class=\"num\">"
       << html_escape(snr_text(r.quality)) << "</td><td class=\"num\">" << r.events.size() << "</td><td class=\"num\">"
       << f.anomalies.size() << "</td><td>" << html_escape(r.error) << "</td></tr>\n";
  }
  os << "</table>\n</section>\n";
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
    std::vector<std::pair<std::string, ClassStats>> cls(c.classes.begin(), c.classes.end());
    std::stable_sort(cls.begin(), cls.end(), [](const auto& a, const auto& b) { return a.second.total_s > b.second.total_s; });
    os << "<table id=\"class-stats\">\n";
    h.head({"Class", "Events", "Total duration (s)", "Files", "Mean confidence", "Max confidence"});
    for (const auto& [label, s] : cls)
      h.row({label, std::to_string(s.events), secs1(s.total_s), std::to_string(s.files.size()),
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
      h.row({key.first, key.second, std::to_string(p.count), secs1(p.total_s), std::to_string(p.files.size())},
            {false, false, true, true, true});
    os << "</table>\n";
    if (c.pair_total > c.pairs.size())
      os << "<p class=\"note\">" << c.pair_total - c.pairs.size() << " further pair(s) not listed.</p>\n";
  }
  os << "</section>\n";
}

void html_anomalies_summary(Html& h, const Content& c) {
  auto& os = h.os;
  os << "<section id=\"anomalies\">\n<h2>Anomalies and difficulties</h2>\n"
        "<p>Problems found in the signal (quality analysis) and in the detections (a second look at the scores "
        "and events). Each file's section lists its findings with times.</p>\n";
  std::map<std::string, size_t> files;
  const auto counts = anomaly_counts(c, &files);
  if (counts.empty()) {
    os << "<p class=\"note\">None found.</p>\n";
  } else {
    os << "<table id=\"anomaly-summary\">\n";
    h.head({"Kind (severity)", "Findings", "Files"});
    for (const auto& [k, n] : counts) h.row({k, std::to_string(n), std::to_string(files[k])}, {false, true, true});
    os << "</table>\n";
  }
  std::vector<const FileView*> failed, warned;
  for (const auto& f : c.files) {
    if (!f.r->ok()) failed.push_back(&f);
    if (!f.r->warnings.empty()) warned.push_back(&f);
  }
  if (!failed.empty()) {
    os << "<h3>Files that could not be processed</h3>\n<ul>\n";
    for (const auto* f : failed)
      os << "<li><a href=\"#file-" << f->n << "\">" << html_escape(f->name) << "</a>: " << html_escape(f->r->error)
         << "</li>\n";
    os << "</ul>\n";
  }
  if (!warned.empty()) {
    os << "<h3>Decoder and processing warnings</h3>\n<ul>\n";
    for (const auto* f : warned)
      for (const auto& w : f->r->warnings)
        os << "<li><a href=\"#file-" << f->n << "\">" << html_escape(f->name) << "</a>: " << html_escape(w) << "</li>\n";
    os << "</ul>\n";
  }
  os << "</section>\n";
}

void html_file(Html& h, const FileView& f) {
  auto& os = h.os;
  const FileResult& r = *f.r;
  os << "<section id=\"file-" << f.n << "\" class=\"file\">\n<h2>" << f.n << ". " << html_escape(f.name) << "</h2>\n";
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

  if (f.pictures) {
    if (!f.timeline.empty())
      os << "<img alt=\"Spectrogram and events of " << html_escape(f.name) << "\" width=\"" << f.timeline.width
         << "\" height=\"" << f.timeline.height << "\" src=\"" << data_uri(f.timeline) << "\">\n";
    if (!has_spectrogram(r) && r.ok())
      os << "<p class=\"note\">No spectrogram was stored for this file; the picture shows the events only.</p>\n";
    if (!f.heatmap.empty())
      os << "<img alt=\"Frame scores of the top classes in " << html_escape(f.name) << "\" width=\"" << f.heatmap.width
         << "\" height=\"" << f.heatmap.height << "\" src=\"" << data_uri(f.heatmap) << "\">\n";
    else if (r.ok())
      os << "<p class=\"note\">No frame scores were stored for this file, so there is no score heat-map.</p>\n";
  } else {
    os << "<p class=\"note\">Pictures are drawn for the first files of a large run only.</p>\n";
  }

  os << "<h3>Events</h3>\n";
  os << "<table id=\"events-" << f.n << "\" class=\"events\">\n";
  h.head({"Label", "Onset (s)", "Offset (s)", "Duration (s)", "Confidence"});
  for (const auto& e : r.events)
    h.row({e.label, secs(e.onset), secs(e.offset), secs(e.offset - e.onset), conf(e.confidence)},
          {false, true, true, true, true}, "event");
  os << "</table>\n";
  if (r.events.empty()) os << "<p class=\"note\">No events.</p>\n";

  os << "<h3>Anomalies and difficulties</h3>\n";
  if (f.anomalies.empty() && r.warnings.empty()) {
    os << "<p class=\"note\">None found.</p>\n";
  } else {
    os << "<table id=\"anomalies-" << f.n << "\">\n";
    h.head({"Severity", "Kind", "Start (s)", "End (s)", "Finding"});
    for (const auto& a : f.anomalies)
      os << "<tr class=\"anomaly\"><td class=\"sev-" << html_escape(a.severity) << "\">" << html_escape(a.severity)
         << "</td><td>" << html_escape(a.kind) << "</td><td class=\"num\">" << secs(a.start_s)
         << "</td><td class=\"num\">" << secs(a.end_s) << "</td><td>" << html_escape(a.message) << "</td></tr>\n";
    for (const auto& w : r.warnings)
      os << "<tr class=\"anomaly\"><td class=\"sev-warning\">warning</td><td>decoder</td><td></td><td></td><td>"
         << html_escape(w) << "</td></tr>\n";
    os << "</table>\n";
  }
  os << "<p><a href=\"#files\">Back to the file index</a></p>\n</section>\n";
}

std::string render_html(const Content& c, const RunInfo& info) {
  Html h;
  auto& os = h.os;
  os << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<title>Earmark report</title>\n<style>"
     << kCss << "</style>\n</head>\n<body>\n<h1>Earmark detection report</h1>\n";
  os << "<p>" << c.files.size() << " file(s), " << c.events << " event(s)";
  if (!info.started_at.empty()) os << ", run started " << html_escape(info.started_at);
  os << ". Made by earmark " << html_escape(earmark_version(info)) << ".</p>\n";
  os << "<nav><ul><li><a href=\"#methodology\">Methodology</a></li><li><a href=\"#files\">Files</a></li>"
        "<li><a href=\"#statistics\">Overall statistics</a></li><li><a href=\"#anomalies\">Anomalies and "
        "difficulties</a></li></ul></nav>\n";
  html_methodology(h, c, info);
  html_index(h, c);
  html_statistics(h, c);
  html_anomalies_summary(h, c);
  for (const auto& f : c.files) html_file(h, f);
  os << "</body>\n</html>\n";
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

std::string render_markdown(const Content& c, const RunInfo& info) {
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
            {"Inputs", or_na(inputs)}});
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
  for (const auto& f : c.files) {
    const FileResult& r = *f.r;
    rows.push_back({std::to_string(f.n), f.name, duration_text(r.info.duration_s), format_text(r), level_text(r.quality),
                    snr_text(r.quality), std::to_string(r.events.size()), std::to_string(f.anomalies.size()), r.error});
  }
  md_table(os, {"#", "File", "Duration", "Format", "Level", "SNR", "Events", "Anomalies", "Error"}, rows,
           {true, false, true, false, false, true, true, true, false});

  os << "## Overall statistics\n\n"
     << c.files.size() << " file(s), " << c.failed << " failed, " << duration_text(c.audio_s) << " of audio, " << c.events
     << " event(s) in " << c.classes.size() << " class(es).\n\n### Events per class\n\n";
  if (c.classes.empty()) {
    os << "_No events._\n\n";
  } else {
    std::vector<std::pair<std::string, ClassStats>> cls(c.classes.begin(), c.classes.end());
    std::stable_sort(cls.begin(), cls.end(), [](const auto& a, const auto& b) { return a.second.total_s > b.second.total_s; });
    rows.clear();
    for (const auto& [label, s] : cls)
      rows.push_back({label, std::to_string(s.events), secs1(s.total_s), std::to_string(s.files.size()),
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
      rows.push_back({key.first, key.second, std::to_string(p.count), secs1(p.total_s), std::to_string(p.files.size())});
    md_table(os, {"Class A", "Class B", "Overlaps", "Total overlap (s)", "Files"}, rows, {false, false, true, true, true});
    if (c.pair_total > c.pairs.size()) os << "_" << c.pair_total - c.pairs.size() << " further pair(s) not listed._\n\n";
  }

  os << "## Anomalies and difficulties\n\n";
  std::map<std::string, size_t> files;
  const auto counts = anomaly_counts(c, &files);
  if (counts.empty()) {
    os << "_None found._\n\n";
  } else {
    rows.clear();
    for (const auto& [kind, n] : counts) rows.push_back({kind, std::to_string(n), std::to_string(files[kind])});
    md_table(os, {"Kind (severity)", "Findings", "Files"}, rows, {false, true, true});
  }
  for (const auto& f : c.files)
    if (!f.r->ok()) os << "- **" << md_escape(f.name) << "** could not be processed: " << md_escape(f.r->error) << "\n";
  os << "\n";

  for (const auto& f : c.files) {
    const FileResult& r = *f.r;
    os << "## " << f.n << ". " << md_escape(f.name) << "\n\n`" << valid_utf8(r.path) << "`\n\n";
    if (!r.ok()) os << "**Error:** " << md_escape(r.error) << "\n\n";
    os << "Duration " << duration_text(r.info.duration_s) << "; " << md_escape(format_text(r)) << "; "
       << md_escape(level_text(r.quality)) << "; SNR " << snr_text(r.quality) << ".\n\n";
    if (f.pictures) {
      if (!f.timeline.empty()) os << "![Spectrogram and events](" << picture_file(f.n, "timeline") << ")\n\n";
      if (!f.heatmap.empty()) os << "![Frame scores of the top classes](" << picture_file(f.n, "scores") << ")\n\n";
      else if (r.ok()) os << "_No frame scores were stored for this file, so there is no score heat-map._\n\n";
    }
    os << "### Events\n\n";
    if (r.events.empty()) {
      os << "_No events._\n\n";
    } else {
      rows.clear();
      for (const auto& e : r.events)
        rows.push_back({e.label, secs(e.onset), secs(e.offset), secs(e.offset - e.onset), conf(e.confidence)});
      md_table(os, {"Label", "Onset (s)", "Offset (s)", "Duration (s)", "Confidence"}, rows,
               {false, true, true, true, true});
    }
    os << "### Anomalies and difficulties\n\n";
    if (f.anomalies.empty() && r.warnings.empty()) {
      os << "_None found._\n\n";
    } else {
      rows.clear();
      for (const auto& a : f.anomalies) rows.push_back({a.severity, a.kind, secs(a.start_s), secs(a.end_s), a.message});
      for (const auto& w : r.warnings) rows.push_back({"warning", "decoder", "", "", w});
      md_table(os, {"Severity", "Kind", "Start (s)", "End (s)", "Finding"}, rows, {false, false, true, true, false});
    }
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

}  // namespace

std::vector<std::string> write_report(const std::string& out_dir, const std::vector<FileResult>& results,
                                      const RunInfo& info, const ReportConfig& config) {
  config.pictures.validate();
  config.review.validate();
  const fs::path dir(out_dir);
  std::error_code ec;
  fs::create_directories(dir / "report", ec);
  if (ec || !fs::is_directory(dir / "report"))
    throw Error(out_dir + ": cannot create the report folder (" +
                (ec ? ec.message() : std::string("a file of that name exists")) + "); choose a writable folder");

  const Content content = build(results, info, config);
  std::vector<std::string> written;
  for (const auto& f : content.files) {
    if (!f.timeline.empty()) write_text(dir / picture_file(f.n, "timeline"), f.timeline.png, written);
    if (!f.heatmap.empty()) write_text(dir / picture_file(f.n, "scores"), f.heatmap.png, written);
  }
  write_text(dir / "report.html", render_html(content, info), written);
  write_text(dir / "report.md", render_markdown(content, info), written);
  write_run_info((dir / "run.json").string(), info);
  written.push_back((dir / "run.json").string());
  return written;
}

void write_run_info(const std::string& path, const RunInfo& info) {
  nlohmann::ordered_json j = {{"model_name", info.model_name},
                              {"checkpoint_path", info.checkpoint_path},
                              {"checkpoint_sha256", info.checkpoint_sha256},
                              {"labels_path", info.labels_path},
                              {"label_count", info.label_count},
                              {"version", earmark_version(info)},
                              {"torch_version", info.torch_version},
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
