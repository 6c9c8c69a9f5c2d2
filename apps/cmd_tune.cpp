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
  ModelArgs model;
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
  o->model.add_to(*cmd);
  cmd->add_flag("-q,--quiet", o->quiet, "no progress");
  cmd->callback([o] {
    TuneOptions& t = o->tune;
    t.config = o->model.load();
    auto line = std::make_shared<ProgressLine>("tune", !o->quiet && isatty(fileno(stderr)));
    t.log = [line](const std::string& s) { line->message(s); };
    if (line->shown()) {
      t.progress = [line](size_t done, size_t total) { line->update("scoring", done, total); };
      t.search_progress = [line](size_t done, size_t total) { line->update("searching", done, total); };
    }
    std::cout << tune(t).text;
  });
}

}  // namespace earmark::cli
