// earmark command-line front end (thin: all the work is in libearmark).
#include <CLI/CLI.hpp>

#include <iostream>

#include "earmark/earmark.hpp"

int main(int argc, char** argv) {
  CLI::App app{"earmark: find sound events in recordings"};
  app.require_subcommand(1);
  auto* ver = app.add_subcommand("version", "print the version");
  ver->callback([] { std::cout << "earmark " << earmark::version() << "\n"; });
  CLI11_PARSE(app, argc, argv);
  return 0;
}
