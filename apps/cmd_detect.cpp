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
#include "decode/decoder.hpp"
#include "detect/naive.hpp"
#include "model/network.hpp"
#include "eval/tsv.hpp"
#include "earmark/earmark.hpp"
#include "model/labels.hpp"
#include "model/registry.hpp"
#include "detect/review.hpp"
#include "report/report.hpp"
#include "report/writers.hpp"

namespace earmark::cli {

namespace fs = std::filesystem;

std::vector<std::string> expand_inputs(const std::vector<std::string>& paths, std::vector<FileResult>& failures) {
  std::vector<std::string> files;
  std::set<std::string> seen;
  auto add = [&](const fs::path& p) {
    const std::string s = p.lexically_normal().string();
    if (seen.insert(s).second) files.push_back(s);
  };
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> found;
      for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec) && decode::has_audio_extension(it->path().string())) found.push_back(it->path());
      }
      std::sort(found.begin(), found.end());
      if (found.empty()) {
        FileResult r;
        r.path = p;
        r.error = p + ": no audio files in this folder (looked for .wav, .flac, .ogg, .opus, .mp3, .m4a, ...)";
        failures.push_back(r);
      }
      for (const auto& f : found) add(f);
    } else {
      add(p);  // a missing or odd file gets its own error from the decoder
    }
  }
  return files;
}

namespace {

struct DetectOptions {
  std::vector<std::string> inputs;
  std::string out_dir = "earmark-out";
  std::string config_file;
  std::string model;
  std::string models_dir;
  std::string method;
  std::string shard;
  std::vector<std::string> formats;
  std::vector<std::string> heads;
  bool head_only = false;
  int threads = -1;
  double threshold = -1;
  bool frame_scores = false;
  bool scores = false;
  bool raw_scores = false;
  bool naive = false;
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

// <out>/<stem>.scores.tsv, the table `earmark eval --scores` reads (PSDS needs the scores).
void write_scores(const std::string& out_dir, const FileResult& r) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  const std::string path = (fs::path(out_dir) / eval::scores_file_name(r.path)).string();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  // The whole detector's scores where they were made (--scores), else the network's grid.
  if (f) eval::write_scores_tsv(f, r.detection_scores.frames > 0 ? r.detection_scores : r.scores);
  if (!f) throw Error(path + ": cannot write the score table; check that the folder is writable and has space");
}

// --shard INDEX/COUNT: this process takes files INDEX, INDEX+COUNT, INDEX+2*COUNT, ... of the sorted
// input list, so COUNT processes (e.g. the pods of an indexed Kubernetes Job) cover every file once.
struct Shard {
  size_t index = 0, count = 1;
};

Shard parse_shard(const std::string& spec) {
  const std::string usage = "--shard " + spec + ": expected INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/4 .. 3/4";
  const auto slash = spec.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == spec.size()) throw Error(usage);
  auto number = [&](const std::string& t) {
    if (t.size() > 9 || t.find_first_not_of("0123456789") != std::string::npos) throw Error(usage);
    return size_t(std::stoul(t));
  };
  Shard s{number(spec.substr(0, slash)), number(spec.substr(slash + 1))};
  if (s.count == 0 || s.index >= s.count) throw Error(usage);
  return s;
}

int run_detect(const DetectOptions& o) {
  const Shard shard = o.shard.empty() ? Shard{} : parse_shard(o.shard);
  Config cfg = o.config_file.empty() ? Config{} : Config::from_file(o.config_file);
  if (!o.model.empty()) cfg.model.name = o.model;
  if (!o.models_dir.empty()) cfg.model.models_dir = o.models_dir;
  if (o.threads >= 0) cfg.model.threads = o.threads;
  if (!o.method.empty()) cfg.frames.method = o.method;
  if (o.threshold >= 0) {
    cfg.events.threshold_on = o.threshold;
    cfg.events.threshold_off = std::min(cfg.events.threshold_off, o.threshold);
  }
  if (!o.formats.empty()) cfg.output.formats = o.formats;
  if (o.frame_scores) cfg.output.frame_scores = true;
  if (o.scores && !o.raw_scores && !o.naive) cfg.output.detection_scores = true;
  if (o.naive) cfg.frames = detect::naive_frames_config();
  cfg.model.heads.insert(cfg.model.heads.end(), o.heads.begin(), o.heads.end());
  if (o.head_only) cfg.model.head_only = true;

  const Detector det(cfg);
  std::vector<FileResult> results;
  auto files = expand_inputs(o.inputs, results);
  if (shard.count > 1) {
    std::vector<std::string> mine;
    for (size_t i = shard.index; i < files.size(); i += shard.count) mine.push_back(files[i]);
    if (!o.quiet)
      std::cerr << fmt::format("earmark: shard {}/{}: {} of {} file(s)\n", shard.index, shard.count, mine.size(), files.size());
    files = std::move(mine);
  }
  if (o.scores) {
    // Score tables are named by the audio's stem (that is how eval finds them): two inputs
    // with one stem would overwrite each other's table.
    std::map<std::string, std::string> by_name;
    for (const auto& f : files)
      if (auto [it, fresh] = by_name.emplace(eval::scores_file_name(f), f); !fresh)
        throw Error("--scores: " + it->second + " and " + f + " would both write " + it->first +
                    " (score tables are named by the file name without folder and extension); rename one or run "
                    "them separately");
  }
  for (const auto& r : results) std::cerr << "earmark: " << r.error << "\n";
  const bool tty = !o.quiet && isatty(fileno(stderr));
  const auto start = std::chrono::steady_clock::now();
  const std::time_t started = std::time(nullptr);
  const auto review = detect::ReviewConfig::from(det.config().events);
  double audio_s = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    FileResult r = det.detect_file(files[i]);
    if (o.naive && r.ok()) r.events = detect::naive_events(r.scores, det.config().events.threshold_on, r.info.duration_s);
    if (o.scores && r.ok()) write_scores(o.out_dir, r);
    audio_s += r.info.duration_s;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (tty) progress(i + 1, files.size(), files[i], audio_s, wall);
    if (r.ok()) {
      auto found = detect::review_detections(r, review);
      r.anomalies.insert(r.anomalies.end(), found.begin(), found.end());
    } else {
      if (tty) std::fprintf(stderr, "\n");
      std::cerr << "earmark: " << r.error << "\n";
    }
    results.push_back(std::move(r));
  }
  if (tty) std::fprintf(stderr, "\n");
  const auto written = report::write_outputs(o.out_dir, results, det.config().output);
  if (!o.no_report) {
    report::RunInfo info;
    info.model_name = det.config().model.name;
    info.checkpoint_path = det.checkpoint_path();
    info.checkpoint_sha256 = det.checkpoint_sha256();
    info.labels_path = det.labels_path();
    info.torch_version = model::torch_version();
    info.config_yaml = det.config().to_yaml();
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&started));
    info.started_at = when;
    info.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    info.inputs = o.inputs;
    info.label_count = det.labels().size();
    report::write_report(o.out_dir, results, info);
  }

  size_t failed = 0, events = 0;
  for (const auto& r : results) failed += r.ok() ? 0 : 1, events += r.events.size();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!o.quiet) {
    std::cerr << fmt::format("earmark: {} file(s), {} failed, {} event(s), {:.1f} s of audio in {:.1f} s ({:.0f}x real time); results in {}\n",
                             results.size(), failed, events, audio_s, wall, wall > 0 ? audio_s / wall : 0.0, o.out_dir);
  }
  return failed ? 1 : 0;
}

}  // namespace

void add_detect_command(CLI::App& app) {
  auto o = std::make_shared<DetectOptions>();
  auto* cmd = app.add_subcommand("detect", "find sound events in audio files and folders");
  cmd->add_option("paths", o->inputs, "audio files or folders (searched recursively)")->required();
  cmd->add_option("-o,--out", o->out_dir, "output folder")->capture_default_str();
  cmd->add_option("-c,--config", o->config_file, "YAML or JSON configuration file");
  cmd->add_option("-m,--model", o->model, "model name (mn04_as, mn10_as, ...) or path of a .pt checkpoint");
  cmd->add_option("--models-dir", o->models_dir, "folder with the checkpoints (default: $EARMARK_MODELS)");
  cmd->add_option("-t,--threads", o->threads, "network threads (0: all cores)")->check(config_number("model.threads"));
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
  cmd->add_flag("--scores", o->scores,
                "also write each file's scores as <out>/<stem>.scores.tsv (for eval --scores): the whole detector's "
                "(the highest threshold at which each 20 ms step is inside a reported event)");
  cmd->add_flag("--raw-scores", o->raw_scores, "with --scores: the network's frame score grid instead");
  cmd->add_flag("--naive", o->naive,
                "baseline instead of the event detector: the top label of each 0.48 s step (0.96 s windows) "
                "if its score >= the threshold, same-label steps merged");
  cmd->add_flag("-q,--quiet", o->quiet, "no progress or summary");
  cmd->add_flag("--no-report", o->no_report, "do not write report.html / report.md");
  cmd->callback([o] { exit_code = run_detect(*o); });
}

void add_labels_command(CLI::App& app) {
  auto cfg = std::make_shared<ModelConfig>();
  auto* cmd = app.add_subcommand("labels", "list the labels the model knows (index, AudioSet id, name)");
  cmd->add_option("-m,--model", cfg->name, "model name or checkpoint path")->capture_default_str();
  cmd->add_option("--models-dir", cfg->models_dir, "folder with the checkpoints (default: $EARMARK_MODELS)");
  cmd->callback([cfg] {
    for (const auto& l : model::read_labels(model::resolve_model(*cfg).labels))
      std::cout << l.index << "\t" << l.mid << "\t" << l.name << "\n";
  });
}

}  // namespace earmark::cli
