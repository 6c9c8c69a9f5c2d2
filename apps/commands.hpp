// Each CLI verb lives in its own apps/cmd_<verb>.cpp and registers itself here.
#pragma once

#include <CLI/CLI.hpp>

#include <cstddef>
#include <string>

#include "earmark/config.hpp"

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

// The options of every verb that runs the network: -c/--config, -m/--model, --models-dir and
// -t/--threads; load() is the configuration they make (the file or the defaults, then the
// flags over it).
struct ModelArgs {
  std::string config_file, model, models_dir;
  int threads = -1;
  void add_to(CLI::App& cmd, const std::string& config_help = "base configuration (YAML or JSON)");
  Config load() const;
};

// A verb's progress on stderr, one line rewritten in place (only when `show`: a terminal and no
// --quiet), and messages ("earmark VERB: ...") that each get a line of their own.
class ProgressLine {
 public:
  ProgressLine(std::string verb, bool show) : verb_(std::move(verb)), show_(show) {}
  bool shown() const { return show_; }
  void message(const std::string& text);
  // "what done+1/total"; done == total ends the line.
  void update(const std::string& what, size_t done, size_t total);

 private:
  std::string verb_;
  bool show_ = false, mid_line_ = false;
};

// Further verbs (detect, labels, eval, tune, synth, report, serve, train) add a line here and
// one in main().

}  // namespace earmark::cli
