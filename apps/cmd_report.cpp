// earmark report RUN_DIR [-o OUT]: the HTML and Markdown report of an earlier detection run,
// regenerated from its events.json (and run.json when present) by the Run layer.
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "earmark/run.hpp"

namespace earmark::cli {

namespace {

struct ReportCliOptions {
  std::string run_dir;
  std::string out_dir;  // empty: the run folder
  ReportOptions report;
};

void run_report(const ReportCliOptions& o) {
  namespace fs = std::filesystem;
  const size_t files = report_run(o.run_dir, o.out_dir, o.report);
  const std::string out = o.out_dir.empty() ? o.run_dir : o.out_dir;
  std::cout << "report: " << (fs::path(out) / "report.html").string() << " and "
            << (fs::path(out) / "report.md").string() << " (" << files << " file(s))\n";
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto o = std::make_shared<ReportCliOptions>();
  auto* cmd = app.add_subcommand("report", "regenerate report.html and report.md from a detection run's output folder");
  cmd->add_option("run_dir", o->run_dir, "output folder of 'earmark detect' (holds events.json)")->required();
  cmd->add_option("-o,--out", o->out_dir, "where to write the report (default: the run folder)");
  cmd->add_option("--top-classes", o->report.top_classes, "classes in each score heat-map")->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--max-picture-files,--pictures", o->report.picture_files,
                  "draw pictures for this many files at most: those with the most to look at")
      ->capture_default_str();
  cmd->add_option("--pictures-for", o->report.pictures_for,
                  "also draw pictures for these files (path, file name or stem; repeatable)");
  cmd->callback([o] { run_report(*o); });
}

}  // namespace earmark::cli
