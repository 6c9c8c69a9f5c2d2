// earmark detect PATH... : files and folders in, events out (CSV, JSON, Audacity labels, TSV).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include <fmt/format.h>

#include "commands.hpp"
#include "earmark/earmark.hpp"
#include "earmark/run.hpp"

namespace earmark::cli {

namespace fs = std::filesystem;

// For `earmark tune`: the files of the inputs, an empty folder as a failed result.
std::vector<std::string> expand_inputs(const std::vector<std::string>& paths, std::vector<FileResult>& failures) {
  std::vector<std::string> errors;
  auto files = earmark::expand_inputs(paths, errors);
  for (const auto& e : errors) {
    FileResult r;
    r.path = e.substr(0, e.find(": no audio files"));
    r.error = e;
    failures.push_back(r);
  }
  return files;
}

namespace {

struct DetectOptions {
  RunOptions run;
  ModelArgs model;
  std::string method;
  std::string calibration;
  std::string shard;
  std::vector<std::string> formats;
  std::vector<std::string> heads;
  bool head_only = false;
  double threshold = -1;
  bool frame_scores = false;
  bool raw_scores = false;
  bool all_labels = false;
  bool quiet = false;
  bool no_report = false;
};

void progress(size_t done, size_t total, const std::string& name, double audio_s, double wall_s) {
  const int width = 24;
  const int filled = total ? int(width * done / total) : width;
  std::string bar(size_t(filled), '#');
  bar.resize(size_t(width), '.');
  std::string shown = fs::path(name).filename().string();
  if (shown.size() > 32) shown = shown.substr(0, 29) + "...";
  std::fprintf(stderr, "\r[%s] %zu/%zu  %-32s  %6.1fx real time ", bar.c_str(), done, total, shown.c_str(),
               wall_s > 0 ? audio_s / wall_s : 0.0);
  std::fflush(stderr);
}

// --shard INDEX/COUNT: this process takes files INDEX, INDEX+COUNT, INDEX+2*COUNT, ... of the sorted
// input list, so COUNT processes (e.g. the pods of an indexed Kubernetes Job) cover every file once.
void parse_shard(const std::string& spec, RunOptions& run) {
  const std::string usage = "--shard " + spec + ": expected INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/4 .. 3/4";
  const auto slash = spec.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == spec.size()) throw Error(usage);
  auto number = [&](const std::string& t) {
    if (t.size() > 9 || t.find_first_not_of("0123456789") != std::string::npos) throw Error(usage);
    return size_t(std::stoul(t));
  };
  run.shard_index = number(spec.substr(0, slash));
  run.shard_count = number(spec.substr(slash + 1));
  if (run.shard_count == 0 || run.shard_index >= run.shard_count) throw Error(usage);
}

int run_detect(DetectOptions& o) {
  if (!o.shard.empty()) parse_shard(o.shard, o.run);
  Config cfg = o.model.load();
  if (!o.method.empty()) cfg.frames.method = o.method;
  if (o.threshold >= 0) {
    cfg.events.threshold_on = o.threshold;
    cfg.events.threshold_off = std::min(cfg.events.threshold_off, o.threshold);
  }
  if (!o.formats.empty()) cfg.output.formats = o.formats;
  if (o.frame_scores) cfg.output.frame_scores = true;
  if (o.run.score_tables && !o.raw_scores && !o.run.naive) cfg.output.detection_scores = true;
  if (o.all_labels) cfg.events.rollup = false;
  if (!o.calibration.empty()) cfg.events.calibration = o.calibration;
  cfg.model.heads.insert(cfg.model.heads.end(), o.heads.begin(), o.heads.end());
  if (o.head_only) cfg.model.head_only = true;
  o.run.report.enabled = !o.no_report;

  const bool tty = !o.quiet && isatty(fileno(stderr));
  o.run.progress = [&](const RunProgress& p) {
    if (tty) progress(p.done, p.total, p.result ? p.result->path : std::string(), p.audio_s, p.wall_s);
    if (p.result && !p.result->ok()) {
      if (tty) std::fprintf(stderr, "\n");
      std::cerr << "earmark: " << p.result->error << "\n";
    }
  };
  if (!o.quiet && o.run.shard_count > 1) {
    std::vector<std::string> errors;
    const size_t all = earmark::expand_inputs(o.run.inputs, errors).size();
    std::cerr << fmt::format("earmark: shard {}/{}: {} of {} file(s)\n", o.run.shard_index, o.run.shard_count,
                             all / o.run.shard_count + (o.run.shard_index < all % o.run.shard_count ? 1 : 0), all);
  }
  const RunSummary s = earmark::run_detect(cfg, o.run);
  if (tty) std::fprintf(stderr, "\n");
  if (!o.quiet) {
    if (s.resumed)
      std::cerr << fmt::format("earmark: resumed: {} file(s) were done before\n", s.resumed);
    std::cerr << fmt::format("earmark: {} file(s), {} failed, {} event(s), {:.1f} s of audio in {:.1f} s ({:.0f}x real time); results in {}\n",
                             s.files, s.failed, s.events, s.audio_s, s.wall_s, s.wall_s > 0 ? s.audio_s / s.wall_s : 0.0,
                             o.run.out_dir);
  }
  return s.failed ? 1 : 0;
}

}  // namespace

void add_detect_command(CLI::App& app) {
  auto o = std::make_shared<DetectOptions>();
  auto* cmd = app.add_subcommand("detect", "find sound events in audio files and folders");
  cmd->add_option("paths", o->run.inputs, "audio files or folders (searched recursively)")->required();
  cmd->add_option("-o,--out", o->run.out_dir, "output folder")->capture_default_str();
  cmd->add_flag("--resume", o->run.resume,
                "go on with a run that was stopped in the output folder (same inputs and settings): keep the files "
                "it finished, detect the rest");
  o->model.add_to(*cmd, "YAML or JSON configuration file");
  cmd->add_option("--method", o->method, "frame scores: columns (default) or windows");
  cmd->add_option("--shard", o->shard,
                  "INDEX/COUNT: process only files INDEX, INDEX+COUNT, ... of the sorted input list "
                  "(COUNT processes, e.g. an indexed Kubernetes Job, cover every file once)");
  cmd->add_option("--threshold", o->threshold, "detection threshold for every class (0..1)")
      ->check(config_number("events.threshold_on"));
  cmd->add_option("--head", o->heads, "custom-class head folder from `earmark train` (repeatable; adds its classes)")
      ->allow_extra_args(false);
  cmd->add_flag("--head-only", o->head_only, "report only the heads' classes, not the AudioSet ones");
  cmd->add_option("--format", o->formats, "output formats: csv, json, audacity, tsv")->delimiter(',');
  cmd->add_flag("--frame-scores", o->frame_scores, "include the frame score grid in the JSON output");
  cmd->add_flag("--scores", o->run.score_tables,
                "also write each file's scores as <out>/<stem>.scores.tsv (for eval --scores): the whole detector's "
                "(the highest threshold at which each 20 ms step is inside a reported event)");
  cmd->add_flag("--raw-scores", o->raw_scores, "with --scores: the network's frame score grid instead");
  cmd->add_option("--calibration", o->calibration,
                  "false-alarm calibration table from `earmark calibrate` (none: off; default: the built-in one)");
  cmd->add_flag("--all-labels", o->all_labels,
                "report every label's own events (no roll-up of related labels into one name per sound)");
  cmd->add_flag("--naive", o->run.naive,
                "baseline instead of the event detector: the top label of each 0.48 s step (0.96 s windows) "
                "if its score >= the threshold, same-label steps merged");
  cmd->add_flag("-q,--quiet", o->quiet, "no progress or summary");
  cmd->add_flag("--no-report", o->no_report, "do not write report.html / report.md");
  cmd->add_option("--pictures", o->run.report.picture_files,
                  "draw report pictures for this many files at most: those with the most to look at")
      ->capture_default_str();
  cmd->add_option("--pictures-for", o->run.report.pictures_for,
                  "also draw report pictures for these inputs (path, file name or stem; repeatable)");
  cmd->callback([o] { exit_code = run_detect(*o); });
}

void add_labels_command(CLI::App& app) {
  auto cfg = std::make_shared<ModelConfig>();
  auto* cmd = app.add_subcommand("labels", "list the labels the model knows (index, AudioSet id, name)");
  cmd->add_option("-m,--model", cfg->name, "model name or checkpoint path")->capture_default_str();
  cmd->add_option("--models-dir", cfg->models_dir, "folder with the checkpoints (default: $EARMARK_MODELS)");
  cmd->callback([cfg] {
    for (const auto& l : model_labels(*cfg))
      std::cout << l.index << "\t" << l.mid << "\t" << l.name << "\n";
  });
}

}  // namespace earmark::cli
