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
// Pictures are drawn for ReportConfig::max_picture_files files only (those with the most to look
// at), and a run of more than ReportConfig::page_files files gets its per-file sections on
// pages (report/files-<k>.html), so that a folder of thousands of files still gives an HTML page
// a browser opens at once; the other files get their tables and a note.
#pragma once

#include <cstdint>
#include <memory>
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
  std::string calibration;  // the false-alarm calibration in use, one sentence (empty: off)
};

struct ReportConfig {
  PictureConfig pictures;
  // Pictures (timeline + score heat-map) are drawn for this many files at most: those with the
  // most to look at (error-level findings, then warnings, then the most events; ties: the
  // earlier file), so that a run of thousands of files does not spend its time drawing; every
  // file still gets its tables. picture_inputs (paths, file names or stems) are drawn as well.
  size_t max_picture_files = 10;
  std::vector<std::string> picture_inputs;
  // A run of more than this many files gets its per-file sections on pages of this many files
  // (report/files-<k>.html) so that report.html stays quick to open; 0: all in report.html.
  size_t page_files = 200;
  // When a file's anomalies hold no detection-side findings (low_confidence, flicker, overlap,
  // background_only, unknown_sound), the report runs detect::review_detections with this
  // config and lists its findings too; set run_review = false to list only what is given.
  bool run_review = true;
  detect::ReviewConfig review;
  // Overall statistics: at most this many class pairs in the co-occurrence table.
  size_t max_pairs = 50;
};

// Where the report's per-file spools stand after a number of files (a resumed run cuts them there).
struct ReportPositions {
  uint64_t html = 0, md = 0;
};

// The report of a run built as files finish: each file's section goes to a spool under
// <out_dir>/report/ at once, and only what the run-wide parts need (a small row per file,
// class and anomaly counts, the picture candidates) stays in memory. finish() writes
// report.html (+ report/files-<k>.html pages for a large run), report.md, the pictures and
// run.json, and removes the spools.
class ReportStream {
 public:
  // total_files: how many files the run will have (decides whether sections go on pages).
  // resume_at: keep the spools' first bytes (a resumed run; replay() the files kept first).
  ReportStream(const std::string& out_dir, size_t total_files, const ReportConfig& config = {},
               const ReportPositions* resume_at = nullptr);
  ~ReportStream();
  ReportStream(const ReportStream&) = delete;
  ReportStream& operator=(const ReportStream&) = delete;

  // The next file (numbered from 1 in the order added).
  void add(const FileResult& result);
  // A file whose section is already in the kept spools (a resumed run): counted in the
  // statistics and the index, not written again and not drawn.
  void replay(const FileResult& result);
  size_t files() const;
  ReportPositions positions();
  // Writes the report; returns the paths written. Throws earmark::Error naming the path.
  std::vector<std::string> finish(const RunInfo& info);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes <out_dir>/report.html, <out_dir>/report.md, the Markdown's pictures under
// <out_dir>/report/ and the run's metadata as <out_dir>/run.json (so that `earmark report`
// can regenerate the methodology later). Creates the folders. Returns the paths written.
// Throws earmark::Error naming the path that could not be written. (A ReportStream fed every result.)
std::vector<std::string> write_report(const std::string& out_dir, const std::vector<FileResult>& results,
                                      const RunInfo& info, const ReportConfig& config = {});

// run.json: RunInfo as JSON ({"model_name", "checkpoint_path", ..., "inputs": [...]}).
void write_run_info(const std::string& path, const RunInfo& info);
// Reads run.json back; missing keys keep their defaults. Throws earmark::Error naming the
// path for a file that cannot be read or is not such JSON.
RunInfo read_run_info(const std::string& path);

}  // namespace earmark::report
