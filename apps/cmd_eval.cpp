// `earmark eval`: scores detections (event lists) and/or frame scores against a DCASE-style
// reference with sed_eval's event- and segment-based metrics and PSDS1/PSDS2 (the work is
// earmark::evaluate, include/earmark/evaluate.hpp).
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "earmark/earmark.hpp"
#include "earmark/evaluate.hpp"

namespace earmark::cli {

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvaluateOptions>();
  auto* cmd = app.add_subcommand(
      "eval", "score detections against a reference: sed_eval event/segment-based metrics, PSDS1/PSDS2");
  cmd->add_option("--ref", o->ref, "reference events, DCASE TSV: filename, onset, offset, event_label")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--est", o->est, "estimated events, same format")->check(CLI::ExistingFile);
  cmd->add_option("--scores", o->scores,
                  "folder of frame score tables <stem>.scores.tsv (onset, offset, one column per class); enables PSDS")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--durations", o->durations, "TSV filename, duration (seconds); files listed here without "
                                               "reference events count as event-free")
      ->check(CLI::ExistingFile);
  cmd->add_option("--map", o->map,
                  "dataset class -> AudioSet labels: YAML, CSV dataset_label,audioset_label, or a CSV with columns "
                  "class and audioset_labels (;-separated) like sounds/events.csv")
      ->check(CLI::ExistingFile);
  cmd->add_option("--audioset-labels", o->audioset_labels,
                  "class_labels_indices.csv to check the map's AudioSet names against")
      ->check(CLI::ExistingFile);
  cmd->add_option("--collar", o->collar, "event-based onset collar, seconds")
      ->check(number_in(0, 3600, "must be between 0 and 3600 seconds"))
      ->capture_default_str();
  cmd->add_option("--offset-ratio", o->offset_ratio,
                  "event-based offset collar: max(collar, this x reference length)")
      ->check(number_in(0, 10, "must be between 0 and 10"))
      ->capture_default_str();
  cmd->add_flag("--onset-only", o->onset_only, "event-based: ignore offsets");
  cmd->add_option("--matching", o->matching, "event-based pairing: optimal (sed_eval default) or greedy")
      ->capture_default_str();
  cmd->add_option("--segment", o->segment, "segment length of the segment-based metrics, seconds")
      ->check(number_in(0.001, 3600, "must be between 0.001 and 3600 seconds"))
      ->capture_default_str();
  cmd->add_option("--threshold", o->threshold, "with --scores and no --est: score threshold that makes events")
      ->check(number_in(0, 1, "must be a score between 0 and 1"))
      ->capture_default_str();
  cmd->add_option("--psds-thresholds", o->psds_thresholds,
                  "PSDS sweep: a count n of thresholds (2k+1)/(2n), or 'exact' for every distinct score")
      ->capture_default_str();
  cmd->add_option("--json", o->json_out, "write all results as JSON here");
  cmd->callback([o] {
    const Evaluation r = evaluate(*o);
    for (const auto& n : r.notes) std::cerr << "earmark eval: " << n << "\n";
    std::cout << r.text;
  });
}

}  // namespace earmark::cli
