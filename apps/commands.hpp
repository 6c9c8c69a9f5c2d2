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
void add_train_command(CLI::App& app);
void add_calibrate_command(CLI::App& app);
// Checks for numeric flags, so that a bad number is a usage error (exit 2) naming the flag:
// NaN, infinity and out-of-range values are refused, never silently ignored.
// The value must satisfy the rule of configuration key `key` ("events.threshold_on").
CLI::Validator config_number(const std::string& key);
// The value must be finite and within [lo, hi]; `rule` says so in words.
CLI::Validator number_in(double lo, double hi, const std::string& rule);

// Further verbs (detect, labels, eval, tune, synth, report, serve, train) add a line here and
// one in main().

}  // namespace earmark::cli
