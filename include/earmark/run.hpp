// Earmark runs: a whole detection run, inputs -> detect -> review -> outputs -> report, as
// `earmark detect`, `earmark report` and `earmark serve` do it.
//
//   earmark::RunOptions o;
//   o.inputs = {"recordings/"};
//   o.out_dir = "out";
//   earmark::RunSummary s = earmark::run_detect(earmark::Config{}, o);
//
// Results are streamed: each file's events go to the outputs (events.csv/.json/.tsv, per-file
// labels) as soon as the file is done, in input order, and the run keeps only what the summary
// and the report need, so memory does not grow with the number of files. A progress file
// (<out>/run.progress.jsonl) records each finished file; a run stopped half way leaves valid
// outputs for the files done, and RunOptions::resume goes on from there.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"

namespace earmark {

// The files of a run: files as given, folders searched recursively for audio files (sorted),
// duplicates dropped. A folder without audio files adds a line to `errors` (run_detect lists it as a
// failed input of its own).
std::vector<std::string> expand_inputs(const std::vector<std::string>& paths, std::vector<std::string>& errors);

// The labels of a model (AudioSet: 527, in output order) without loading the network.
std::vector<LabelInfo> model_labels(const ModelConfig& model);

// What a run records about itself (run.json, the report's methodology). Filled in one place:
// describe_run().
struct RunMetadata {
  std::string model_name, checkpoint_path, checkpoint_sha256, labels_path;
  std::string config_yaml;  // effective configuration (Config::to_yaml())
  std::string started_at;   // ISO 8601 UTC
  double wall_s = 0;
  std::vector<std::string> inputs;  // what the user gave (files or folders)
  size_t label_count = 0;
  std::string torch_version;
  std::string calibration;  // Detector::calibration(): the false-alarm calibration in use
};
// The metadata of a run made with `detector` (model, checkpoint, labels, effective config).
RunMetadata describe_run(const Detector& detector, const std::vector<std::string>& inputs);
// The current time as ISO 8601 UTC ("2026-01-02T03:04:05Z").
std::string utc_now();

// The review step: adds the detection-side findings (low confidence, flicker, overlap, ...)
// to a successful result's anomalies, judged against the thresholds the events were found
// with (`events`).
void review_result(FileResult& result, const EventsConfig& events);

struct ReportOptions {
  bool enabled = true;
  // Pictures for this many files at most (those with the most to look at), plus the files
  // named here (paths, file names or stems).
  size_t picture_files = 10;
  std::vector<std::string> pictures_for;
  int top_classes = 10;  // classes in each score heat-map
  // Runs of more than this many files get their per-file sections on pages of this size.
  size_t page_files = 200;
};

// The end of a run for results made elsewhere (e.g. by the service's workers): outputs and
// report written as results are added, in the order added. Results are reviewed (when not
// already) against config.events.
class RunWriter {
 public:
  // config: the effective configuration of the detection (its events thresholds judge the
  // review; its output section chooses the formats). total_files: the number of add() calls
  // to come (a large run gets its report on pages).
  RunWriter(const std::string& out_dir, const Config& config, size_t total_files, const ReportOptions& report = {});
  ~RunWriter();
  RunWriter(const RunWriter&) = delete;
  RunWriter& operator=(const RunWriter&) = delete;
  void add(FileResult result);
  // Writes the report (when enabled) and run.json; returns the paths written by the run.
  std::vector<std::string> finish(const RunMetadata& metadata);

 private:
  friend struct RunAccess;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct RunProgress {
  size_t done = 0, total = 0;  // files finished (resumed ones included) of all
  const FileResult* result = nullptr;  // the file just finished (null for resumed files)
  double audio_s = 0, wall_s = 0;      // of this process
};

struct RunOptions {
  std::vector<std::string> inputs;  // files or folders
  std::string out_dir = "earmark-out";
  // Go on with a run stopped half way in out_dir (same inputs and configuration): the files it
  // finished are kept, the others detected. Without a progress file in out_dir, a fresh run.
  bool resume = false;
  // Process only files index, index+count, ... of the sorted input list.
  size_t shard_index = 0, shard_count = 1;
  // Also write each file's frame scores as <out>/<stem>.scores.tsv (for `earmark eval --scores`).
  bool score_tables = false;
  // Baseline instead of the event detector (the top label of each 0.48 s step); config.frames
  // is replaced by the naive settings.
  bool naive = false;
  ReportOptions report;
  // Called after each file is finished (in input order), from the calling thread.
  std::function<void(const RunProgress&)> progress;
};

struct RunSummary {
  size_t files = 0, failed = 0, events = 0;
  size_t resumed = 0;  // files kept from the stopped run
  double audio_s = 0, wall_s = 0;
  std::vector<std::string> written;
};

// A whole detection run with config (model.threads >= 2: that many files in parallel, each on
// one thread, when there are enough files). Throws earmark::Error for what stops the whole run
// (model, output folder); a bad file is a failed file of the summary.
RunSummary run_detect(const Config& config, const RunOptions& options);

// `earmark report RUN_DIR`: the report of an earlier run regenerated from its events.json and
// run.json, judged with the run's own thresholds (from the configuration it recorded; a run
// without one gets no detection review rather than one with thresholds it never used).
// Returns the number of files.
size_t report_run(const std::string& run_dir, const std::string& out_dir, const ReportOptions& options);

}  // namespace earmark
