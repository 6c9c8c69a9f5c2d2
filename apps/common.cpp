// Pieces the verbs share: the model options and the progress line.
#include <cstdio>
#include <iostream>

#include "commands.hpp"

namespace earmark::cli {

void ModelArgs::add_to(CLI::App& cmd, const std::string& config_help) {
  cmd.add_option("-c,--config", config_file, config_help);
  cmd.add_option("-m,--model", model, "model name (mn04_as, mn10_as, ...) or path of a .pt checkpoint");
  cmd.add_option("--models-dir", models_dir, "folder with the checkpoints (default: $EARMARK_MODELS)");
  cmd.add_option("-t,--threads", threads, "network threads (0: all cores)")->check(config_number("model.threads"));
}

Config ModelArgs::load() const {
  Config c = config_file.empty() ? Config{} : Config::from_file(config_file);
  if (!model.empty()) c.model.name = model;
  if (!models_dir.empty()) c.model.models_dir = models_dir;
  if (threads >= 0) c.model.threads = threads;
  return c;
}

void ProgressLine::message(const std::string& text) {
  std::cerr << (mid_line_ ? "\n" : "") << "earmark " << verb_ << ": " << text << "\n";
  mid_line_ = false;
}

void ProgressLine::update(const std::string& what, size_t done, size_t total) {
  if (!show_) return;
  if (done < total) {
    std::fprintf(stderr, "\rearmark %s: %s %zu/%zu ", verb_.c_str(), what.c_str(), done + 1, total);
    mid_line_ = true;
  } else if (mid_line_) {
    std::fprintf(stderr, "\n");
    mid_line_ = false;
  }
}

}  // namespace earmark::cli
