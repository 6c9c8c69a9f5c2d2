// `earmark eval` as a library call: sed_eval's event- and segment-based metrics and PSDS1/PSDS2
// of detections (event lists) and/or frame scores against a DCASE-style reference
// (earmark/evaluate.hpp).
#include "earmark/evaluate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "eval/label_map.hpp"
#include "eval/metrics.hpp"
#include "eval/psds.hpp"
#include "eval/tsv.hpp"

namespace earmark {

namespace {

namespace ev = earmark::eval;
using nlohmann::json;

std::string num(double v) {
  if (std::isnan(v)) return "-";
  if (std::abs(v) >= 1000) return fmt::format("{:.3g}", v);
  return fmt::format("{:.3f}", v);
}

void print_table(std::ostream& out, const std::string& title, const ev::SedResult& r) {
  out << title << "\n";
  size_t w = 12;
  for (const auto& c : r.classes) w = std::max(w, c.label.size() + 1);
  out << fmt::format("{:<{}}{:>7}{:>7}{:>7}{:>7}{:>7}{:>8}{:>8}{:>8}{:>10}\n", "class", w, "Nref", "Nsys", "TP", "FP",
                     "FN", "P", "R", "F1", "ER");
  for (const auto& c : r.classes)
    out << fmt::format("{:<{}}{:>7}{:>7}{:>7}{:>7}{:>7}{:>8}{:>8}{:>8}{:>10}\n", c.label, w, c.n_ref, c.n_sys, c.tp,
                       c.fp, c.fn, num(c.precision), num(c.recall), num(c.f1), num(c.error_rate));
  const auto& m = r.micro;
  out << fmt::format("{:<{}}{:>7}{:>7}{:>7}{:>7}{:>7}{:>8}{:>8}{:>8}{:>10}   S {} D {} I {}\n", "micro", w, m.n_ref,
                     m.n_sys, m.tp, m.fp, m.fn, num(m.precision), num(m.recall), num(m.f1), num(m.error_rate),
                     m.substitutions, m.deletions, m.insertions);
  out << fmt::format("{:<{}}{:>35}{:>8}{:>8}{:>8}{:>10}\n\n", "macro", w, "", num(r.macro.precision),
                     num(r.macro.recall), num(r.macro.f1), num(r.macro.error_rate));
}

json to_json(const ev::SedResult& r) {
  json classes = json::object();
  for (const auto& c : r.classes)
    classes[c.label] = {{"n_ref", c.n_ref},         {"n_sys", c.n_sys},
                        {"tp", c.tp},               {"fp", c.fp},
                        {"fn", c.fn},               {"precision", c.precision},
                        {"recall", c.recall},       {"f1", c.f1},
                        {"error_rate", c.error_rate}, {"deletion_rate", c.deletion_rate},
                        {"insertion_rate", c.insertion_rate}};
  const auto& m = r.micro;
  return {{"files", r.files},
          {"evaluated_length_s", r.evaluated_length_s},
          {"micro",
           {{"n_ref", m.n_ref},
            {"n_sys", m.n_sys},
            {"tp", m.tp},
            {"fp", m.fp},
            {"fn", m.fn},
            {"substitutions", m.substitutions},
            {"deletions", m.deletions},
            {"insertions", m.insertions},
            {"precision", m.precision},
            {"recall", m.recall},
            {"f1", m.f1},
            {"error_rate", m.error_rate},
            {"substitution_rate", m.substitution_rate},
            {"deletion_rate", m.deletion_rate},
            {"insertion_rate", m.insertion_rate}}},
          {"macro",
           {{"precision", r.macro.precision},
            {"recall", r.macro.recall},
            {"f1", r.macro.f1},
            {"error_rate", r.macro.error_rate},
            {"deletion_rate", r.macro.deletion_rate},
            {"insertion_rate", r.macro.insertion_rate}}},
          {"classes", classes}};
}

json to_json(const ev::PsdsResult& r, const ev::PsdsConfig& c) {
  json classes = json::object();
  for (const auto& k : r.classes) classes[k.label] = {{"psds", k.psds}, {"n_ref", k.n_ref}};
  return {{"value", r.value},
          {"config",
           {{"dtc", c.dtc},
            {"gtc", c.gtc},
            {"cttc", c.alpha_ct > 0 ? json(c.cttc) : json(nullptr)},
            {"alpha_ct", c.alpha_ct},
            {"alpha_st", c.alpha_st},
            {"max_efpr", c.max_efpr},
            {"thresholds", c.exact ? json("exact") : json(c.n_thresholds)}}},
          {"duration_s", r.duration_s},
          {"files", r.files},
          {"classes", classes},
          {"psd_roc", {{"efpr", r.efpr}, {"etpr", r.etpr}}}};
}

}  // namespace

void EvaluateOptions::validate() const {
  if (ref.empty()) throw Error("eval: give the reference: --ref REF.tsv");
  if (est.empty() && scores.empty())
    throw Error("eval: give the system output: --est EST.tsv (events) and/or --scores DIR (frame score tables)");
  auto range = [](const char* name, double v, double lo, double hi) {
    if (!(v >= lo && v <= hi)) throw Error(fmt::format("eval: {} must be between {} and {}, not {}", name, lo, hi, v));
  };
  range("--collar", collar, 0, 3600);
  range("--offset-ratio", offset_ratio, 0, 10);
  range("--segment", segment, 0.001, 3600);
  range("--threshold", threshold, 0, 1);
  if (matching != "optimal" && matching != "greedy")
    throw Error("eval: --matching must be optimal or greedy, not '" + matching + "'");
}

Evaluation evaluate(const EvaluateOptions& o) {
  o.validate();
  Evaluation result;
  std::ostringstream out;

  ev::EventBasedConfig ecfg;
  ecfg.t_collar = o.collar;
  ecfg.percentage_of_length = o.offset_ratio;
  ecfg.evaluate_offset = !o.onset_only;
  if (o.matching == "greedy") ecfg.matching = ev::Matching::Greedy;
  ecfg.validate();
  ev::SegmentBasedConfig scfg;
  scfg.time_resolution = o.segment;
  scfg.validate();
  ev::PsdsConfig p1 = ev::PsdsConfig::psds1(), p2 = ev::PsdsConfig::psds2();
  if (o.psds_thresholds == "exact") {
    p1.exact = p2.exact = true;
  } else {
    int n = 0;
    try {
      size_t used = 0;
      n = std::stoi(o.psds_thresholds, &used);
      if (used != o.psds_thresholds.size()) n = 0;
    } catch (const std::exception&) {
      n = 0;
    }
    if (n < 1) throw Error("eval: --psds-thresholds must be a count (e.g. 50) or 'exact'");
    p1.n_thresholds = p2.n_thresholds = n;
  }

  // Durations first: they bound the times the event lists may hold.
  ev::Durations durations = o.durations.empty() ? ev::Durations{} : ev::read_durations_tsv(o.durations);
  ev::EventTable ref = ev::read_events_tsv(o.ref, &durations);
  std::unique_ptr<ev::LabelMap> map;
  if (!o.map.empty()) {
    map = std::make_unique<ev::LabelMap>(ev::LabelMap::load(o.map));
    if (!o.audioset_labels.empty())
      map->check_known(ev::read_audioset_label_names(o.audioset_labels), o.audioset_labels);
  }

  // The evaluation set: files of the reference plus those only listed with a duration (files
  // without events, as DCASE reference lists leave them out).
  for (const auto& [f, d] : durations) ref.add_file(f);
  const std::vector<std::string> files = ref.files();
  const std::set<std::string> known(files.begin(), files.end());

  ev::EventTable est;
  std::string est_note;
  if (!o.est.empty()) {
    est = ev::read_events_tsv(o.est, &durations);
    std::vector<std::string> stray;
    for (const auto& f : est.files())
      if (!known.count(f)) stray.push_back(f);
    if (!stray.empty())
      throw Error(fmt::format("{}: {} file(s) not in the reference, e.g. '{}'; list files without reference events "
                              "as filename-only rows in {} or in --durations",
                              o.est, stray.size(), stray[0], o.ref));
    if (map) {
      const auto& classes = map->classes();
      size_t unmapped = 0;
      for (const auto& f : est.files())
        for (const auto& e : est.events(f))
          if (map->dataset_labels(e.label).empty() &&
              std::find(classes.begin(), classes.end(), e.label) == classes.end())
            ++unmapped;
      if (unmapped)
        result.notes.push_back(fmt::format("{} of {} estimated events have a label the map does not list; they are "
                                           "left out",
                                           unmapped, est.size()));
      est = map->map_events(est);
    }
  }

  std::map<std::string, FrameScores> scores;
  if (!o.scores.empty()) {
    scores = ev::read_scores_dir(o.scores, files);
    if (map)
      for (auto& [f, s] : scores) s = map->map_scores(s);
    // A file's score grid spans its audio, a better length than its last event when
    // --durations does not give one.
    for (const auto& [f, s] : scores) durations.emplace(f, s.frames * s.hop_s);
    if (o.est.empty()) {
      // Without an event list, events are the runs of frames at or above --threshold.
      est_note = fmt::format(" (events: frame scores >= {})", o.threshold);
      for (const auto& f : files) {
        const auto& s = scores.at(f);
        const double len = durations.at(f);
        est.add_file(f);
        for (size_t c = 0; c < s.labels.size(); ++c)
          for (const auto& [on, off] : ev::threshold_runs(s, int(c), o.threshold, len)) {
            Event e;
            e.onset = on, e.offset = off, e.label = s.labels[c], e.class_index = int(c);
            est.add(f, e);
          }
      }
    }
  }

  const auto eb = ev::event_based(ref, est, ecfg);
  const auto sb = ev::segment_based(ref, est, durations, scfg);
  ev::PsdsResult r1, r2;
  if (!scores.empty()) {
    r1 = ev::psds(scores, ref, durations, p1);
    r2 = ev::psds(scores, ref, durations, p2);
  }

  out << fmt::format("earmark eval: {} files, {} reference events, {} estimated events{}\n\n", files.size(),
                     ref.size(), est.size(), est_note);
  print_table(out,
              fmt::format("Event-based ({}, onset collar {} s{}, {} matching)",
                          o.onset_only ? "onset only" : "onset + offset", o.collar,
                          o.onset_only ? "" : fmt::format(", offset collar max({} s, {}% of length)", o.collar,
                                                          o.offset_ratio * 100),
                          o.matching),
              eb);
  print_table(out, fmt::format("Segment-based ({} s segments, {:.1f} s evaluated)", o.segment,
                                     sb.evaluated_length_s),
              sb);

  json j = {{"ref", o.ref},
            {"est", o.est.empty() ? json(nullptr) : json(o.est)},
            {"scores", o.scores.empty() ? json(nullptr) : json(o.scores)},
            {"map", o.map.empty() ? json(nullptr) : json(o.map)},
            {"files", files.size()}};
  j["event_based"] = to_json(eb);
  j["event_based"]["config"] = {{"t_collar", o.collar},
                                {"percentage_of_length", o.offset_ratio},
                                {"evaluate_onset", true},
                                {"evaluate_offset", !o.onset_only},
                                {"matching", o.matching}};
  j["segment_based"] = to_json(sb);
  j["segment_based"]["config"] = {{"time_resolution", o.segment}};
  if (o.est.empty()) j["est_from_scores_threshold"] = o.threshold;

  if (!scores.empty()) {
    out << fmt::format("PSDS ({} thresholds, {:.1f} s of audio)\n",
                       p1.exact ? std::string("every distinct score as") : std::to_string(p1.n_thresholds),
                       r1.duration_s);
    size_t w = 12;
    for (const auto& c : r1.classes) w = std::max(w, c.label.size() + 1);
    out << fmt::format("{:<{}}{:>8}{:>8}{:>8}\n", "class", w, "Nref", "PSDS1", "PSDS2");
    for (size_t i = 0; i < r1.classes.size(); ++i)
      out << fmt::format("{:<{}}{:>8}{:>8}{:>8}\n", r1.classes[i].label, w, r1.classes[i].n_ref,
                         num(r1.classes[i].psds), num(r2.classes[i].psds));
    out << fmt::format("{:<{}}{:>8}{:>8}{:>8}\n", "all", w, "", num(r1.value), num(r2.value));
    out << "  PSDS1: dtc = gtc = 0.7, alpha_st = 1; PSDS2: dtc = gtc = 0.1, cttc = 0.3, alpha_ct = 0.5, "
           "alpha_st = 1; per class: alpha_st n/a; eFPR up to 100/h\n";
    j["psds1"] = to_json(r1, p1);
    j["psds2"] = to_json(r2, p2);
  }

  result.text = out.str();
  result.json = j.dump(2) + "\n";
  result.files = files.size();
  result.event_f1 = eb.micro.f1;
  result.segment_f1 = sb.micro.f1;
  if (!scores.empty()) result.psds1 = r1.value, result.psds2 = r2.value;
  if (!o.json_out.empty()) {
    std::ofstream f(o.json_out);
    if (!f) throw Error(o.json_out + ": cannot write the JSON report; check the folder exists and is writable");
    f << result.json;
    if (!f) throw Error(o.json_out + ": writing the JSON report failed");
  }
  return result;
}


}  // namespace earmark
