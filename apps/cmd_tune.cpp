// earmark tune: per-class thresholds and median filter lengths fitted on labelled audio,
// written as a configuration that `earmark detect --config` takes (the work is earmark::tune,
// include/earmark/tune.hpp).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "earmark/earmark.hpp"
#include "earmark/tune.hpp"

namespace earmark::cli {

namespace {

struct TuneArgs {
  TuneOptions tune;
  std::string config_file, model, models_dir;
  int threads = -1;
  bool quiet = false;
};

}  // namespace

void add_tune_command(CLI::App& app) {
  auto o = std::make_shared<TuneArgs>();
  auto* cmd = app.add_subcommand("tune", "fit per-class thresholds and median filters on labelled audio; writes a "
                                         "config for detect --config");
  cmd->add_option("paths", o->tune.inputs, "audio files or folders (searched recursively)")->required();
  cmd->add_option("--ref", o->tune.ref, "reference events, DCASE TSV: filename, onset, offset, event_label")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--map", o->tune.map, "dataset class -> AudioSet labels (as for eval); without it the reference "
                                   "labels must be AudioSet labels")
      ->check(CLI::ExistingFile);
  cmd->add_option("-c,--config", o->config_file, "base configuration (YAML or JSON)")->check(CLI::ExistingFile);
  cmd->add_option("-o,--out", o->tune.out, "where to write the tuned configuration")->capture_default_str();
  cmd->add_option("--holdout", o->tune.holdout, "share of the files held out for the before/after check")
      ->check(number_in(0, 0.9, "must be a share between 0 and 0.9"))
      ->capture_default_str();
  cmd->add_option("--seed", o->tune.seed, "seed of the tune/held-out split")->capture_default_str();
  cmd->add_option("--thresholds", o->tune.thresholds, "on-thresholds to try (default 0.05,0.10,...,0.90)")
      ->check(number_in(0, 1, "must be scores between 0 and 1"))
      ->delimiter(',');
  cmd->add_option("--off-ratio", o->tune.off_ratio, "off-threshold = on x this")
      ->check(number_in(0, 1, "must be between 0 and 1"))
      ->capture_default_str();
  cmd->add_option("--medians", o->tune.medians, "median filter lengths to try, in frames (odd; default 1,3,5,7)")
      ->check(number_in(1, 1001, "must be odd frame counts between 1 and 1001"))
      ->delimiter(',');
  cmd->add_option("--min-events", o->tune.min_events,
                  "classes with fewer reference events in the tune split keep the base setting")
      ->check(number_in(0, 1e9, "must be a count, 0 or more"))
      ->capture_default_str();
  cmd->add_option("--collar", o->tune.collar, "event-based onset collar, seconds (as eval)")
      ->check(number_in(0, 3600, "must be between 0 and 3600 seconds"))
      ->capture_default_str();
  cmd->add_option("--offset-ratio", o->tune.offset_ratio, "event-based offset collar: max(collar, this x length)")
      ->check(number_in(0, 10, "must be between 0 and 10"))
      ->capture_default_str();
  cmd->add_option("-m,--model", o->model, "model name or checkpoint path");
  cmd->add_option("--models-dir", o->models_dir, "folder with the checkpoints (default: $EARMARK_MODELS)");
  cmd->add_option("-t,--threads", o->threads, "network threads (0: all cores)")->check(config_number("model.threads"));
  cmd->add_flag("-q,--quiet", o->quiet, "no progress");
  cmd->callback([o] {
    TuneOptions& t = o->tune;
    t.config = o->config_file.empty() ? Config{} : Config::from_file(o->config_file);
    if (!o->model.empty()) t.config.model.name = o->model;
    if (!o->models_dir.empty()) t.config.model.models_dir = o->models_dir;
    if (o->threads >= 0) t.config.model.threads = o->threads;
    // A message ends the progress line first, so that it gets a line of its own.
    auto mid_line = std::make_shared<bool>(false);
    t.log = [mid_line](const std::string& s) {
      std::cerr << (*mid_line ? "\n" : "") << "earmark tune: " << s << "\n";
      *mid_line = false;
    };
    if (!o->quiet && isatty(fileno(stderr)))
      t.progress = [mid_line](size_t done, size_t total) {
        if (done < total) {
          std::fprintf(stderr, "\rearmark tune: scoring %zu/%zu ", done + 1, total);
          *mid_line = true;
        } else if (*mid_line) {
          std::fprintf(stderr, "\n");
          *mid_line = false;
        }
      };
    std::cout << tune(t).text;
  });
}

}  // namespace earmark::cli
