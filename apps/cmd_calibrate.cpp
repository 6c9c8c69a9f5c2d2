// earmark calibrate: per-class thresholds for a target false-alarm rate, measured on
// background-only audio (a user's room tone is the best), and optionally the confidence map,
// fitted on labelled soundscapes. Writes a table that `earmark detect --calibration` (or
// events.calibration) uses. docs/false-alarms.md has the method.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "commands.hpp"
#include "detect/calibration.hpp"
#include "earmark/earmark.hpp"
#include "eval/calibrate.hpp"
#include "eval/label_map.hpp"
#include "eval/tsv.hpp"
#include "synth/soundscape.hpp"
#include "util/file.hpp"
#include "util/time.hpp"

namespace earmark::cli {

std::vector<std::string> expand_inputs(const std::vector<std::string>& paths, std::vector<FileResult>& failures);

namespace {

namespace fs = std::filesystem;
namespace ev = earmark::eval;

struct CalibrateCliOptions {
  std::vector<std::string> backgrounds;
  bool synthetic = false;
  std::string events_csv, clips_file, ref, map, out = "calibration.json", config_file, model, models_dir, judged_csv;
  std::vector<std::string> scapes;
  ev::CalibrateOptions cal;
  int threads = -1;
  bool quiet = false;
};

// The built-in background set: steady noise colours and mains hum at three levels, and digital
// silence: what a quiet room, a noisy preamp or a hum loop sound like with nothing happening.
struct Synthetic {
  std::string name;
  std::vector<float> samples;
};
std::vector<Synthetic> synthetic_backgrounds() {
  constexpr double kSeconds = 60;
  const auto n = size_t(kSeconds * kSampleRate);
  std::vector<Synthetic> out;
  uint64_t seed = 1;
  for (const double level_db : {-60.0, -40.0, -20.0}) {
    const double g = std::pow(10.0, level_db / 20.0);
    for (const char* colour : {"white", "pink", "brown"}) {
      auto x = synth::make_noise(colour, n, kSampleRate, seed++);
      for (auto& v : x) v = float(v * g);
      out.push_back({fmt::format("{} noise at {} dBFS", colour, level_db), std::move(x)});
    }
    // 50 Hz mains hum with its odd and even harmonics falling off, unit RMS before the gain.
    std::vector<float> hum(n);
    const double amps[] = {1.0, 0.5, 0.35, 0.2, 0.1};
    double rms = 0;
    for (double a : amps) rms += a * a / 2;
    rms = std::sqrt(rms);
    for (size_t i = 0; i < n; ++i) {
      double v = 0;
      for (int h = 0; h < 5; ++h) v += amps[h] * std::sin(2 * M_PI * 50.0 * (h + 1) * double(i) / kSampleRate);
      hum[i] = float(v / rms * g);
    }
    out.push_back({fmt::format("50 Hz hum at {} dBFS", level_db), std::move(hum)});
  }
  out.push_back({"digital silence", std::vector<float>(n, 0.0f)});
  return out;
}

// Labelled clips for the recall check: rows of an events.csv-style table (file, audioset_labels
// ';'-separated; paths relative to the table's folder), restricted to --clips-file when given.
std::vector<std::pair<std::string, std::vector<std::string>>> read_clips(const std::string& csv,
                                                                         const std::string& clips_file) {
  std::set<std::string> keep;
  if (!clips_file.empty()) {
    std::istringstream in(util::read_file_bounded(clips_file, util::kMaxTableBytes, "clips list"));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) keep.insert(line);
  }
  std::istringstream in(util::read_file_bounded(csv, util::kMaxTableBytes, "event clip table"));
  const auto rows = ev::parse_csv(in, csv);
  if (rows.empty()) throw Error(csv + ": empty; it needs a header with file and audioset_labels columns");
  int c_file = -1, c_labels = -1;
  for (size_t i = 0; i < rows[0].fields.size(); ++i) {
    if (rows[0].fields[i] == "file") c_file = int(i);
    if (rows[0].fields[i] == "audioset_labels") c_labels = int(i);
  }
  if (c_file < 0 || c_labels < 0) throw Error(csv + ": the header must name the columns file and audioset_labels");
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  const fs::path root = fs::path(csv).parent_path();
  for (size_t r = 1; r < rows.size(); ++r) {
    const auto& f = rows[r].fields;
    if (int(f.size()) <= std::max(c_file, c_labels)) continue;
    if (!keep.empty() && !keep.count(f[size_t(c_file)])) continue;
    std::vector<std::string> labels;
    std::istringstream ls(f[size_t(c_labels)]);
    for (std::string l; std::getline(ls, l, ';');)
      if (!l.empty()) labels.push_back(l);
    out.emplace_back((root / f[size_t(c_file)]).string(), labels);
  }
  return out;
}

void run_calibrate(const CalibrateCliOptions& o) {
  o.cal.validate();
  if (o.backgrounds.empty() && !o.synthetic)
    throw Error("calibrate: give background recordings (files or folders with no events in them) or --synthetic");
  if (o.ref.empty() != o.map.empty() || o.ref.empty() != o.scapes.empty())
    throw Error("calibrate: the confidence map needs --ref, --map and --scapes together");

  Config cfg = o.config_file.empty() ? Config{} : Config::from_file(o.config_file);
  if (!o.model.empty()) cfg.model.name = o.model;
  if (!o.models_dir.empty()) cfg.model.models_dir = o.models_dir;
  if (o.threads >= 0) cfg.model.threads = o.threads;
  cfg.events.calibration = "none";  // measured against the uncalibrated detector
  const Detector det(cfg);
  const bool tty = !o.quiet && isatty(fileno(stderr));
  auto progress = [&](const std::string& what, size_t i, size_t n) {
    if (tty) std::fprintf(stderr, "\rearmark calibrate: %s %zu/%zu ", what.c_str(), i + 1, n);
  };

  ev::ThresholdCalibrator thresholds(det.config().events, o.cal);
  std::vector<std::string> sources;
  size_t n_files = 0;
  if (!o.backgrounds.empty()) {
    std::vector<FileResult> failures;
    const auto paths = expand_inputs(o.backgrounds, failures);
    for (const auto& f : failures) std::cerr << "earmark calibrate: " << f.error << "\n";
    for (size_t i = 0; i < paths.size(); ++i) {
      progress("backgrounds", i, paths.size());
      const FileResult r = det.detect_file(paths[i]);
      if (!r.ok()) {
        std::cerr << (tty ? "\n" : "") << "earmark calibrate: " << r.error << " (left out)\n";
        continue;
      }
      thresholds.add_background(r.scores, r.info.duration_s);
      ++n_files;
    }
    if (tty) std::fprintf(stderr, "\n");
    if (n_files == 0) throw Error("calibrate: none of the background recordings could be read");
    std::set<std::string> folders;
    for (const auto& in : o.backgrounds) folders.insert(in);
    std::string list;
    for (const auto& f : folders) list += (list.empty() ? "" : ", ") + fs::path(f).filename().string();
    sources.push_back(fmt::format("{} recording(s) from {}", n_files, list));
  }
  if (o.synthetic) {
    const auto set = synthetic_backgrounds();
    for (size_t i = 0; i < set.size(); ++i) {
      progress("synthetic backgrounds", i, set.size());
      const FileResult r = det.detect_samples(set[i].samples, set[i].name);
      thresholds.add_background(r.scores, r.info.duration_s);
    }
    if (tty) std::fprintf(stderr, "\n");
    sources.push_back("synthetic white, pink and brown noise and 50 Hz hum at -60, -40 and -20 dBFS, digital silence");
  }
  if (!o.events_csv.empty()) {
    const auto clips = read_clips(o.events_csv, o.clips_file);
    for (size_t i = 0; i < clips.size(); ++i) {
      progress("event clips", i, clips.size());
      const FileResult r = det.detect_file(clips[i].first);
      if (!r.ok()) {
        std::cerr << (tty ? "\n" : "") << "earmark calibrate: " << r.error << " (left out)\n";
        continue;
      }
      thresholds.add_event_clip(r.scores, r.info.duration_s, clips[i].second);
    }
    if (tty) std::fprintf(stderr, "\n");
  }

  detect::Calibration cal = thresholds.finish();
  cal.model = cfg.model.name;
  cal.checkpoint_sha256 = det.checkpoint_sha256();
  cal.created = util::utc_now_iso();
  cal.earmark_version = version();
  cal.provenance = "";
  for (const auto& s : sources) cal.provenance += (cal.provenance.empty() ? "" : "; ") + s;
  if (thresholds.clips() > 0)
    cal.provenance += fmt::format("; recall check on {} labelled clip(s) from {}", thresholds.clips(),
                                  fs::path(o.events_csv).filename().string());

  if (!o.ref.empty()) {
    // The detector as it will run: the new thresholds, no confidence map yet.
    Config c2 = cfg;
    std::vector<std::string> labels;
    for (const auto& l : det.labels()) labels.push_back(l.name);
    detect::apply_thresholds(cal, labels, c2.events);
    const Detector det2(c2);
    const auto map = ev::LabelMap::load(o.map);
    const ev::EventTable ref = ev::read_events_tsv(o.ref);
    std::vector<FileResult> failures;
    const auto paths = expand_inputs(o.scapes, failures);
    std::vector<ev::JudgedEvent> judged;
    size_t used = 0;
    for (size_t i = 0; i < paths.size(); ++i) {
      progress("labelled soundscapes", i, paths.size());
      const std::string name = fs::path(paths[i]).filename().string();
      if (!ref.has(name)) continue;
      const FileResult r = det2.detect_file(paths[i]);
      if (!r.ok()) continue;
      const auto j = ev::judge_events(r.events, ref.events(name), map);
      judged.insert(judged.end(), j.begin(), j.end());
      ++used;
    }
    if (tty) std::fprintf(stderr, "\n");
    if (used == 0) throw Error(o.ref + ": lists none of the --scapes files by file name");
    ev::fit_confidence(judged, o.cal, cal);
    if (!o.judged_csv.empty()) {
      std::ofstream f(o.judged_csv, std::ios::binary | std::ios::trunc);
      f << "label,score,confidence,right\n";
      for (const auto& j : judged)
        f << '"' << j.label << "\"," << fmt::format("{:.4f},{:.4f},{}\n", j.score, cal.confidence(j.label, j.score), j.right);
      if (!f) throw Error(o.judged_csv + ": cannot write the judged detections");
    }
    cal.provenance += fmt::format("; confidence fitted on {} judged detection(s) in {} labelled file(s) ({})", judged.size(),
                                  used, fs::path(o.ref).filename().string());
  }

  {
    std::ofstream f(o.out, std::ios::binary | std::ios::trunc);
    if (f) f << cal.to_json();
    if (!f) throw Error(o.out + ": cannot write the calibration table; check the folder exists and is writable");
  }
  cal.origin = o.out;
  std::cout << fmt::format("earmark calibrate: {:.2f} h of background audio; {} class thresholds raised (at most {} false "
                           "alarm(s) per class per hour)\n",
                           cal.hours, cal.raised(), cal.target_per_hour);
  std::vector<std::pair<std::string, detect::ClassThresholdCal>> rows(cal.classes.begin(), cal.classes.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.false_alarms > b.second.false_alarms; });
  if (!rows.empty()) {
    std::cout << fmt::format("{:<36}{:>8}{:>10}{:>8}  {}\n", "class", "on", "bg peak", "FA", "(FA: false alarms at the default threshold)");
    for (size_t i = 0; i < rows.size() && i < 25; ++i) {
      const auto& [label, k] = rows[i];
      std::cout << fmt::format("{:<36}{:>8}{:>10.3f}{:>8}  {}\n", label.substr(0, 35),
                               k.on > 0 ? fmt::format("{:.3f}", k.on) : std::string("-"), k.background_peak,
                               k.false_alarms,
                               k.capped ? fmt::format("held down by the recall check (recall {:.2f})", k.recall) : "");
    }
    if (rows.size() > 25) std::cout << fmt::format("... and {} more in {}\n", rows.size() - 25, o.out);
  }
  if (cal.has_confidence)
    std::cout << fmt::format("confidence map: shared a={:.3f} b={:.3f}, {} classes; calibration error on its own data "
                             "{:.3f}\n",
                             cal.shared.a, cal.shared.b, cal.per_class.size(), cal.ece_fit);
  std::cout << fmt::format("written to {} (use: earmark detect --calibration {})\n", o.out, o.out);
}

}  // namespace

void add_calibrate_command(CLI::App& app) {
  auto o = std::make_shared<CalibrateCliOptions>();
  auto* cmd = app.add_subcommand(
      "calibrate", "per-class thresholds for a target false-alarm rate, measured on background-only audio (your room "
                   "tone); optionally the confidence map from labelled soundscapes. Writes a table for detect --calibration");
  cmd->add_option("backgrounds", o->backgrounds, "background recordings with no events in them (files or folders)");
  cmd->add_flag("--synthetic", o->synthetic, "add built-in backgrounds: noise colours and hum at three levels, silence");
  cmd->add_option("--events", o->events_csv, "labelled event clips for the recall check: CSV with file and "
                                             "audioset_labels (';'-separated) columns, paths relative to it")
      ->check(CLI::ExistingFile);
  cmd->add_option("--clips-file", o->clips_file, "only these rows (file column values, one per line) of --events")
      ->check(CLI::ExistingFile);
  cmd->add_option("--ref", o->ref, "confidence map: reference events (DCASE TSV) of the --scapes files")
      ->check(CLI::ExistingFile);
  cmd->add_option("--map", o->map, "confidence map: dataset class -> AudioSet labels (as for eval)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--scapes", o->scapes, "confidence map: labelled audio files or folders")->expected(1, -1);
  cmd->add_option("-o,--out", o->out, "where to write the table")->capture_default_str();
  cmd->add_option("--judged", o->judged_csv,
                  "confidence map: also write the judged detections (label, score, confidence, right) as CSV");
  cmd->add_option("--target-per-hour", o->cal.target_per_hour, "false alarms allowed per class per hour of background")
      ->check(number_in(0, 1e6, "must be a rate of 0 or more"))
      ->capture_default_str();
  cmd->add_option("--min-false-alarms", o->cal.min_false_alarms,
                  "raise a class only if it fired at least this often at the default threshold")
      ->check(number_in(0, 1e9, "must be a count, 0 or more"))
      ->capture_default_str();
  cmd->add_option("--prior-count", o->cal.prior_count,
                  "confidence map: pseudo-detections pulling each class toward the shared curve")
      ->check(number_in(0, 1e9, "must be a count, 0 or more"))
      ->capture_default_str();
  cmd->add_option("--min-recall", o->cal.min_recall, "recall check: keep at least this share of a class's clips")
      ->check(number_in(0, 1, "must be a share between 0 and 1"))
      ->capture_default_str();
  cmd->add_option("--max-threshold", o->cal.max_on, "never raise a threshold above this")
      ->check(number_in(0.01, 1, "must be a score between 0.01 and 1"))
      ->capture_default_str();
  cmd->add_option("-c,--config", o->config_file, "base configuration (YAML or JSON)")->check(CLI::ExistingFile);
  cmd->add_option("-m,--model", o->model, "model name or checkpoint path");
  cmd->add_option("--models-dir", o->models_dir, "folder with the checkpoints (default: $EARMARK_MODELS)");
  cmd->add_option("-t,--threads", o->threads, "network threads (0: all cores)")->check(config_number("model.threads"));
  cmd->add_flag("-q,--quiet", o->quiet, "no progress");
  cmd->callback([o] { run_calibrate(*o); });
}

}  // namespace earmark::cli
