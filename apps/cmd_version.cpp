#include <iostream>

#include "commands.hpp"
#include "earmark/earmark.hpp"

namespace earmark::cli {

void add_version_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "print the version");
  cmd->callback([] { std::cout << "earmark " << earmark::version() << "\n"; });
}

}  // namespace earmark::cli
