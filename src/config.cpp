// Config: YAML/JSON loading, validation in one place, printing.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"

namespace earmark {

namespace {

[[noreturn]] void bad(const std::string& key, const std::string& what) {
  throw Error("config: '" + key + "' " + what);
}

template <typename T>
void get(const YAML::Node& n, const char* key, T& out, const std::string& origin, const std::string& section) {
  if (!n || !n[key]) return;
  try {
    out = n[key].as<T>();
  } catch (const YAML::Exception& e) {
    throw Error(origin + ": '" + section + "." + key + "' has the wrong type (" + e.msg + ")");
  }
}

void check_known(const YAML::Node& n, const std::vector<std::string>& known, const std::string& origin,
                 const std::string& section) {
  if (!n) return;
  if (!n.IsMap()) throw Error(origin + ": '" + section + "' must be a mapping");
  for (const auto& kv : n) {
    const auto k = kv.first.as<std::string>();
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string list;
      for (const auto& s : known) list += (list.empty() ? "" : ", ") + s;
      throw Error(origin + ": unknown key '" + (section.empty() ? k : section + "." + k) + "' (known: " + list + ")");
    }
  }
}

}  // namespace

void Config::validate() const {
  if (model.name.empty()) bad("model.name", "is empty: give a model name such as mn04_as or a checkpoint path");
  if (model.threads < 0 || model.threads > 256) bad("model.threads", "must be between 0 (auto) and 256");
  if (model.batch < 1 || model.batch > 256) bad("model.batch", "must be between 1 and 256");
  for (const auto& h : model.heads)
    if (h.empty()) bad("model.heads", "has an empty entry: give the folders `earmark train -o` wrote");
  if (model.head_only && model.heads.empty())
    bad("model.head_only", "is true but model.heads is empty: add a head folder or set head_only to false");
  if (!model.heads.empty() && frames.method != "columns")
    bad("frames.method", "must be 'columns' with model.heads (heads score the network's frame embeddings)");

  if (frames.method != "columns" && frames.method != "windows")
    bad("frames.method", "must be 'columns' or 'windows', not '" + frames.method + "'");
  if (frames.chunk_s < 0.32 || frames.chunk_s > 60.0) bad("frames.chunk_s", "must be between 0.32 and 60 seconds");
  if (frames.context_s < 0.0 || frames.context_s > 10.0) bad("frames.context_s", "must be between 0 and 10 seconds");
  if (frames.pool_columns < 1 || frames.pool_columns > 31 || frames.pool_columns % 2 == 0)
    bad("frames.pool_columns", "must be an odd number between 1 and 31");
  if (frames.window_s < 0.5 || frames.window_s > 30.0) bad("frames.window_s", "must be between 0.5 and 30 seconds");
  if (frames.hop_s < 0.01 || frames.hop_s > frames.window_s) bad("frames.hop_s", "must be between 0.01 s and frames.window_s");
  if (frames.min_input_s < 0.0 || frames.min_input_s > 10.0) bad("frames.min_input_s", "must be between 0 and 10 seconds");

  auto check_unit = [](const std::string& key, double v) {
    if (!(v >= 0.0 && v <= 1.0)) bad(key, "must be a score between 0 and 1");
  };
  check_unit("events.threshold_on", events.threshold_on);
  check_unit("events.threshold_off", events.threshold_off);
  if (events.threshold_off > events.threshold_on)
    bad("events.threshold_off", "must not be above events.threshold_on (hysteresis keeps an event on down to it)");
  if (events.median_s < 0 || events.median_s > 60) bad("events.median_s", "must be between 0 and 60 seconds");
  if (events.min_duration_s < 0) bad("events.min_duration_s", "must not be negative");
  if (events.merge_gap_s < 0) bad("events.merge_gap_s", "must not be negative");
  if (!(events.refine_search_s >= 0 && events.refine_search_s <= 10))
    bad("events.refine_search_s", "must be between 0 and 10 seconds");
  if (!(events.refine_threshold_db >= 0 && events.refine_threshold_db <= 40))
    bad("events.refine_threshold_db", "must be between 0 and 40 dB");
  if (!(events.refine_bridge_s >= 0 && events.refine_bridge_s <= 5))
    bad("events.refine_bridge_s", "must be between 0 and 5 seconds");
  if (frames.passes != 1 && frames.passes != 2 && frames.passes != 4 && frames.passes != 8)
    bad("frames.passes", "must be 1, 2, 4 or 8");
  if (events.max_classes_per_frame < 0) bad("events.max_classes_per_frame", "must be 0 (no limit) or more");
  for (const auto& [label, t] : events.per_class) {
    const std::string k = "events.per_class." + label;
    if (t.on >= 0) check_unit(k + ".on", t.on);
    if (t.off >= 0) check_unit(k + ".off", t.off);
    const double on = t.on >= 0 ? t.on : events.threshold_on;
    const double off = t.off >= 0 ? t.off : std::min(events.threshold_off, on);
    if (off > on) bad(k + ".off", "must not be above its 'on' threshold");
    if (t.median_s > 60) bad(k + ".median_s", "must be at most 60 seconds");
  }
  for (const auto& [g, members] : events.groups)
    if (members.empty()) bad("events.groups." + g, "has no member labels");
  check_unit("events.rollup_ratio", events.rollup_ratio);

  condition.validate();

  static const std::vector<std::string> known = {"csv", "json", "audacity", "tsv"};
  for (const auto& f : output.formats)
    if (std::find(known.begin(), known.end(), f) == known.end())
      bad("output.formats", "has unknown format '" + f + "' (known: csv, json, audacity, tsv)");
}

Config Config::from_yaml_text(const std::string& text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(origin + ": not valid YAML/JSON at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  Config c;
  if (!root || root.IsNull()) return c;
  if (!root.IsMap()) throw Error(origin + ": the top level must be a mapping (model:, frames:, events:, output:)");
  check_known(root, {"model", "condition", "frames", "events", "output"}, origin, "");

  const auto m = root["model"];
  check_known(m, {"name", "models_dir", "threads", "batch", "heads", "head_only", "head_thresholds"}, origin, "model");
  get(m, "name", c.model.name, origin, "model");
  get(m, "models_dir", c.model.models_dir, origin, "model");
  get(m, "threads", c.model.threads, origin, "model");
  get(m, "batch", c.model.batch, origin, "model");
  if (m && m["heads"] && m["heads"].IsScalar()) {
    c.model.heads = {m["heads"].as<std::string>()};
  } else {
    get(m, "heads", c.model.heads, origin, "model");
  }
  get(m, "head_only", c.model.head_only, origin, "model");
  get(m, "head_thresholds", c.model.head_thresholds, origin, "model");

  const auto cond = root["condition"];
  check_known(cond, {"dc_remove", "highpass", "denoise", "normalize"}, origin, "condition");
  if (cond) {
    const auto dc = cond["dc_remove"];
    check_known(dc, {"enabled", "cutoff_hz"}, origin, "condition.dc_remove");
    get(dc, "enabled", c.condition.dc_remove.enabled, origin, "condition.dc_remove");
    get(dc, "cutoff_hz", c.condition.dc_remove.cutoff_hz, origin, "condition.dc_remove");
    const auto hp = cond["highpass"];
    check_known(hp, {"enabled", "cutoff_hz"}, origin, "condition.highpass");
    get(hp, "enabled", c.condition.highpass.enabled, origin, "condition.highpass");
    get(hp, "cutoff_hz", c.condition.highpass.cutoff_hz, origin, "condition.highpass");
    const auto dn = cond["denoise"];
    const std::string ds = "condition.denoise";
    check_known(dn, {"enabled", "fft_size", "hop", "noise_init_s", "quiet_fraction", "update_window_s", "update_gate_db",
                     "update_time_s", "over_subtraction", "dd_alpha", "gain_floor_db", "gain_release_s"},
                origin, ds);
    auto& d = c.condition.denoise;
    get(dn, "enabled", d.enabled, origin, ds);
    get(dn, "fft_size", d.fft_size, origin, ds);
    get(dn, "hop", d.hop, origin, ds);
    get(dn, "noise_init_s", d.noise_init_s, origin, ds);
    get(dn, "quiet_fraction", d.quiet_fraction, origin, ds);
    get(dn, "update_window_s", d.update_window_s, origin, ds);
    get(dn, "update_gate_db", d.update_gate_db, origin, ds);
    get(dn, "update_time_s", d.update_time_s, origin, ds);
    get(dn, "over_subtraction", d.over_subtraction, origin, ds);
    get(dn, "dd_alpha", d.dd_alpha, origin, ds);
    get(dn, "gain_floor_db", d.gain_floor_db, origin, ds);
    get(dn, "gain_release_s", d.gain_release_s, origin, ds);
    const auto nm = cond["normalize"];
    const std::string ns = "condition.normalize";
    check_known(nm, {"mode", "peak_target_dbfs", "loudness_target_lufs", "max_gain_db", "max_noise_floor_dbfs",
                     "peak_ceiling_dbfs", "analysis_s"},
                origin, ns);
    auto& n = c.condition.normalize;
    get(nm, "mode", n.mode, origin, ns);
    get(nm, "peak_target_dbfs", n.peak_target_dbfs, origin, ns);
    get(nm, "loudness_target_lufs", n.loudness_target_lufs, origin, ns);
    get(nm, "max_gain_db", n.max_gain_db, origin, ns);
    get(nm, "max_noise_floor_dbfs", n.max_noise_floor_dbfs, origin, ns);
    get(nm, "peak_ceiling_dbfs", n.peak_ceiling_dbfs, origin, ns);
    get(nm, "analysis_s", n.analysis_s, origin, ns);
  }

  const auto f = root["frames"];
  check_known(f, {"method", "chunk_s", "context_s", "pool_columns", "passes", "window_s", "hop_s", "min_input_s"}, origin,
              "frames");
  get(f, "method", c.frames.method, origin, "frames");
  get(f, "chunk_s", c.frames.chunk_s, origin, "frames");
  get(f, "context_s", c.frames.context_s, origin, "frames");
  get(f, "pool_columns", c.frames.pool_columns, origin, "frames");
  get(f, "passes", c.frames.passes, origin, "frames");
  get(f, "window_s", c.frames.window_s, origin, "frames");
  get(f, "hop_s", c.frames.hop_s, origin, "frames");
  get(f, "min_input_s", c.frames.min_input_s, origin, "frames");

  const auto e = root["events"];
  check_known(e, {"threshold_on", "threshold_off", "median_s", "min_duration_s", "merge_gap_s",
                  "max_classes_per_frame", "refine", "refine_search_s", "refine_threshold_db", "refine_bridge_s",
                  "per_class", "allow", "deny", "groups", "rollup", "rollup_ratio", "ontology", "require_ontology"},
              origin, "events");
  get(e, "threshold_on", c.events.threshold_on, origin, "events");
  get(e, "threshold_off", c.events.threshold_off, origin, "events");
  get(e, "median_s", c.events.median_s, origin, "events");
  get(e, "min_duration_s", c.events.min_duration_s, origin, "events");
  get(e, "merge_gap_s", c.events.merge_gap_s, origin, "events");
  get(e, "max_classes_per_frame", c.events.max_classes_per_frame, origin, "events");
  get(e, "refine", c.events.refine, origin, "events");
  get(e, "refine_search_s", c.events.refine_search_s, origin, "events");
  get(e, "refine_threshold_db", c.events.refine_threshold_db, origin, "events");
  get(e, "refine_bridge_s", c.events.refine_bridge_s, origin, "events");
  get(e, "allow", c.events.allow, origin, "events");
  get(e, "deny", c.events.deny, origin, "events");
  get(e, "groups", c.events.groups, origin, "events");
  get(e, "rollup", c.events.rollup, origin, "events");
  get(e, "rollup_ratio", c.events.rollup_ratio, origin, "events");
  get(e, "ontology", c.events.ontology, origin, "events");
  get(e, "require_ontology", c.events.require_ontology, origin, "events");
  if (e && e["per_class"]) {
    const auto pc = e["per_class"];
    if (!pc.IsMap()) throw Error(origin + ": 'events.per_class' must map labels to {on, off, median_s, min_duration_s}");
    for (const auto& kv : pc) {
      const auto label = kv.first.as<std::string>();
      const std::string sec = "events.per_class." + label;
      check_known(kv.second, {"on", "off", "median_s", "min_duration_s"}, origin, sec);
      ClassThreshold t;
      get(kv.second, "on", t.on, origin, sec);
      get(kv.second, "off", t.off, origin, sec);
      get(kv.second, "median_s", t.median_s, origin, sec);
      get(kv.second, "min_duration_s", t.min_duration_s, origin, sec);
      c.events.per_class[label] = t;
    }
  }

  const auto o = root["output"];
  check_known(o, {"formats", "frame_scores", "detection_scores", "per_file"}, origin, "output");
  get(o, "formats", c.output.formats, origin, "output");
  get(o, "frame_scores", c.output.frame_scores, origin, "output");
  get(o, "detection_scores", c.output.detection_scores, origin, "output");
  get(o, "per_file", c.output.per_file, origin, "output");
  return c;
}

Config Config::from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the config file (check the path and permissions)");
  std::stringstream ss;
  ss << in.rdbuf();
  Config c = from_yaml_text(ss.str(), path);
  // Head folders named relative to the config file are taken from its folder.
  for (auto& h : c.model.heads)
    if (!h.empty() && std::filesystem::path(h).is_relative())
      h = (std::filesystem::path(path).parent_path() / h).lexically_normal().string();
  return c;
}

std::string Config::to_yaml() const {
  YAML::Emitter y;
  // Shortest form that reads back the same value: 0.15, not 0.14999999999999999.
  y.SetDoublePrecision(std::numeric_limits<double>::digits10);
  y.SetFloatPrecision(std::numeric_limits<float>::digits10);
  y << YAML::BeginMap;
  y << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "name" << YAML::Value << model.name;
  y << YAML::Key << "models_dir" << YAML::Value << model.models_dir;
  y << YAML::Key << "threads" << YAML::Value << model.threads;
  y << YAML::Key << "batch" << YAML::Value << model.batch;
  y << YAML::Key << "heads" << YAML::Value << YAML::Flow << model.heads;
  y << YAML::Key << "head_only" << YAML::Value << model.head_only;
  y << YAML::Key << "head_thresholds" << YAML::Value << model.head_thresholds;
  y << YAML::EndMap;
  {
    const auto& cc = condition;
    y << YAML::Key << "condition" << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "dc_remove" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "enabled"
      << YAML::Value << cc.dc_remove.enabled << YAML::Key << "cutoff_hz" << YAML::Value << cc.dc_remove.cutoff_hz
      << YAML::EndMap;
    y << YAML::Key << "highpass" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "enabled"
      << YAML::Value << cc.highpass.enabled << YAML::Key << "cutoff_hz" << YAML::Value << cc.highpass.cutoff_hz
      << YAML::EndMap;
    const auto& d = cc.denoise;
    y << YAML::Key << "denoise" << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "enabled" << YAML::Value << d.enabled << YAML::Key << "fft_size" << YAML::Value << d.fft_size
      << YAML::Key << "hop" << YAML::Value << d.hop << YAML::Key << "noise_init_s" << YAML::Value << d.noise_init_s
      << YAML::Key << "quiet_fraction" << YAML::Value << d.quiet_fraction << YAML::Key << "update_window_s"
      << YAML::Value << d.update_window_s << YAML::Key << "update_gate_db" << YAML::Value << d.update_gate_db
      << YAML::Key << "update_time_s" << YAML::Value << d.update_time_s << YAML::Key << "over_subtraction"
      << YAML::Value << d.over_subtraction << YAML::Key << "dd_alpha" << YAML::Value << d.dd_alpha << YAML::Key
      << "gain_floor_db" << YAML::Value << d.gain_floor_db << YAML::Key << "gain_release_s" << YAML::Value
      << d.gain_release_s;
    y << YAML::EndMap;
    const auto& n = cc.normalize;
    y << YAML::Key << "normalize" << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "mode" << YAML::Value << n.mode << YAML::Key << "peak_target_dbfs" << YAML::Value
      << n.peak_target_dbfs << YAML::Key << "loudness_target_lufs" << YAML::Value << n.loudness_target_lufs
      << YAML::Key << "max_gain_db" << YAML::Value << n.max_gain_db << YAML::Key << "max_noise_floor_dbfs"
      << YAML::Value << n.max_noise_floor_dbfs << YAML::Key << "peak_ceiling_dbfs" << YAML::Value
      << n.peak_ceiling_dbfs << YAML::Key << "analysis_s" << YAML::Value << n.analysis_s;
    y << YAML::EndMap;
    y << YAML::EndMap;
  }
  y << YAML::Key << "frames" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "method" << YAML::Value << frames.method;
  y << YAML::Key << "chunk_s" << YAML::Value << frames.chunk_s;
  y << YAML::Key << "context_s" << YAML::Value << frames.context_s;
  y << YAML::Key << "pool_columns" << YAML::Value << frames.pool_columns;
  y << YAML::Key << "passes" << YAML::Value << frames.passes;
  y << YAML::Key << "window_s" << YAML::Value << frames.window_s;
  y << YAML::Key << "hop_s" << YAML::Value << frames.hop_s;
  y << YAML::Key << "min_input_s" << YAML::Value << frames.min_input_s;
  y << YAML::EndMap;
  y << YAML::Key << "events" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "threshold_on" << YAML::Value << events.threshold_on;
  y << YAML::Key << "threshold_off" << YAML::Value << events.threshold_off;
  y << YAML::Key << "median_s" << YAML::Value << events.median_s;
  y << YAML::Key << "min_duration_s" << YAML::Value << events.min_duration_s;
  y << YAML::Key << "merge_gap_s" << YAML::Value << events.merge_gap_s;
  y << YAML::Key << "max_classes_per_frame" << YAML::Value << events.max_classes_per_frame;
  y << YAML::Key << "refine" << YAML::Value << events.refine;
  y << YAML::Key << "refine_search_s" << YAML::Value << events.refine_search_s;
  y << YAML::Key << "refine_threshold_db" << YAML::Value << events.refine_threshold_db;
  y << YAML::Key << "refine_bridge_s" << YAML::Value << events.refine_bridge_s;
  y << YAML::Key << "per_class" << YAML::Value << YAML::BeginMap;
  for (const auto& [label, t] : events.per_class) {
    y << YAML::Key << label << YAML::Value << YAML::Flow << YAML::BeginMap;
    if (t.on >= 0) y << YAML::Key << "on" << YAML::Value << t.on;
    if (t.off >= 0) y << YAML::Key << "off" << YAML::Value << t.off;
    if (t.median_s >= 0) y << YAML::Key << "median_s" << YAML::Value << t.median_s;
    if (t.min_duration_s >= 0) y << YAML::Key << "min_duration_s" << YAML::Value << t.min_duration_s;
    y << YAML::EndMap;
  }
  y << YAML::EndMap;
  y << YAML::Key << "allow" << YAML::Value << YAML::Flow << events.allow;
  y << YAML::Key << "deny" << YAML::Value << YAML::Flow << events.deny;
  y << YAML::Key << "groups" << YAML::Value << YAML::BeginMap;
  for (const auto& [g, members] : events.groups) y << YAML::Key << g << YAML::Value << YAML::Flow << members;
  y << YAML::EndMap;
  y << YAML::Key << "rollup" << YAML::Value << events.rollup;
  y << YAML::Key << "rollup_ratio" << YAML::Value << events.rollup_ratio;
  y << YAML::Key << "ontology" << YAML::Value << events.ontology;
  y << YAML::Key << "require_ontology" << YAML::Value << events.require_ontology;
  y << YAML::EndMap;
  y << YAML::Key << "output" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "formats" << YAML::Value << YAML::Flow << output.formats;
  y << YAML::Key << "frame_scores" << YAML::Value << output.frame_scores;
  y << YAML::Key << "detection_scores" << YAML::Value << output.detection_scores;
  y << YAML::Key << "per_file" << YAML::Value << output.per_file;
  y << YAML::EndMap;
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

const char* version() { return EARMARK_VERSION; }

}  // namespace earmark
