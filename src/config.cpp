// Config: one field table per struct drives YAML/JSON loading, the unknown-key check,
// validation and printing.
//
// Adding a key: add the member (with its default) to the struct in include/earmark/config.hpp
// and one line to that struct's table below (key, member, range or allowed values, rule in
// words, help). Parsing, printing, the unknown-key check and the finite/range check follow
// from the line; only rules that tie several keys together are written out in validate().
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <variant>

#include <fmt/format.h>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"
#include "util/file.hpp"

namespace earmark {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

using StringList = std::vector<std::string>;
using PerClass = std::map<std::string, ClassThreshold>;
using Groups = std::map<std::string, std::vector<std::string>>;

// One configuration key of struct S.
template <class S>
struct Field {
  using Member = std::variant<std::string S::*, double S::*, int S::*, bool S::*, StringList S::*, PerClass S::*,
                              Groups S::*>;
  const char* key;
  Member member;
  // Numbers: the allowed range (inclusive unless open). Every number must also be finite.
  double lo = -kInf;
  double hi = kInf;
  bool lo_open = false;
  bool hi_open = false;
  // Strings and string lists: the allowed values, separated by '|' (empty: any).
  const char* allowed = "";
  // The rule in words for error messages ("must be between 0.32 and 60 seconds").
  const char* rule = "";
  const char* help = "";
  // ClassThreshold: a negative value means "use the section's default" and is not printed.
  bool negative_is_default = false;
  // Printed in flow style ([a, b] / {k: v}).
  bool flow = false;
};

// ---- the tables -------------------------------------------------------------------------------

const std::vector<Field<ModelConfig>>& model_fields() {
  using S = ModelConfig;
  static const std::vector<Field<S>> t = {
      {.key = "name", .member = &S::name, .help = "published model name (mn04_as, ...) or checkpoint path"},
      {.key = "models_dir", .member = &S::models_dir, .help = "folder of the checkpoints"},
      {.key = "threads", .member = &S::threads, .lo = 0, .hi = 256, .rule = "must be between 0 (auto) and 256",
       .help = "threads per file"},
      {.key = "batch", .member = &S::batch, .lo = 1, .hi = 256, .rule = "must be between 1 and 256",
       .help = "chunks per network pass"},
      {.key = "backend", .member = &S::backend, .allowed = "auto|xnnpack|onednn",
       .rule = "must be auto, xnnpack or onednn", .help = "LibTorch kernels for the convolutions"},
      {.key = "spill_after_s", .member = &S::spill_after_s, .lo = 0, .hi = 1e7,
       .rule = "must be between 0 (never) and 10000000 s",
       .help = "seconds of a file's frame data kept in memory before the rest goes to a temporary file"},
      {.key = "heads", .member = &S::heads, .help = "custom-class head folders", .flow = true},
      {.key = "head_only", .member = &S::head_only, .help = "report only the heads' classes"},
      {.key = "head_thresholds", .member = &S::head_thresholds, .help = "use the heads' suggested thresholds"},
  };
  return t;
}

const std::vector<Field<DcRemoveConfig>>& dc_remove_fields() {
  using S = DcRemoveConfig;
  static const std::vector<Field<S>> t = {
      {.key = "enabled", .member = &S::enabled},
      {.key = "cutoff_hz", .member = &S::cutoff_hz, .lo = 1, .hi = 40, .rule = "must be between 1 and 40 Hz"},
  };
  return t;
}

const std::vector<Field<HighpassConfig>>& highpass_fields() {
  using S = HighpassConfig;
  static const std::vector<Field<S>> t = {
      {.key = "enabled", .member = &S::enabled},
      {.key = "cutoff_hz", .member = &S::cutoff_hz, .lo = 10, .hi = 2000, .rule = "must be between 10 and 2000 Hz"},
  };
  return t;
}

const std::vector<Field<DenoiseConfig>>& denoise_fields() {
  using S = DenoiseConfig;
  static const std::vector<Field<S>> t = {
      {.key = "enabled", .member = &S::enabled},
      {.key = "fft_size", .member = &S::fft_size, .lo = 64, .hi = 16384,
       .rule = "must be a power of two from 64 to 16384"},
      {.key = "hop", .member = &S::hop, .lo = 1, .hi = 8192,
       .rule = "must divide fft_size with a quotient of at least 2 (e.g. fft_size/4)"},
      {.key = "noise_init_s", .member = &S::noise_init_s, .lo = 0, .hi = 30, .lo_open = true,
       .rule = "must be in (0, 30] s"},
      {.key = "quiet_fraction", .member = &S::quiet_fraction, .lo = 0, .hi = 1, .lo_open = true,
       .rule = "must be in (0, 1]"},
      {.key = "update_window_s", .member = &S::update_window_s, .lo = 0, .hi = 60, .lo_open = true,
       .rule = "must be in (0, 60] s"},
      {.key = "update_gate_db", .member = &S::update_gate_db, .lo = 0, .hi = 20,
       .rule = "must be between 0 and 20 dB"},
      {.key = "update_time_s", .member = &S::update_time_s, .lo = 0, .hi = 600, .lo_open = true,
       .rule = "must be in (0, 600] s"},
      {.key = "over_subtraction", .member = &S::over_subtraction, .lo = 0.5, .hi = 5,
       .rule = "must be between 0.5 and 5"},
      {.key = "dd_alpha", .member = &S::dd_alpha, .lo = 0, .hi = 1, .hi_open = true, .rule = "must be in [0, 1)"},
      {.key = "gain_floor_db", .member = &S::gain_floor_db, .lo = -60, .hi = 0,
       .rule = "must be between -60 and 0 dB"},
      {.key = "gain_release_s", .member = &S::gain_release_s, .lo = 0, .hi = 1, .rule = "must be in [0, 1] s"},
  };
  return t;
}

const std::vector<Field<NormalizeConfig>>& normalize_fields() {
  using S = NormalizeConfig;
  static const std::vector<Field<S>> t = {
      {.key = "mode", .member = &S::mode, .allowed = "off|peak|loudness",
       .rule = "must be off, peak or loudness"},
      {.key = "peak_target_dbfs", .member = &S::peak_target_dbfs, .lo = -60, .hi = 0,
       .rule = "must be between -60 and 0 dBFS"},
      {.key = "loudness_target_lufs", .member = &S::loudness_target_lufs, .lo = -70, .hi = 0,
       .rule = "must be between -70 and 0 LUFS"},
      {.key = "max_gain_db", .member = &S::max_gain_db, .lo = 0, .hi = 80, .rule = "must be between 0 and 80 dB"},
      {.key = "max_noise_floor_dbfs", .member = &S::max_noise_floor_dbfs, .lo = -200, .hi = 0,
       .rule = "must be between -200 and 0 dBFS"},
      {.key = "peak_ceiling_dbfs", .member = &S::peak_ceiling_dbfs, .lo = -60, .hi = 0,
       .rule = "must be between -60 and 0 dBFS"},
      {.key = "analysis_s", .member = &S::analysis_s, .lo = 0.5, .hi = 600, .rule = "must be between 0.5 and 600 s"},
  };
  return t;
}

const std::vector<Field<FramesConfig>>& frames_fields() {
  using S = FramesConfig;
  static const std::vector<Field<S>> t = {
      {.key = "method", .member = &S::method, .allowed = "columns|windows",
       .rule = "must be 'columns' or 'windows'"},
      {.key = "chunk_s", .member = &S::chunk_s, .lo = 0.32, .hi = 60, .rule = "must be between 0.32 and 60 seconds"},
      {.key = "context_s", .member = &S::context_s, .lo = 0, .hi = 10, .rule = "must be between 0 and 10 seconds"},
      {.key = "pool_columns", .member = &S::pool_columns, .lo = 1, .hi = 31,
       .rule = "must be an odd number between 1 and 31"},
      {.key = "column_norm_max", .member = &S::column_norm_max, .lo = 0, .hi = 1000,
       .rule = "must be 0 (off) or a norm between 0 and 1000",
       .help = "pooled column features longer than this are scaled down to it before classifying"},
      {.key = "passes", .member = &S::passes, .lo = 1, .hi = 8, .rule = "must be 1, 2, 4 or 8",
       .help = "passes shifted by 0.32 s / passes, interleaved into one finer grid"},
      {.key = "shared_passes", .member = &S::shared_passes,
       .help = "passes: 2 share the network's layers before its last time stride (about 1.3 runs instead of 2)"},
      {.key = "window_s", .member = &S::window_s, .lo = 0.5, .hi = 30, .rule = "must be between 0.5 and 30 seconds"},
      {.key = "hop_s", .member = &S::hop_s, .lo = 0.01, .hi = 30,
       .rule = "must be between 0.01 s and frames.window_s"},
      {.key = "min_input_s", .member = &S::min_input_s, .lo = 0, .hi = 10,
       .rule = "must be between 0 and 10 seconds"},
  };
  return t;
}

const std::vector<Field<ClassThreshold>>& class_threshold_fields() {
  using S = ClassThreshold;
  static const std::vector<Field<S>> t = {
      {.key = "on", .member = &S::on, .lo = 0, .hi = 1, .rule = "must be a score between 0 and 1",
       .negative_is_default = true},
      {.key = "off", .member = &S::off, .lo = 0, .hi = 1, .rule = "must be a score between 0 and 1",
       .negative_is_default = true},
      {.key = "median_s", .member = &S::median_s, .lo = 0, .hi = 60, .rule = "must be at most 60 seconds",
       .negative_is_default = true},
      {.key = "min_duration_s", .member = &S::min_duration_s, .lo = 0, .hi = 3600,
       .rule = "must be at most 3600 seconds", .negative_is_default = true},
  };
  return t;
}

const std::vector<Field<EventsConfig>>& events_fields() {
  using S = EventsConfig;
  static const std::vector<Field<S>> t = {
      {.key = "threshold_on", .member = &S::threshold_on, .lo = 0, .hi = 1, .rule = "must be a score between 0 and 1",
       .help = "an event starts where the smoothed score reaches this"},
      {.key = "threshold_off", .member = &S::threshold_off, .lo = 0, .hi = 1,
       .rule = "must be a score between 0 and 1", .help = "and lasts while it stays above this"},
      {.key = "median_s", .member = &S::median_s, .lo = 0, .hi = 60, .rule = "must be between 0 and 60 seconds"},
      {.key = "min_duration_s", .member = &S::min_duration_s, .lo = 0, .hi = 3600,
       .rule = "must be between 0 and 3600 seconds"},
      {.key = "merge_gap_s", .member = &S::merge_gap_s, .lo = 0, .hi = 3600,
       .rule = "must be between 0 and 3600 seconds"},
      {.key = "max_classes_per_frame", .member = &S::max_classes_per_frame, .lo = 0, .hi = 100000,
       .rule = "must be 0 (no limit) or a count up to 100000"},
      {.key = "refine", .member = &S::refine, .help = "event boundaries from the signal at 10 ms"},
      {.key = "min_salience_db", .member = &S::min_salience_db, .lo = 0, .hi = 60,
       .rule = "must be between 0 and 60 dB (0: off)"},
      {.key = "refine_search_s", .member = &S::refine_search_s, .lo = 0, .hi = 10,
       .rule = "must be between 0 and 10 seconds"},
      {.key = "refine_threshold_db", .member = &S::refine_threshold_db, .lo = 0, .hi = 40,
       .rule = "must be between 0 and 40 dB"},
      {.key = "refine_bridge_s", .member = &S::refine_bridge_s, .lo = 0, .hi = 5,
       .rule = "must be between 0 and 5 seconds"},
      {.key = "background", .member = &S::background, .help = "steady sounds as background segments"},
      {.key = "background_min_s", .member = &S::background_min_s, .lo = 0, .hi = 3600,
       .rule = "must be between 0 and 3600 seconds"},
      {.key = "background_coverage", .member = &S::background_coverage, .lo = 0, .hi = 1,
       .rule = "must be a fraction between 0 and 1"},
      {.key = "background_bridge_s", .member = &S::background_bridge_s, .lo = 0, .hi = 3600,
       .rule = "must be between 0 and 3600 seconds"},
      {.key = "background_window_s", .member = &S::background_window_s, .lo = 1, .hi = 3600,
       .rule = "must be between 1 and 3600 seconds"},
      {.key = "background_presence", .member = &S::background_presence, .lo = 0, .hi = 1,
       .rule = "must be a share between 0 and 1 (0: off)"},
      {.key = "background_floor", .member = &S::background_floor, .lo = 0, .hi = 1,
       .rule = "must be a factor between 0 and 1 (of the class's off-threshold)"},
      {.key = "calibration", .member = &S::calibration,
       .help = "false-alarm calibration: empty (built in), none, or a file from earmark calibrate"},
      {.key = "same_sound_s", .member = &S::same_sound_s, .lo = 0, .hi = 1,
       .rule = "must be between 0 and 1 second"},
      {.key = "burst_max", .member = &S::burst_max, .lo = 0, .hi = 100000,
       .rule = "must be 0 (off) or a count up to 100000"},
      {.key = "burst_window_s", .member = &S::burst_window_s, .lo = 0, .hi = 10,
       .rule = "must be between 0 and 10 seconds"},
      {.key = "per_class", .member = &S::per_class, .help = "label -> {on, off, median_s, min_duration_s}"},
      {.key = "allow", .member = &S::allow, .help = "only these labels or groups", .flow = true},
      {.key = "deny", .member = &S::deny, .help = "never these labels", .flow = true},
      {.key = "groups", .member = &S::groups, .help = "reported name -> member labels", .flow = true},
      {.key = "rollup", .member = &S::rollup, .help = "one name per sound (AudioSet ontology roll-up)"},
      {.key = "rollup_ratio", .member = &S::rollup_ratio, .lo = 0, .hi = 1, .rule = "must be between 0 and 1",
       .help = "a deeper label names the sound if its confidence is at least this times each label it replaces"},
      {.key = "ontology", .member = &S::ontology, .help = "path of the AudioSet ontology.json (empty: beside the models)"},
      {.key = "require_ontology", .member = &S::require_ontology, .help = "fail instead of reporting every label"},
  };
  return t;
}

const std::vector<Field<OutputConfig>>& output_fields() {
  using S = OutputConfig;
  static const std::vector<Field<S>> t = {
      {.key = "formats", .member = &S::formats, .allowed = "csv|json|audacity|tsv",
       .rule = "lists formats from: csv, json, audacity, tsv", .flow = true},
      {.key = "frame_scores", .member = &S::frame_scores, .help = "include the score grid in the JSON output"},
      {.key = "detection_scores", .member = &S::detection_scores, .help = "the whole detector's scores for PSDS"},
      {.key = "per_file", .member = &S::per_file, .help = "one output file per input besides the run-wide ones"},
  };
  return t;
}

// The sections in file order: "a.b" is key b of mapping a. `flow` prints the section as {k: v}.
// Calls fn(section_path, struct_reference, table, flow) for each.
template <class C, class Fn>
void for_each_section(C& c, Fn&& fn) {
  fn("model", c.model, model_fields(), false);
  fn("condition.dc_remove", c.condition.dc_remove, dc_remove_fields(), true);
  fn("condition.highpass", c.condition.highpass, highpass_fields(), true);
  fn("condition.denoise", c.condition.denoise, denoise_fields(), false);
  fn("condition.normalize", c.condition.normalize, normalize_fields(), false);
  fn("frames", c.frames, frames_fields(), false);
  fn("events", c.events, events_fields(), false);
  fn("output", c.output, output_fields(), false);
}

// ---- the number rule ---------------------------------------------------------------------------

std::string show(double v) {
  if (std::isnan(v)) return "NaN (not a number)";
  if (std::isinf(v)) return v > 0 ? "infinity" : "-infinity";
  return fmt::format("{}", v);
}

// "" when v passes; else the complaint (without the name).
template <class S>
std::string number_problem(const Field<S>& f, double v) {
  if (!std::isfinite(v)) return fmt::format("is {}; it {}", show(v), f.rule);
  if (f.negative_is_default && v < 0) return "";
  const bool low = f.lo_open ? !(v > f.lo) : !(v >= f.lo);
  const bool high = f.hi_open ? !(v < f.hi) : !(v <= f.hi);
  if (low || high) return fmt::format("{} (got {})", f.rule, show(v));
  return "";
}

[[noreturn]] void bad(const std::string& key, const std::string& what) {
  throw Error("config: '" + key + "' " + what);
}

// "" when `s` is usable text; else why not. YAML is Unicode, so invalid UTF-8 cannot be a value
// (and does not survive printing); control characters break every output format that holds
// labels (CSV, TSV, Audacity). Found by fuzz/fuzz_config: such a label did not read back.
std::string text_problem(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return fmt::format("has a control character (byte {:#04x})", c);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return "is not valid UTF-8";
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return "is not valid UTF-8";
    i += n;
  }
  return "";
}

// "a|b|c" -> is `v` one of them ("" allows anything).
bool allowed_value(const char* allowed, const std::string& v) {
  const std::string_view all(allowed);
  if (all.empty()) return true;
  for (size_t start = 0;;) {
    const size_t bar = all.find('|', start);
    if (all.substr(start, bar - start) == v) return true;
    if (bar == std::string_view::npos) return false;
    start = bar + 1;
  }
}

template <class S>
void validate_fields(const std::string& section, const S& s, const std::vector<Field<S>>& table) {
  for (const auto& f : table) {
    const std::string key = section + "." + f.key;
    std::visit(
        [&](auto m) {
          using T = std::remove_cvref_t<decltype(s.*m)>;
          const T& v = s.*m;
          if constexpr (std::is_same_v<T, double> || std::is_same_v<T, int>) {
            if (const auto p = number_problem(f, double(v)); !p.empty()) bad(key, p);
          } else if constexpr (std::is_same_v<T, std::string>) {
            if (const auto p = text_problem(v); !p.empty()) bad(key, p);
            if (!allowed_value(f.allowed, v))
              bad(key, fmt::format("{}, not '{}'", f.rule, v));
          } else if constexpr (std::is_same_v<T, StringList>) {
            for (const auto& x : v)
              if (const auto p = text_problem(x); !p.empty()) bad(key, "has an entry that " + p);
            for (const auto& x : v)
              if (!allowed_value(f.allowed, x))
                bad(key, fmt::format("has unknown value '{}'; it {}", x, f.rule));
          } else if constexpr (std::is_same_v<T, PerClass>) {
            for (const auto& [label, t] : v) {
              if (const auto p = text_problem(label); !p.empty()) bad(key, "has a label that " + p);
              validate_fields(key + "." + label, t, class_threshold_fields());
            }
          } else if constexpr (std::is_same_v<T, Groups>) {
            for (const auto& [name, members] : v) {
              if (const auto p = text_problem(name); !p.empty()) bad(key, "has a group name that " + p);
              for (const auto& member : members)
                if (const auto p = text_problem(member); !p.empty()) bad(key + "." + name, "has a member that " + p);
            }
          }
        },
        f.member);
  }
}

// ---- parsing -----------------------------------------------------------------------------------

std::string known_list(const std::vector<std::string>& known) {
  std::string list;
  for (const auto& s : known) list += (list.empty() ? "" : ", ") + s;
  return list;
}

void check_known(const YAML::Node& n, const std::vector<std::string>& known, const std::string& origin,
                 const std::string& section) {
  if (!n || n.IsNull()) return;
  if (!n.IsMap()) throw Error(origin + ": '" + section + "' must be a mapping (keys: " + known_list(known) + ")");
  for (const auto& kv : n) {
    std::string k;
    try {
      k = kv.first.as<std::string>();
    } catch (const YAML::Exception&) {
      throw Error(origin + ": a key in '" + section + "' is not a plain name");
    }
    if (std::find(known.begin(), known.end(), k) == known.end())
      throw Error(origin + ": unknown key '" + (section.empty() ? k : section + "." + k) + "' (known: " +
                  known_list(known) + ")");
  }
}

template <class T>
void read_value(const YAML::Node& n, T& out, const std::string& origin, const std::string& key) {
  try {
    out = n.as<T>();
  } catch (const YAML::Exception& e) {
    throw Error(origin + ": '" + key + "' has the wrong type (" + e.msg + ")");
  }
}

template <class S>
void parse_fields(const YAML::Node& n, S& s, const std::vector<Field<S>>& table, const std::string& origin,
                  const std::string& section) {
  if (!n || n.IsNull()) return;
  std::vector<std::string> known;
  for (const auto& f : table) known.emplace_back(f.key);
  check_known(n, known, origin, section);
  for (const auto& f : table) {
    const YAML::Node v = n[f.key];
    if (!v) continue;
    const std::string key = section + "." + f.key;
    std::visit(
        [&](auto m) {
          using T = std::remove_cvref_t<decltype(s.*m)>;
          T& out = s.*m;
          if constexpr (std::is_same_v<T, StringList>) {
            // A single name stands for a list of one.
            if (v.IsScalar()) {
              out = {};
              out.push_back(v.as<std::string>());
            } else {
              read_value(v, out, origin, key);
            }
          } else if constexpr (std::is_same_v<T, PerClass>) {
            if (!v.IsMap()) throw Error(origin + ": '" + key + "' must map labels to {on, off, median_s, min_duration_s}");
            for (const auto& kv : v) {
              std::string label;
              read_value(kv.first, label, origin, key);
              ClassThreshold t;
              if (!kv.second.IsMap())
                throw Error(origin + ": '" + key + "." + label + "' must be a mapping {on, off, median_s, min_duration_s}");
              parse_fields(kv.second, t, class_threshold_fields(), origin, key + "." + label);
              out[label] = t;
            }
          } else {
            read_value(v, out, origin, key);
          }
        },
        f.member);
  }
}

// ---- printing ----------------------------------------------------------------------------------

template <class S>
void emit_fields(YAML::Emitter& y, const S& s, const std::vector<Field<S>>& table) {
  for (const auto& f : table) {
    std::visit(
        [&](auto m) {
          using T = std::remove_cvref_t<decltype(s.*m)>;
          const T& v = s.*m;
          if constexpr (std::is_same_v<T, PerClass>) {
            y << YAML::Key << f.key << YAML::Value << YAML::BeginMap;
            for (const auto& [label, t] : v) {
              y << YAML::Key << label << YAML::Value << YAML::Flow << YAML::BeginMap;
              emit_fields(y, t, class_threshold_fields());
              y << YAML::EndMap;
            }
            y << YAML::EndMap;
          } else if constexpr (std::is_same_v<T, Groups>) {
            y << YAML::Key << f.key << YAML::Value << YAML::BeginMap;
            for (const auto& [g, members] : v) y << YAML::Key << g << YAML::Value << YAML::Flow << members;
            y << YAML::EndMap;
          } else if constexpr (std::is_same_v<T, double>) {
            if (f.negative_is_default && v < 0) return;
            y << YAML::Key << f.key << YAML::Value << v;
          } else {
            y << YAML::Key << f.key << YAML::Value;
            if (f.flow) y << YAML::Flow;
            y << v;
          }
        },
        f.member);
  }
}

YAML::Emitter& configure(YAML::Emitter& y) {
  // Shortest form that reads back the same value: 0.15, not 0.14999999999999999.
  y.SetDoublePrecision(std::numeric_limits<double>::digits10);
  y.SetFloatPrecision(std::numeric_limits<float>::digits10);
  return y;
}

// Emits the sections of `c` whose path starts with `prefix` ("" for all), as nested maps;
// `block_only` ignores the sections' flow style.
template <class C>
void emit_sections(YAML::Emitter& y, const C& c, const std::string& prefix, bool block_only) {
  std::string open;  // the first-level mapping currently open ("condition"), if any
  for_each_section(c, [&](const std::string& path, const auto& s, const auto& table, bool flow) {
    if (path.rfind(prefix, 0) != 0) return;
    const std::string rel = path.substr(prefix.size());
    const auto dot = rel.find('.');
    const std::string outer = dot == std::string::npos ? "" : rel.substr(0, dot);
    const std::string name = dot == std::string::npos ? rel : rel.substr(dot + 1);
    if (outer != open) {
      if (!open.empty()) y << YAML::EndMap;
      if (!outer.empty()) y << YAML::Key << outer << YAML::Value << YAML::BeginMap;
      open = outer;
    }
    y << YAML::Key << name << YAML::Value;
    if (flow && !block_only) y << YAML::Flow;
    y << YAML::BeginMap;
    emit_fields(y, s, table);
    y << YAML::EndMap;
  });
  if (!open.empty()) y << YAML::EndMap;
}

// The numeric field `key` ("frames.hop_s") as a checker; throws std::invalid_argument if none.
std::function<std::string(double)> number_rule(const std::string& key, std::string* rule) {
  std::function<std::string(double)> found;
  Config c;
  for_each_section(c, [&](const std::string& path, auto& s, const auto& table, bool) {
    for (const auto& f : table) {
      if (path + "." + f.key != key) continue;
      std::visit(
          [&](auto m) {
            using T = std::remove_cvref_t<decltype(s.*m)>;
            if constexpr (std::is_same_v<T, double> || std::is_same_v<T, int>) {
              const auto field = f;
              found = [field](double v) { return number_problem(field, v); };
              if (rule) *rule = f.rule;
            }
          },
          f.member);
    }
  });
  if (!found) throw std::invalid_argument("no numeric configuration key '" + key + "'");
  return found;
}

}  // namespace

void check_config_number(const std::string& key, double v, const std::string& name) {
  const auto problem = number_rule(key, nullptr)(v);
  if (problem.empty()) return;
  if (name.empty()) bad(key, problem);
  throw Error(name + " " + problem + " (it sets " + key + ")");
}

std::string config_rule(const std::string& key) {
  std::string rule;
  number_rule(key, &rule);
  return rule;
}

void check_number(const std::string& name, double v, double lo, double hi, const std::string& rule) {
  if (!std::isfinite(v)) throw Error(name + " is " + show(v) + "; it " + rule);
  if (!(v >= lo && v <= hi)) throw Error(name + " " + rule + " (got " + show(v) + ")");
}

void ConditionConfig::validate() const {
  validate_fields("condition.dc_remove", dc_remove, dc_remove_fields());
  validate_fields("condition.highpass", highpass, highpass_fields());
  validate_fields("condition.normalize", normalize, normalize_fields());
  validate_fields("condition.denoise", denoise, denoise_fields());
  const auto& d = denoise;
  if ((d.fft_size & (d.fft_size - 1)) != 0)
    bad("condition.denoise.fft_size", fmt::format("must be a power of two from 64 to 16384 (got {})", d.fft_size));
  if (d.fft_size % d.hop != 0 || d.fft_size / d.hop < 2)
    bad("condition.denoise.hop",
        fmt::format("must divide fft_size with a quotient of at least 2 (e.g. fft_size/4) (got {})", d.hop));
}

std::string ConditionConfig::to_string() const {
  YAML::Emitter y;
  configure(y);
  y << YAML::BeginMap;
  Config c;
  c.condition = *this;
  emit_sections(y, c, "condition.", true);
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

void Config::validate() const {
  for_each_section(*this, [](const std::string& path, const auto& s, const auto& table, bool) {
    if (path.rfind("condition.", 0) != 0) validate_fields(path, s, table);
  });
  condition.validate();

  // Rules that tie several keys together.
  if (model.name.empty()) bad("model.name", "is empty: give a model name such as mn04_as or a checkpoint path");
  for (const auto& h : model.heads)
    if (h.empty()) bad("model.heads", "has an empty entry: give the folders `earmark train -o` wrote");
  if (model.head_only && model.heads.empty())
    bad("model.head_only", "is true but model.heads is empty: add a head folder or set head_only to false");
  if (!model.heads.empty() && frames.method != "columns")
    bad("frames.method", "must be 'columns' with model.heads (heads score the network's frame embeddings)");
  if (frames.pool_columns % 2 == 0) bad("frames.pool_columns", "must be an odd number between 1 and 31");
  if (frames.passes != 1 && frames.passes != 2 && frames.passes != 4 && frames.passes != 8)
    bad("frames.passes", "must be 1, 2, 4 or 8");
  if (frames.hop_s > frames.window_s) bad("frames.hop_s", "must be between 0.01 s and frames.window_s");
  if (events.threshold_off > events.threshold_on)
    bad("events.threshold_off", "must not be above events.threshold_on (hysteresis keeps an event on down to it)");
  for (const auto& [label, t] : events.per_class) {
    const double on = t.on >= 0 ? t.on : events.threshold_on;
    const double off = t.off >= 0 ? t.off : std::min(events.threshold_off, on);
    if (off > on) bad("events.per_class." + label + ".off", "must not be above its 'on' threshold");
  }
  for (const auto& [g, members] : events.groups)
    if (members.empty()) bad("events.groups." + g, "has no member labels");
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

  // The mappings above the sections ("" for the top level -> model, condition, ...).
  std::map<std::string, std::vector<std::string>> children;
  for_each_section(c, [&](const std::string& path, auto&, const auto&, bool) {
    const auto dot = path.find('.');
    auto& top = children[""];
    const std::string first = path.substr(0, dot);
    if (std::find(top.begin(), top.end(), first) == top.end()) top.push_back(first);
    if (dot != std::string::npos) children[first].push_back(path.substr(dot + 1));
  });
  const YAML::Node& top = root;  // const: looking a key up must not add it
  for (const auto& [parent, known] : children)
    check_known(parent.empty() ? top : top[parent], known, origin, parent);

  for_each_section(c, [&](const std::string& path, auto& s, const auto& table, bool) {
    const auto dot = path.find('.');
    if (dot == std::string::npos) return parse_fields(top[path], s, table, origin, path);
    const YAML::Node parent = top[path.substr(0, dot)];
    if (parent && parent.IsMap()) parse_fields(parent[path.substr(dot + 1)], s, table, origin, path);
  });
  return c;
}

Config Config::from_file(const std::string& path) {
  Config c = from_yaml_text(util::read_file_bounded(path, util::kMaxConfigBytes, "config file"), path);
  // Head folders named relative to the config file are taken from its folder.
  for (auto& h : c.model.heads)
    if (!h.empty() && std::filesystem::path(h).is_relative())
      h = (std::filesystem::path(path).parent_path() / h).lexically_normal().string();
  // So is a calibration file ("none" and "" are not paths).
  auto& cal = c.events.calibration;
  if (!cal.empty() && cal != "none" && std::filesystem::path(cal).is_relative())
    cal = (std::filesystem::path(path).parent_path() / cal).lexically_normal().string();
  return c;
}

std::string Config::to_yaml() const {
  YAML::Emitter y;
  configure(y);
  y << YAML::BeginMap;
  emit_sections(y, *this, "", false);
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

const char* version() { return EARMARK_VERSION; }

const char* kind_name(EventKind kind) { return kind == EventKind::background ? "background" : "event"; }

EventKind kind_from_name(const std::string& name) {
  if (name == "event") return EventKind::event;
  if (name == "background") return EventKind::background;
  throw Error("unknown event kind '" + name + "'; it must be 'event' or 'background'");
}

}  // namespace earmark
