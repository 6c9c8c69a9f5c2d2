// earmark train: teach Earmark new sound classes from labelled clips (see docs/custom-classes.md).
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "commands.hpp"
#include "earmark/earmark.hpp"
#include "earmark/train.hpp"

namespace earmark::cli {

namespace {

struct TrainArgs {
  model::TrainOptions opt;
  std::string out_dir;
  ModelArgs model;
  bool quiet = false;
};

int run_train(TrainArgs& a) {
  auto& o = a.opt;
  o.config = a.model.load();
  o.config.model.heads.clear();
  o.config.model.head_only = false;
  const bool quiet = a.quiet;
  model::Log log = [quiet](const std::string& s) {
    if (!quiet) std::cerr << "earmark train: " << s << "\n";
  };
  const auto r = model::train_head(o, log);
  r.head.save(a.out_dir);
  const auto& h = r.head;
  if (!quiet)
    std::cerr << fmt::format("earmark train: {} class(es), {}{} on {} frames; embeddings {:.1f} s, fit {:.1f} s; head in {}\n",
                           h.classes.size(), h.hidden ? "MLP" : "logistic regression",
                           h.hidden ? fmt::format(" ({} hidden)", h.hidden) : std::string(), r.report.train_rows + r.report.val_rows,
                           r.embed_s, r.fit_s, a.out_dir);
  std::cout << "class\tpositive_frames\theld_out_frame_f1\tthreshold\n";
  for (size_t c = 0; c < h.classes.size(); ++c) {
    const double f = r.report.val_f1[c];
    std::cout << h.classes[c] << "\t" << r.report.positives[c] << "\t"
              << (std::isfinite(f) ? fmt::format("{:.3f}", f) : std::string("-")) << "\t"
              << (r.report.thresholds[c] >= 0 ? fmt::format("{:.2f}", r.report.thresholds[c]) : std::string("-")) << "\n";
  }
  if (!r.warnings.empty() && !quiet) std::cerr << "earmark train: " << r.warnings.size() << " warning(s), see above\n";
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "teach new sound classes from labelled clips (a head on the frozen network)");
  cmd->footer(
      "Clips: a folder with one sub-folder per class, or a CSV/TSV of `file,label` or `file,onset,offset,label`\n"
      "rows (or with a header naming file/label/onset/offset columns). Use the result with\n"
      "`earmark detect --head MODEL_DIR` or `model.heads: [MODEL_DIR]` in the config. See docs/custom-classes.md.");
  cmd->add_option("--clips", a->opt.clips, "folder (a sub-folder per class) or CSV/TSV list of labelled clips")->required();
  cmd->add_option("--negatives", a->opt.negatives, "folders/files of recordings without the sounds (background)")
      ->allow_extra_args(false);
  cmd->add_option("-o,--out", a->out_dir, "folder to write the head to (head.json, weights.bin)")->required();
  a->model.add_to(*cmd, "configuration (model and frames settings as for detect)");
  cmd->add_option("--hidden", a->opt.fit.hidden, "hidden units of an MLP head (0: logistic regression)")
      ->check(number_in(0, 4096, "must be between 0 and 4096"))
      ->capture_default_str();
  cmd->add_option("--seed", a->opt.fit.seed, "random seed (split, initialisation, augmentation)")->capture_default_str();
  cmd->add_option("--epochs", a->opt.fit.max_epochs, "most epochs (early stopping on held-out clips)")
      ->check(number_in(1, 100000, "must be between 1 and 100000"))
      ->capture_default_str();
  cmd->add_option("--lr", a->opt.fit.lr, "Adam learning rate")
      ->check(number_in(1e-9, 10, "must be a learning rate between 1e-9 and 10"))
      ->capture_default_str();
  cmd->add_option("--weight-decay", a->opt.fit.weight_decay, "L2 weight decay")
      ->check(number_in(0, 10, "must be between 0 and 10"))
      ->capture_default_str();
  cmd->add_option("--mixes", a->opt.mixes, "augmented copies of each clip over negatives/noise")
      ->check(number_in(0, 100, "must be between 0 and 100"))
      ->capture_default_str();
  cmd->add_option("--min-clips", a->opt.min_clips, "fewest usable clips per class")
      ->check(number_in(1, 100000, "must be between 1 and 100000"))
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", a->quiet, "no progress on stderr");
  cmd->callback([a] {
    if (a->opt.fit.hidden < 0 || a->opt.mixes < 0 || a->opt.min_clips < 1)
      throw Error("train: --hidden and --mixes must be >= 0, --min-clips >= 1");
    exit_code = run_train(*a);
  });
}

}  // namespace earmark::cli
