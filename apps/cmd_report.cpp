// earmark report RUN_DIR [-o OUT]: the HTML and Markdown report of an earlier detection run,
// regenerated from its events.json (and run.json when present).
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "earmark/earmark.hpp"
#include "report/report.hpp"
#include "report/writers.hpp"
#include "util/file.hpp"

namespace earmark::cli {

namespace {

struct ReportOptions {
  std::string run_dir;
  std::string out_dir;  // empty: the run folder
  int top_classes = 10;
  size_t max_picture_files = 200;
};

void run_report(const ReportOptions& o) {
  namespace fs = std::filesystem;
  const fs::path dir(o.run_dir);
  const fs::path events = dir / "events.json";
  std::error_code ec;
  if (!fs::exists(events, ec))
    throw Error(events.string() +
                ": cannot open; give the output folder of 'earmark detect' run with the json format (the default)");
  // Bounded: a FIFO or device named events.json is refused, not read forever.
  std::istringstream f(util::read_file_bounded(events.string(), util::kMaxResultsBytes, "events.json"));
  const auto results = report::read_json(f, events.string());

  report::RunInfo info;
  const fs::path run_json = dir / "run.json";
  if (fs::exists(run_json)) info = report::read_run_info(run_json.string());
  if (info.inputs.empty())
    for (const auto& r : results) info.inputs.push_back(r.path);

  report::ReportConfig cfg;
  cfg.pictures.top_classes = o.top_classes;
  cfg.max_picture_files = o.max_picture_files;
  const std::string out = o.out_dir.empty() ? o.run_dir : o.out_dir;
  report::write_report(out, results, info, cfg);
  std::cout << "report: " << (fs::path(out) / "report.html").string() << " and "
            << (fs::path(out) / "report.md").string() << " (" << results.size() << " file(s))\n";
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto o = std::make_shared<ReportOptions>();
  auto* cmd = app.add_subcommand("report", "regenerate report.html and report.md from a detection run's output folder");
  cmd->add_option("run_dir", o->run_dir, "output folder of 'earmark detect' (holds events.json)")->required();
  cmd->add_option("-o,--out", o->out_dir, "where to write the report (default: the run folder)");
  cmd->add_option("--top-classes", o->top_classes, "classes in each score heat-map")->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--max-picture-files", o->max_picture_files, "draw pictures for this many files at most")
      ->capture_default_str();
  cmd->callback([o] { run_report(*o); });
}

}  // namespace earmark::cli
