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
  ModelArgs model;
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
  cmd->add_option("--target-per-hour", o->cal.targets.target_per_hour, "false alarms allowed per class per hour of background")
      ->check(number_in(0, 1e6, "must be a rate of 0 or more"))
      ->capture_default_str();
  cmd->add_option("--min-false-alarms", o->cal.targets.min_false_alarms,
                  "raise a class only if it fired at least this often at the default threshold")
      ->check(number_in(0, 1e9, "must be a count, 0 or more"))
      ->capture_default_str();
  cmd->add_option("--prior-count", o->cal.targets.prior_count,
                  "confidence map: pseudo-detections pulling each class toward the shared curve")
      ->check(number_in(0, 1e9, "must be a count, 0 or more"))
      ->capture_default_str();
  cmd->add_option("--min-recall", o->cal.targets.min_recall, "recall check: keep at least this share of a class's clips")
      ->check(number_in(0, 1, "must be a share between 0 and 1"))
      ->capture_default_str();
  cmd->add_option("--max-threshold", o->cal.targets.max_on, "never raise a threshold above this")
      ->check(number_in(0.01, 1, "must be a score between 0.01 and 1"))
      ->capture_default_str();
  o->model.add_to(*cmd);
  cmd->add_flag("-q,--quiet", o->quiet, "no progress");
  cmd->callback([o] {
    CalibrateOptions& c = o->cal;
    c.config = o->model.load();
    auto line = std::make_shared<ProgressLine>("calibrate", !o->quiet && isatty(fileno(stderr)));
    c.log = [line](const std::string& s) { line->message(s); };
    if (line->shown())
      c.progress = [line](const std::string& stage, size_t done, size_t total) { line->update(stage, done, total); };
    std::cout << calibrate(c).text;
  });
}

}  // namespace earmark::cli
