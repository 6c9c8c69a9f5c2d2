// `earmark tune` as a library call (earmark/tune.hpp): scores labelled audio once, fits
// per-class settings on a tune split (eval/tune.hpp) and checks them on held-out files.
#include "earmark/tune.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "earmark/earmark.hpp"
#include "earmark/run.hpp"
#include "eval/label_map.hpp"
#include "eval/metrics.hpp"
#include "eval/tsv.hpp"
#include "eval/tune.hpp"
#include "model/labels.hpp"
#include "model/registry.hpp"

namespace earmark {

namespace {

namespace fs = std::filesystem;
namespace ev = earmark::eval;

std::string num(double v) { return std::isnan(v) ? std::string("-") : fmt::format("{:.3f}", v); }

// The reference's name for an audio path: the same path, else the same file name, else the
// same stem (references often list bare file names, or another extension).
std::string ref_name(const ev::EventTable& ref, const std::string& path) {
  if (ref.has(path)) return path;
  const std::string base = fs::path(path).filename().string();
  if (ref.has(base)) return base;
  const std::string stem = ev::audio_stem(path);
  for (const auto& f : ref.files())
    if (ev::audio_stem(f) == stem) return f;
  return "";
}

struct Scores {
  ev::SedResult eb, sb;
};

Scores score_split(const std::vector<ev::TuneFile>& files, const ev::EventTable& ref, const EventsConfig& events,
                   const ev::EventBasedConfig& ecfg, const std::vector<std::string>& classes,
                   const ev::FindEvents& find, int threads) {
  const auto est = ev::detect_all(files, events, find, threads);
  const auto r = ev::restrict_files(ref, files);
  ev::Durations d;
  for (const auto& f : files) d[f.name] = f.duration_s;
  return {ev::event_based(r, est, ecfg, classes), ev::segment_based(r, est, d, {}, classes)};
}

}  // namespace

void TuneOptions::validate() const {
  if (ref.empty()) throw Error("tune: give the reference: --ref REF.tsv");
  if (inputs.empty()) throw Error("tune: give the audio files or folders to tune on");
  if (!(holdout >= 0 && holdout <= 0.9)) throw Error("tune: --holdout must be a share between 0 and 0.9");
  if (min_events < 0) throw Error("tune: --min-events must be a count, 0 or more");
  config.validate();
}

TuneSummary tune(const TuneOptions& o) {
  o.validate();
  auto log = [&](const std::string& s) {
    if (o.log) o.log(s);
  };
  TuneSummary summary;
  std::ostringstream out_text;
  ev::TuneConfig tcfg;
  if (!o.thresholds.empty()) tcfg.thresholds = o.thresholds;
  if (!o.medians.empty()) tcfg.median_frames = o.medians;
  tcfg.off_ratio = o.off_ratio;
  tcfg.min_events = o.min_events;
  tcfg.event_config.t_collar = o.collar;
  tcfg.event_config.percentage_of_length = o.offset_ratio;
  tcfg.threads = o.config.model.threads > 0 ? o.config.model.threads
                                            : int(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  tcfg.progress = o.search_progress;
  tcfg.validate();

  Config cfg = o.config;
  const ev::EventTable ref = ev::read_events_tsv(o.ref);
  ref.check(o.ref);

  // With a map the detector reports the dataset's classes itself: each class is a group of
  // its AudioSet labels and only the classes are allowed. Without one the reference's labels
  // must be AudioSet labels (or groups of the base configuration), and only they are reported.
  if (!o.map.empty()) {
    const auto map = ev::LabelMap::load(o.map);
    cfg.events.groups.clear();
    cfg.events.allow.clear();
    for (const auto& c : map.classes()) {
      cfg.events.groups[c] = map.audioset_labels(c);
      cfg.events.allow.push_back(c);
    }
  } else if (cfg.events.allow.empty()) {
    // Only names the model (or a base group) knows, so that a dataset label fails softly below.
    auto lower = [](std::string s) {
      for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return s;
    };
    std::set<std::string> known;
    for (const auto& l : model::read_labels(model::resolve_model(cfg.model).labels)) known.insert(lower(l.name));
    for (const auto& [g, members] : cfg.events.groups) known.insert(lower(g));
    for (const auto& l : ref.labels())
      if (known.count(lower(l))) cfg.events.allow.push_back(l);
    if (cfg.events.allow.empty())
      throw Error(o.ref + ": none of its labels is an AudioSet label of the model (e.g. '" +
                  (ref.labels().empty() ? std::string() : ref.labels()[0]) +
                  "'); give --map to map the dataset's classes to AudioSet labels");
  }
  std::vector<std::string> unknown_ref;
  {
    std::set<std::string> reported;
    for (const auto& a : cfg.events.allow) reported.insert(a);
    for (const auto& l : ref.labels())
      if (!reported.count(l)) unknown_ref.push_back(l);
  }

  const Detector det(cfg);  // checks every label name of the configuration
  std::vector<std::string> input_errors;
  const auto paths = expand_inputs(o.inputs, input_errors);
  for (const auto& e : input_errors) log(e);
  std::vector<ev::TuneFile> files;
  // What the whole events stage reads besides the grid, per file: settings are tried on what
  // detect reports, boundaries and all.
  std::vector<std::shared_ptr<const Detector::EventInputs>> kept;
  size_t unlisted = 0;
  for (size_t i = 0; i < paths.size(); ++i) {
    if (o.progress) o.progress(i, paths.size());
    std::shared_ptr<const Detector::EventInputs> keep;
    FileResult r = det.detect_file(paths[i], &keep);
    if (!r.ok()) {
      log(r.error + " (left out)");
      continue;
    }
    std::string name = ref_name(ref, paths[i]);
    if (name.empty()) ++unlisted, name = fs::path(paths[i]).filename().string();
    files.push_back({name, std::move(r.scores), r.info.duration_s});
    kept.push_back(std::move(keep));
  }
  if (o.progress) o.progress(paths.size(), paths.size());
  if (files.empty()) throw Error("tune: no audio file could be scored; check the paths");
  if (unlisted == files.size())
    throw Error(o.ref + ": lists none of the audio files (matched by path, file name or stem); give the reference "
                        "of these files");
  if (unlisted)
    log(fmt::format("{} of {} files are not in {}; they count as files without events", unlisted, files.size(), o.ref));
  if (!unknown_ref.empty())
    log(fmt::format("{} reference class(es) cannot be reported with this configuration (e.g. '{}'); {}",
                    unknown_ref.size(), unknown_ref[0],
                    o.map.empty() ? "give --map to map dataset classes to AudioSet labels" : "add them to the map"));

  const size_t n_files = files.size();
  const auto split = ev::split_files(n_files, o.holdout, o.seed);
  std::vector<ev::TuneFile> tune_set, held;
  std::vector<const Detector::EventInputs*> tune_kept, held_kept;
  for (size_t i : split.tune) tune_set.push_back(std::move(files[i])), tune_kept.push_back(kept[i].get());
  for (size_t i : split.holdout) held.push_back(std::move(files[i])), held_kept.push_back(kept[i].get());
  files.clear();
  auto finder = [&det](const std::vector<ev::TuneFile>& set, const std::vector<const Detector::EventInputs*>& k) {
    return ev::FindEvents([&det, &set, &k](size_t i, const EventsConfig& events) {
      return det.find_events(set[i].scores, *k[i], events);
    });
  };
  const auto result = ev::tune_events(tune_set, ref, det.config().events, tcfg, finder(tune_set, tune_kept));

  Config out = cfg;
  out.events = result.events;
  // The calibration's thresholds came into det.config().events.per_class; the written
  // configuration keeps only the user's and the tuned ones (calibration stays on and raises the rest).
  for (auto it = out.events.per_class.begin(); it != out.events.per_class.end();) {
    bool keep_entry = cfg.events.per_class.count(it->first) > 0;
    for (const auto& c : result.classes) keep_entry = keep_entry || (c.tuned && c.label == it->first);
    it = keep_entry ? std::next(it) : out.events.per_class.erase(it);
  }
  out.validate();
  {
    std::ofstream f(o.out, std::ios::binary | std::ios::trunc);
    if (f) {
      f << "# earmark tune: " << n_files << " files (" << tune_set.size() << " tuned on, " << held.size()
        << " held out, seed " << o.seed << "), reference " << o.ref << (o.map.empty() ? "" : ", map " + o.map)
        << "\n";
      f << out.to_yaml() << "\n";
    }
    if (!f) throw Error(o.out + ": cannot write the tuned configuration; check the folder exists and is writable");
  }

  // Report.
  const auto classes = det.config().events.allow;
  out_text << fmt::format("earmark tune: {} files: {} to tune on, {} held out (--holdout {}, --seed {})\n\n",
                          n_files, tune_set.size(), held.size(), o.holdout, o.seed);
  size_t w = 12;
  for (const auto& c : result.classes) w = std::max(w, c.label.size() + 1);
  out_text << fmt::format("{:<{}}{:>6}{:>7}{:>7}{:>8}{:>9}{:>9}  {}\n", "class", w, "Nref", "on", "off", "median",
                          "F1 base", "F1 tuned", "(tune split)");
  long tune_events = 0;
  for (const auto& c : result.classes) {
    tune_events += c.n_ref;
    if (c.tuned)
      out_text << fmt::format("{:<{}}{:>6}{:>7.2f}{:>7.3f}{:>7.2f}s{:>9}{:>9}\n", c.label, w, c.n_ref, c.setting.on,
                              c.setting.off, c.setting.median_s, num(c.f1_base), num(c.f1_tuned));
    else
      out_text << fmt::format("{:<{}}{:>6}{:>7}{:>7}{:>8}{:>9}{:>9}  base kept: {}\n", c.label, w, c.n_ref, "-", "-",
                              "-", num(c.f1_base), num(c.f1_tuned), c.note);
  }
  out_text << "\n";

  const bool has_held = !held.empty();
  const auto& eval_set = has_held ? held : tune_set;
  const auto& eval_kept = has_held ? held_kept : tune_kept;
  const auto before = score_split(eval_set, ref, det.config().events, tcfg.event_config, classes,
                                  finder(eval_set, eval_kept), tcfg.threads);
  const auto after =
      score_split(eval_set, ref, result.events, tcfg.event_config, classes, finder(eval_set, eval_kept), tcfg.threads);
  long eval_refs = before.eb.micro.n_ref;
  out_text << (has_held ? fmt::format("Held-out split ({} files, {} reference events):\n", held.size(), eval_refs)
                        : fmt::format("No held-out files (--holdout 0): figures on the tune split itself ({} files, "
                                      "{} reference events), which flatters the tuned setting:\n",
                                      tune_set.size(), eval_refs));
  out_text << fmt::format("  {:<28}{:>9}{:>9}\n", "", "base", "tuned");
  out_text << fmt::format("  {:<28}{:>9}{:>9}\n", "event-based F1 (macro)", num(before.eb.macro.f1),
                          num(after.eb.macro.f1));
  out_text << fmt::format("  {:<28}{:>9}{:>9}\n", "event-based F1 (micro)", num(before.eb.micro.f1),
                          num(after.eb.micro.f1));
  out_text << fmt::format("  {:<28}{:>9}{:>9}\n", "segment-based F1 (micro)", num(before.sb.micro.f1),
                          num(after.sb.micro.f1));
  out_text << fmt::format("  {:<28}{:>9}{:>9}\n", "segment-based F1 (macro)", num(before.sb.macro.f1),
                          num(after.sb.macro.f1));

  size_t tuned = 0;
  for (const auto& c : result.classes) tuned += c.tuned ? 1 : 0;
  auto better = [](double a, double b) { return (std::isnan(b) ? 0 : b) > (std::isnan(a) ? 0 : a) + 1e-9; };
  out_text << "\n";
  if (tuned == 0)
    out_text << "Tuning did not help: no class got a better setting than the base on the tune split"
             << (tune_events == 0 ? " (the tune split has no reference events)" : "") << "; " << o.out
             << " equals the base configuration.\n";
  else if (eval_refs == 0)
    out_text << "Tuning cannot be judged: the held-out split has no reference events; use more files or a larger "
                "--holdout.\n";
  else if (!better(before.eb.macro.f1, after.eb.macro.f1) && !better(before.eb.micro.f1, after.eb.micro.f1))
    out_text << fmt::format("Tuning did not help on held-out files (event-based F1 not higher){}.\n",
                            tune_events < 10 * long(std::max<size_t>(tuned, 1))
                                ? fmt::format("; with only {} reference events in the tune split the settings "
                                              "mostly fit chance, label more events",
                                              tune_events)
                                : std::string());
  else if (tune_events < 10 * long(tuned))
    out_text << fmt::format("Few reference events to tune on ({} for {} tuned classes): expect the held-out gain to "
                            "vary with the split (--seed).\n",
                            tune_events, tuned);
  out_text << fmt::format("Tuned {} of {} classes; configuration written to {} (use: earmark detect --config {})\n",
                          tuned, result.classes.size(), o.out, o.out);
  summary.text = out_text.str();
  summary.tuned = out;
  summary.files = n_files;
  summary.tune_files = tune_set.size();
  summary.held_out_files = held.size();
  summary.classes = result.classes.size();
  summary.tuned_classes = tuned;
  summary.event_f1_before = before.eb.macro.f1;
  summary.event_f1_after = after.eb.macro.f1;
  return summary;
}

}  // namespace earmark
