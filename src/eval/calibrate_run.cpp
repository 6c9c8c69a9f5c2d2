// `earmark calibrate` as a library call (earmark/calibrate.hpp): false-alarm thresholds from
// background-only audio, with a recall check on labelled clips, and the confidence map from
// labelled soundscapes (the measuring itself: eval/calibrate.hpp).
#include "earmark/calibrate.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "detect/calibration.hpp"
#include "earmark/earmark.hpp"
#include "earmark/run.hpp"
#include "eval/calibrate.hpp"
#include "eval/label_map.hpp"
#include "eval/tsv.hpp"
#include "synth/soundscape.hpp"
#include "util/file.hpp"
#include "util/time.hpp"

namespace earmark {

namespace {

namespace fs = std::filesystem;
namespace ev = earmark::eval;

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

}  // namespace

void CalibrateOptions::validate() const {
  targets.validate();
  if (backgrounds.empty() && !synthetic)
    throw Error("calibrate: give background recordings (files or folders with no events in them) or --synthetic");
  if (ref.empty() != map.empty() || ref.empty() != scapes.empty())
    throw Error("calibrate: the confidence map needs --ref, --map and --scapes together");
  config.validate();
}

CalibrateSummary calibrate(const CalibrateOptions& o) {
  o.validate();
  auto log = [&](const std::string& s) {
    if (o.log) o.log(s);
  };
  std::ostringstream text;
  Config cfg = o.config;
  cfg.events.calibration = "none";  // measured against the uncalibrated detector
  const Detector det(cfg);
  auto progress = [&](const std::string& what, size_t i, size_t n) {
    if (o.progress) o.progress(what, i, n);
  };

  ev::ThresholdCalibrator thresholds(det.config().events, o.targets);
  std::vector<std::string> sources;
  size_t n_files = 0;
  if (!o.backgrounds.empty()) {
    std::vector<std::string> input_errors;
    const auto paths = expand_inputs(o.backgrounds, input_errors);
    for (const auto& e : input_errors) log(e);
    for (size_t i = 0; i < paths.size(); ++i) {
      progress("backgrounds", i, paths.size());
      const FileResult r = det.detect_file(paths[i]);
      if (!r.ok()) {
        log(r.error + " (left out)");
        continue;
      }
      thresholds.add_background(r.scores, r.info.duration_s);
      ++n_files;
    }
    progress("backgrounds", paths.size(), paths.size());
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
    progress("synthetic backgrounds", set.size(), set.size());
    sources.push_back("synthetic white, pink and brown noise and 50 Hz hum at -60, -40 and -20 dBFS, digital silence");
  }
  if (!o.events_csv.empty()) {
    const auto clips = read_clips(o.events_csv, o.clips_file);
    for (size_t i = 0; i < clips.size(); ++i) {
      progress("event clips", i, clips.size());
      const FileResult r = det.detect_file(clips[i].first);
      if (!r.ok()) {
        log(r.error + " (left out)");
        continue;
      }
      thresholds.add_event_clip(r.scores, r.info.duration_s, clips[i].second);
    }
    progress("event clips", clips.size(), clips.size());
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
    std::vector<std::string> input_errors;
    const auto paths = expand_inputs(o.scapes, input_errors);
    for (const auto& e : input_errors) log(e);
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
    progress("labelled soundscapes", paths.size(), paths.size());
    if (used == 0) throw Error(o.ref + ": lists none of the --scapes files by file name");
    ev::fit_confidence(judged, o.targets, cal);
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
  text << fmt::format("earmark calibrate: {:.2f} h of background audio; {} class thresholds raised (at most {} false "
                      "alarm(s) per class per hour)\n",
                      cal.hours, cal.raised(), cal.target_per_hour);
  std::vector<std::pair<std::string, detect::ClassThresholdCal>> rows(cal.classes.begin(), cal.classes.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.false_alarms > b.second.false_alarms; });
  if (!rows.empty()) {
    text << fmt::format("{:<36}{:>8}{:>10}{:>8}  {}\n", "class", "on", "bg peak", "FA", "(FA: false alarms at the default threshold)");
    for (size_t i = 0; i < rows.size() && i < 25; ++i) {
      const auto& [label, k] = rows[i];
      text << fmt::format("{:<36}{:>8}{:>10.3f}{:>8}  {}\n", label.substr(0, 35),
                          k.on > 0 ? fmt::format("{:.3f}", k.on) : std::string("-"), k.background_peak,
                          k.false_alarms,
                          k.capped ? fmt::format("held down by the recall check (recall {:.2f})", k.recall) : "");
    }
    if (rows.size() > 25) text << fmt::format("... and {} more in {}\n", rows.size() - 25, o.out);
  }
  if (cal.has_confidence)
    text << fmt::format("confidence map: shared a={:.3f} b={:.3f}, {} classes; calibration error on its own data "
                        "{:.3f}\n",
                        cal.shared.a, cal.shared.b, cal.per_class.size(), cal.ece_fit);
  text << fmt::format("written to {} (use: earmark detect --calibration {})\n", o.out, o.out);
  CalibrateSummary summary;
  summary.text = text.str();
  summary.hours = cal.hours;
  summary.raised = cal.raised();
  summary.has_confidence = cal.has_confidence;
  summary.ece_fit = cal.ece_fit;
  return summary;
}

}  // namespace earmark
