// Each CLI verb lives in its own apps/cmd_<verb>.cpp and registers itself here.
#pragma once

#include <CLI/CLI.hpp>

namespace earmark::cli {

// Set by a verb's callback; main() returns it.
extern int exit_code;

void add_version_command(CLI::App& app);
void add_detect_command(CLI::App& app);
void add_labels_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_tune_command(CLI::App& app);
void add_serve_command(CLI::App& app);
// Further verbs (detect, labels, eval, tune, synth, report, serve, train) add a line here and
// one in main().

}  // namespace earmark::cli
