// report: event lists written as CSV, JSON, Audacity labels and DCASE TSV.
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "earmark/earmark.hpp"

namespace earmark::report {

// Numbers are written with '.' as the decimal point whatever the locale; times and CSV/TSV
// confidences with 3 decimals (milliseconds). Lines end in "\n". Files whose result has an
// error have no rows in CSV/TSV/Audacity output (the JSON carries their error).

// file,onset,offset,label,confidence   (header line, times with 3 decimals, RFC 4180 quoting)
void write_csv(std::ostream& os, const std::vector<FileResult>& results);
// start\tend\tlabel   (one file's events; no header; tabs/newlines in labels become spaces)
void write_audacity(std::ostream& os, const FileResult& result);
// filename\tonset\toffset\tevent_label   (header line; filename is the file's base name)
void write_dcase_tsv(std::ostream& os, const std::vector<FileResult>& results);
// {"earmark_version": "...", "files": [{"path", "ok", "error" (null when ok),
//   "info": {"container", "codec", "source_rate", "source_channels", "duration_s"},
//   "events": [{"onset", "offset", "label", "confidence", "also": [{"label", "confidence"}]}],
//     ("also": the labels rolled up into this event, events.rollup; empty with all labels)
//   "frame_scores"?: {"hop_s", "labels": [...], "values": [[one row per frame]...]},
//   "quality"?: {"peak_dbfs", "rms_dbfs", "loudness_lufs", "dc_offset", "noise_floor_dbfs", "snr_db",
//                "noise_colour", "hum_hz", "clipped_samples", "conditioning"}   (when measured),
//   "anomalies"?: [{"kind", "severity", "start_s", "end_s", "message"}], "warnings"?: [...],
//   "spectrogram"?: {"bins", "columns", "seconds_per_column", "min", "max", "encoding": "u8_base64",
//                    "data": base64 of bins x columns bytes, bin-major, value = min + (max-min)*byte/255}
//   (with frame scores only)}]}
// Times are rounded to milliseconds; confidences and frame scores are written as the shortest
// decimal that reads back as the same float. Indented unless frame scores make it large.
void write_json(std::ostream& os, const std::vector<FileResult>& results, bool frame_scores);

// Reads write_json's output back (path, error, info, events, and frame scores, quality,
// anomalies, warnings and spectrogram when present), e.g. for evaluation or `earmark report`. Throws earmark::Error naming `origin` for text that is not such JSON.
std::vector<FileResult> read_json(std::istream& is, const std::string& origin = "events.json");

// The output name of each input: the input's file name without extension, made portable;
// inputs sharing a name (compared case-insensitively) get x, x-2, x-3... in the order they are
// named, and names of the run-wide files ("events") are reserved. The one place output names
// are chosen (used by write_outputs and OutputStream).
class OutputNames {
 public:
  OutputNames();
  std::string next(const std::string& input_path);

 private:
  std::vector<std::string> taken_;  // lower-case, sorted
};

// Byte sizes of the run-wide outputs after a number of files: where a resumed run cuts them.
struct OutputPositions {
  uint64_t csv = 0, json = 0, tsv = 0;
};

// The outputs of a run written as each file finishes (a streaming write_outputs): events.csv
// and events.tsv get the file's rows appended, events.json gets the file's record and is closed
// again ("]}") in the same write, so that after every add() each file parses and holds every
// file added so far; per-file outputs are written to a temporary name and renamed. Memory stays
// that of one file whatever the number of files.
class OutputStream {
 public:
  // Starts the run-wide files afresh, or with `resume_at`, keeps the first bytes of each (as
  // positions() returned them after the last file kept) and goes on from there; `names` are
  // the output names of the files kept, in order.
  OutputStream(const std::string& out_dir, const OutputConfig& cfg, const OutputPositions* resume_at = nullptr,
               const std::vector<std::string>& kept_inputs = {});
  ~OutputStream();
  OutputStream(const OutputStream&) = delete;
  OutputStream& operator=(const OutputStream&) = delete;

  // Writes one file's outputs; returns the paths written for it (per-file outputs). Throws
  // earmark::Error naming the path that could not be written.
  std::vector<std::string> add(const FileResult& result);
  // Paths of the run-wide files (events.csv, events.json, events.tsv as asked).
  const std::vector<std::string>& run_files() const { return run_files_; }
  OutputPositions positions() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> run_files_;
};

// Writes the requested formats (csv, json, audacity, tsv) for a run into `out_dir`:
// events.csv, events.json, events.tsv and, per file, <name>.labels.txt (+ <name>.csv/.json
// when per_file). Creates the folder. Returns the paths written.
// <name> is the input's file name without extension; inputs sharing a name (a/x.wav,
// b/x.flac; compared case-insensitively) get x, x-2, x-3... in input order, and a name whose
// per-file outputs would be one of kRunWideFiles (run.wav -> run.json) gets the next free
// suffix instead, so per-file outputs never overwrite run-wide ones, whatever the inputs are
// called. Failed inputs get no .labels.txt/.csv but do get a .json.
// Throws earmark::Error naming the path that could not be created or written.

// Every name a run writes into its output folder besides the per-file outputs: this
// function's run-wide files and the report's (report::write_report). A writer that adds a
// run-wide file adds its name here; tests/test_writers.cpp checks a whole run against it.
inline const std::vector<std::string> kRunWideFiles = {"events.csv", "events.json", "events.tsv", "run.json",
                                                       "report.html", "report.md", "report"};
// The endings of the per-file outputs appended to a file's <name>.
inline const std::vector<std::string> kPerFileSuffixes = {".labels.txt", ".csv", ".json"};

std::vector<std::string> write_outputs(const std::string& out_dir, const std::vector<FileResult>& results,
                                       const OutputConfig& cfg);

}  // namespace earmark::report
