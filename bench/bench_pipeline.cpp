// Times the detection pipeline on files: end to end (decode -> events) and its parts, the
// real-time factor and the process's peak RSS. One thread setting per process, so that the
// peak RSS belongs to that run; bench/run drives it and prints the comparison table.
//
//   bench_pipeline --threads N [--repeat R] [--method columns|windows] [--models-dir DIR] [--config FILE] FILE...
// Prints one JSON object per file.
#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "earmark/earmark.hpp"
#include "earmark/process.hpp"

int main(int argc, char** argv) {
  earmark::keep_freed_memory();
  earmark::Config cfg;
  int repeat = 1;
  std::vector<std::string> files;
  // --config first: the flags below override it wherever they stand.
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--config") cfg = earmark::Config::from_file(argv[i + 1]);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "bench_pipeline: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads") cfg.model.threads = std::stoi(next());
    else if (a == "--repeat") repeat = std::max(1, std::stoi(next()));
    else if (a == "--method") cfg.frames.method = next();
    else if (a == "--models-dir") cfg.model.models_dir = next();
    else if (a == "--batch") cfg.model.batch = std::stoi(next());
    else if (a == "--chunk") cfg.frames.chunk_s = std::stod(next());
    else if (a == "--config") next();  // read above
    else files.push_back(a);
  }
  try {
    const earmark::Detector det(cfg);
    for (const auto& f : files) {
      det.detect_file(f);  // warm-up: page cache, allocator, first-call costs
      std::vector<earmark::Timings> runs;
      earmark::FileResult r;
      for (int k = 0; k < repeat; ++k) {
        r = det.detect_file(f);
        if (!r.ok()) {
          std::cerr << "bench_pipeline: " << r.error << "\n";
          return 1;
        }
        runs.push_back(r.timings);
      }
      // Median over repeats of each part.
      auto median = [&](double earmark::Timings::*m) {
        std::vector<double> v;
        for (const auto& t : runs) v.push_back(t.*m);
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
      };
      rusage ru{};
      getrusage(RUSAGE_SELF, &ru);
      const double total = median(&earmark::Timings::total_s);
      nlohmann::json j = {{"file", f},
                          {"threads", cfg.model.threads},
                          {"method", cfg.frames.method},
                          {"audio_s", r.info.duration_s},
                          {"total_s", total},
                          {"decode_s", median(&earmark::Timings::decode_s)},
                          {"condition_s", median(&earmark::Timings::condition_s)},
                          {"features_s", median(&earmark::Timings::features_s)},
                          {"network_s", median(&earmark::Timings::network_s)},
                          {"events_s", median(&earmark::Timings::events_s)},
                          {"realtime_factor", total > 0 ? r.info.duration_s / total : 0.0},
                          {"events", r.events.size()},
                          {"peak_rss_mb", double(ru.ru_maxrss) / 1024.0}};
      std::cout << j.dump() << std::endl;
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_pipeline: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
