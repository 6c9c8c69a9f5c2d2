// report: the human-readable report of a detection run, as one self-contained HTML file
// (pictures embedded as data: URIs, no network needed) and as Markdown.
//
//   report::write_report(out_dir, results, run_info);   // after write_outputs
//
// Layout: report.html holds everything in one page: the methodology, an index table of the
// files (each row links to the file's section, anchor #file-<n>, n counting from 1 in input
// order), overall statistics, the anomalies summary, then one section per file with its
// pictures, events table (<table id="events-<n>">, one <tr class="event"> per event) and
// anomalies. report.md has the same content; its pictures are PNG files under report/
// (report/file-<n>-timeline.png, report/file-<n>-scores.png) referenced by relative path.
// Pictures are drawn for the first ReportConfig::max_picture_files files only, so that a
// folder of thousands of files still gives an HTML page a browser can open; later files get
// their tables and a note.
#pragma once

#include <string>
#include <vector>

#include "detect/review.hpp"
#include "earmark/earmark.hpp"
#include "report/pictures.hpp"

namespace earmark::report {

struct RunInfo {
  std::string model_name, checkpoint_path, checkpoint_sha256, labels_path;
  std::string config_yaml;  // effective configuration (Config::to_yaml())
  std::string version;      // earmark version; empty: earmark::version()
  std::string started_at;   // e.g. ISO 8601 UTC
  double wall_s = 0;
  std::vector<std::string> inputs;  // what the user gave (files or folders)
  // Optional extras: the model's label count (0: taken from the frame scores when present)
  // and the LibTorch version string (empty: not listed).
  size_t label_count = 0;
  std::string torch_version;
};

struct ReportConfig {
  PictureConfig pictures;
  size_t max_picture_files = 200;
  // When a file's anomalies hold no detection-side findings (low_confidence, flicker, overlap,
  // background_only, unknown_sound), the report runs detect::review_detections with this
  // config and lists its findings too; set run_review = false to list only what is given.
  bool run_review = true;
  detect::ReviewConfig review;
  // Overall statistics: at most this many class pairs in the co-occurrence table.
  size_t max_pairs = 50;
};

// Writes <out_dir>/report.html, <out_dir>/report.md, the Markdown's pictures under
// <out_dir>/report/ and the run's metadata as <out_dir>/run.json (so that `earmark report`
// can regenerate the methodology later). Creates the folders. Returns the paths written.
// Throws earmark::Error naming the path that could not be written.
std::vector<std::string> write_report(const std::string& out_dir, const std::vector<FileResult>& results,
                                      const RunInfo& info, const ReportConfig& config = {});

// run.json: RunInfo as JSON ({"model_name", "checkpoint_path", ..., "inputs": [...]}).
void write_run_info(const std::string& path, const RunInfo& info);
// Reads run.json back; missing keys keep their defaults. Throws earmark::Error naming the
// path for a file that cannot be read or is not such JSON.
RunInfo read_run_info(const std::string& path);

}  // namespace earmark::report
