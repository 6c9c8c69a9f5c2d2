// earmark calibrate: per-class thresholds for a target false-alarm rate, measured on
// background-only audio (a user's room tone is the best), and optionally the confidence map,
// fitted on labelled soundscapes. Writes a table that `earmark detect --calibration` (or
// events.calibration) uses (the work is earmark::calibrate, include/earmark/calibrate.hpp;
// docs/false-alarms.md has the method).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "earmark/calibrate.hpp"
#include "earmark/earmark.hpp"

namespace earmark::cli {

namespace {

struct CalibrateArgs {
  CalibrateOptions cal;
  std::string config_file, model, models_dir;
  int threads = -1;
  bool quiet = false;
};

}  // namespace

void add_calibrate_command(CLI::App& app) {
  auto o = std::make_shared<CalibrateArgs>();
  auto* cmd = app.add_subcommand(
      "calibrate", "per-class thresholds for a target false-alarm rate, measured on background-only audio (your room "
                   "tone); optionally the confidence map from labelled soundscapes. Writes a table for detect --calibration");
  cmd->add_option("backgrounds", o->cal.backgrounds, "background recordings with no events in them (files or folders)");
  cmd->add_flag("--synthetic", o->cal.synthetic, "add built-in backgrounds: noise colours and hum at three levels, silence");
  cmd->add_option("--events", o->cal.events_csv, "labelled event clips for the recall check: CSV with file and "
                                             "audioset_labels (';'-separated) columns, paths relative to it")
      ->check(CLI::ExistingFile);
  cmd->add_option("--clips-file", o->cal.clips_file, "only these rows (file column values, one per line) of --events")
      ->check(CLI::ExistingFile);
  cmd->add_option("--ref", o->cal.ref, "confidence map: reference events (DCASE TSV) of the --scapes files")
      ->check(CLI::ExistingFile);
  cmd->add_option("--map", o->cal.map, "confidence map: dataset class -> AudioSet labels (as for eval)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--scapes", o->cal.scapes, "confidence map: labelled audio files or folders")->expected(1, -1);
  cmd->add_option("-o,--out", o->cal.out, "where to write the table")->capture_default_str();
  cmd->add_option("--judged", o->cal.judged_csv,
                  "confidence map: also write the judged detections (label, score, confidence, right) as CSV");
  cmd->add_option("--target-per-hour", o->cal.target_per_hour, "false alarms allowed per class per hour of background")
      ->check(number_in(0, 1e6, "must be a rate of 0 or more"))
      ->capture_default_str();
  cmd->add_option("--min-false-alarms", o->cal.min_false_alarms,
                  "raise a class only if it fired at least this often at the default threshold")
      ->check(number_in(0, 1e9, "must be a count, 0 or more"))
      ->capture_default_str();
  cmd->add_option("--prior-count", o->cal.prior_count,
                  "confidence map: pseudo-detections pulling each class toward the shared curve")
      ->check(number_in(0, 1e9, "must be a count, 0 or more"))
      ->capture_default_str();
  cmd->add_option("--min-recall", o->cal.min_recall, "recall check: keep at least this share of a class's clips")
      ->check(number_in(0, 1, "must be a share between 0 and 1"))
      ->capture_default_str();
  cmd->add_option("--max-threshold", o->cal.max_on, "never raise a threshold above this")
      ->check(number_in(0.01, 1, "must be a score between 0.01 and 1"))
      ->capture_default_str();
  cmd->add_option("-c,--config", o->config_file, "base configuration (YAML or JSON)")->check(CLI::ExistingFile);
  cmd->add_option("-m,--model", o->model, "model name or checkpoint path");
  cmd->add_option("--models-dir", o->models_dir, "folder with the checkpoints (default: $EARMARK_MODELS)");
  cmd->add_option("-t,--threads", o->threads, "network threads (0: all cores)")->check(config_number("model.threads"));
  cmd->add_flag("-q,--quiet", o->quiet, "no progress");
  cmd->callback([o] {
    CalibrateOptions& c = o->cal;
    c.config = o->config_file.empty() ? Config{} : Config::from_file(o->config_file);
    if (!o->model.empty()) c.config.model.name = o->model;
    if (!o->models_dir.empty()) c.config.model.models_dir = o->models_dir;
    if (o->threads >= 0) c.config.model.threads = o->threads;
    // A message ends the progress line first, so that it gets a line of its own.
    auto mid_line = std::make_shared<bool>(false);
    c.log = [mid_line](const std::string& s) {
      std::cerr << (*mid_line ? "\n" : "") << "earmark calibrate: " << s << "\n";
      *mid_line = false;
    };
    if (!o->quiet && isatty(fileno(stderr)))
      c.progress = [mid_line](const std::string& stage, size_t done, size_t total) {
        if (done < total) {
          std::fprintf(stderr, "\rearmark calibrate: %s %zu/%zu ", stage.c_str(), done + 1, total);
          *mid_line = true;
        } else if (*mid_line) {
          std::fprintf(stderr, "\n");
          *mid_line = false;
        }
      };
    std::cout << calibrate(c).text;
  });
}

}  // namespace earmark::cli
