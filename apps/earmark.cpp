// earmark command-line front end (thin: all the work is in libearmark).
#include <cstdlib>
#include <iostream>

#include "commands.hpp"
#include "earmark/config.hpp"
#include "earmark/earmark.hpp"
#include "earmark/process.hpp"

namespace earmark::cli {
int exit_code = 0;
}

int main(int argc, char** argv) {
  earmark::keep_freed_memory();
  CLI::App app{"earmark: find sound events in recordings"};
  app.require_subcommand(1);
  earmark::cli::add_detect_command(app);
  earmark::cli::add_labels_command(app);
  earmark::cli::add_version_command(app);
  earmark::cli::add_eval_command(app);
  earmark::cli::add_synth_command(app);
  earmark::cli::add_report_command(app);
  earmark::cli::add_tune_command(app);
  earmark::cli::add_serve_command(app);
  earmark::cli::add_train_command(app);
  earmark::cli::add_calibrate_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message (and help for --help) and has its own exit codes (104, 106,
    // 109, ...); every usage error exits 2 as the README promises, help and version 0.
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const earmark::Error& e) {
    std::cerr << "earmark: " << e.what() << "\n";
    return 2;
  }
  return earmark::cli::exit_code;
}

namespace earmark::cli {

namespace {

// The flag's text as a number (CLI11 converts it after the check); "" when it is none, so
// that CLI11's own conversion reports it.
bool parse_number(const std::string& text, double& v) {
  char* end = nullptr;
  v = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size();
}

}  // namespace

CLI::Validator config_number(const std::string& key) {
  const std::string rule = config_rule(key);  // throws now for a key that is not numeric
  return CLI::Validator(
      [key](std::string& text) -> std::string {
        double v = 0;
        if (!parse_number(text, v)) return "'" + text + "' is not a number";
        try {
          check_config_number(key, v, "the value");
        } catch (const Error& e) {
          return e.what();
        }
        return "";
      },
      "", "");
}

CLI::Validator number_in(double lo, double hi, const std::string& rule) {
  return CLI::Validator(
      [lo, hi, rule](std::string& text) -> std::string {
        double v = 0;
        if (!parse_number(text, v)) return "'" + text + "' is not a number";
        try {
          check_number("the value", v, lo, hi, rule);
        } catch (const Error& e) {
          return e.what();
        }
        return "";
      },
      "", "");
}

}  // namespace earmark::cli
