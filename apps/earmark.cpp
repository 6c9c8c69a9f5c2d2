// earmark command-line front end (thin: all the work is in libearmark).
#include <iostream>

#include "commands.hpp"
#include "earmark/earmark.hpp"
#include "util/memory.hpp"

namespace earmark::cli {
int exit_code = 0;
}

int main(int argc, char** argv) {
  earmark::util::keep_freed_memory();
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const earmark::Error& e) {
    std::cerr << "earmark: " << e.what() << "\n";
    return 2;
  }
  return earmark::cli::exit_code;
}
