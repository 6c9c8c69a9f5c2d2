// synth: soundscape rendering (see soundscape.hpp for the level and timing model).
#include "synth/soundscape.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "decode/decoder.hpp"
#include "earmark/earmark.hpp"
#include "synth/audible.hpp"
#include "util/csv.hpp"
#include "util/file.hpp"

namespace earmark::synth {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

// Bed level the components are built around; the final peak normalisation rescales it anyway.
constexpr double kReferenceRms = 0.05;
// Local references are floored this far below the whole bed's RMS (see the header).
constexpr double kLocalFloorDb = -20.0;
constexpr double kLoopFadeS = 0.05;
constexpr double kMaxDurationS = 3 * 3600.0;

double db_to_gain(double db) { return std::pow(10.0, db / 20.0); }
double gain_to_db(double g) { return g > 0 ? 20.0 * std::log10(g) : -999.0; }

// splitmix64: turns (seed, stream) into well-separated seeds for independent generators.
uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
enum Stream : uint64_t { kBackground = 1, kTv = 2, kNoise = 3, kEvents = 4 };
uint64_t stream_seed(uint64_t seed, Stream s) { return mix64(mix64(seed) ^ mix64(uint64_t(s))); }

// Our own draws on top of mt19937_64 (whose output is fully specified by the standard, unlike
// std::uniform_real_distribution and friends, which differ between standard libraries).
class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  double uniform() { return double(g_() >> 11) * 0x1.0p-53; }  // [0, 1), 53 random bits
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  size_t index(size_t n) { return std::min(n - 1, size_t(uniform() * double(n))); }
  double exponential(double mean) { return mean > 0 ? -mean * std::log1p(-uniform()) : 0.0; }

 private:
  std::mt19937_64 g_;
};

// Streaming coloured noise (not normalised; see make_noise).
class NoiseGen {
 public:
  NoiseGen(const std::string& color, int rate, uint64_t seed) : rng_(seed) {
    if (color == "white") {
      kind_ = 0;
    } else if (color == "pink") {
      kind_ = 1;
      // A cascade of first-order shelves (1 - b z^-1) / (1 - a z^-1), one per octave from
      // 10 Hz: pole at f, zero half an octave higher (f * sqrt 2), each mapped with z = e^(sT).
      // Each shelf steps the power down by 3 dB across its octave, so the product falls
      // -3 dB/octave: within 0.3 dB of ideal from 20 Hz to 6.4 kHz at 32 kHz, up to ~1 dB flatter
      // in the top octave, flat below 10 Hz (no subsonic rumble). Shelves beyond twice the
      // rate are near-identity and are left out.
      for (double f = 10.0; f < 2.0 * rate; f *= 2.0) {
        poles_.push_back(std::exp(-2.0 * M_PI * f / rate));
        zeros_.push_back(std::exp(-2.0 * M_PI * f * std::sqrt(2.0) / rate));
      }
      state_.assign(poles_.size(), 0.0);
      prev_in_.assign(poles_.size(), 0.0);
    } else if (color == "brown") {
      kind_ = 2;
      // Leaky integrator: -6 dB/octave above 20 Hz without drifting off at DC.
      poles_.push_back(std::exp(-2.0 * M_PI * 20.0 / rate));
      state_.assign(1, 0.0);
    } else {
      throw Error("noise colour '" + color + "' is unknown; use none, white, pink or brown");
    }
    // Start in steady state: the slowest filter settles within a fraction of a second.
    for (int i = 0; i < rate / 2; ++i) next();
  }

  double next() {
    const double w = 2.0 * rng_.uniform() - 1.0;
    switch (kind_) {
      case 0: return w;
      case 1: {
        double x = w;
        for (size_t k = 0; k < poles_.size(); ++k) {
          const double y = x - zeros_[k] * prev_in_[k] + poles_[k] * state_[k];
          prev_in_[k] = x;
          state_[k] = y;
          x = y;
        }
        return x;
      }
      default: state_[0] = poles_[0] * state_[0] + w; return state_[0];
    }
  }

 private:
  Rng rng_;
  int kind_ = 0;
  std::vector<double> poles_, zeros_, state_, prev_in_;
};

// A source looped to any length from `start`, the seam crossfaded over `fade` samples: the
// loop period is len - fade and its first `fade` samples blend into the file's last ones, so
// the wrap-around is continuous.
class Loop {
 public:
  Loop(const std::vector<float>& x, size_t start, int rate) : x_(x) {
    fade_ = size_t(kLoopFadeS * rate);
    if (x.size() < 4 * fade_) fade_ = 0;
    period_ = x.size() - fade_;
    start_ = start % period_;
  }
  size_t start() const { return start_; }
  float at(size_t n) const {
    const size_t p = (start_ + n) % period_;
    if (p >= fade_) return x_[p];
    const float w = (float(p) + 0.5f) / float(fade_);
    return w * x_[p] + (1.0f - w) * x_[period_ + p];
  }

 private:
  const std::vector<float>& x_;
  size_t fade_ = 0, period_ = 0, start_ = 0;
};

double rms_of(const std::vector<float>& x, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += double(x[i]) * x[i];
  return to > from ? std::sqrt(s / double(to - from)) : 0.0;
}

// Matches a name against a table entry: the listed path, its file name, or its stem.
bool names_entry(const std::string& name, const std::string& file) {
  const fs::path p(file);
  return name == file || name == p.filename().string() || name == p.stem().string();
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

// ---- spec parsing ----

[[noreturn]] void bad(const std::string& key, const std::string& what) { throw Error("synth spec: '" + key + "' " + what); }

template <typename T>
void get(const YAML::Node& n, const char* key, T& out, const std::string& origin, const std::string& section) {
  if (!n || !n[key]) return;
  try {
    out = n[key].as<T>();
  } catch (const YAML::Exception& e) {
    throw Error(origin + ": '" + (section.empty() ? "" : section + ".") + key + "' has the wrong type (" + e.msg + ")");
  }
}

void check_known(const YAML::Node& n, const std::vector<std::string>& known, const std::string& origin,
                 const std::string& section) {
  if (!n) return;
  if (!n.IsMap()) throw Error(origin + ": '" + (section.empty() ? "<top>" : section) + "' must be a mapping");
  for (const auto& kv : n) {
    const auto k = kv.first.as<std::string>();
    if (std::find(known.begin(), known.end(), k) == known.end())
      throw Error(origin + ": unknown key '" + (section.empty() ? k : section + "." + k) + "' (known: " + join(known) + ")");
  }
}

std::string resolve(const std::string& p, const std::string& base) {
  if (p.empty() || base.empty() || fs::path(p).is_absolute()) return p;
  return (fs::path(base) / p).lexically_normal().string();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Spec

void SoundscapeSpec::validate() const {
  // One rule for every number (as for the detection config): finite first, NaN and infinity
  // named; the ranges follow.
  const std::pair<const char*, double> numbers[] = {
      {"duration_s", duration_s},         {"peak_dbfs", peak_dbfs},           {"events.min_gap_s", events.min_gap_s},
      {"events.mean_gap_s", events.mean_gap_s}, {"events.snr_db", events.snr_min_db}, {"events.snr_db", events.snr_max_db},
      {"events.overlap_prob", events.overlap_prob}, {"tv.level_db", tv.level_db}, {"noise.snr_db", noise.snr_db}};
  for (const auto& [key, v] : numbers)
    if (!std::isfinite(v)) bad(key, std::string("is ") + (std::isnan(v) ? "NaN (not a number)" : "infinite") +
                                        "; give a finite number");
  if (name.empty() || name.find('/') != std::string::npos || name.find('\\') != std::string::npos)
    bad("name", "must be a plain file name (no folders)");
  if (count < 1 || count > 100000) bad("count", "must be between 1 and 100000");
  if (!(duration_s >= 1.0 && duration_s <= kMaxDurationS))
    bad("duration_s", "must be between 1 and 10800 seconds (3 hours; the mix is built in memory)");
  if (sample_rate < 8000 || sample_rate > 96000) bad("sample_rate", "must be between 8000 and 96000 Hz");
  if (!(peak_dbfs >= -100.0 && peak_dbfs <= 0.0)) bad("peak_dbfs", "must be between -100 and 0 dBFS");
  if (annotation != "audible" && annotation != "clip")
    bad("annotation", "must be 'audible' (where each sound can be heard) or 'clip' (the clip's whole span), not '" +
                          annotation + "'");
  const auto& e = events;
  if (!(e.min_gap_s >= 0.0 && e.min_gap_s <= 3600.0)) bad("events.min_gap_s", "must be between 0 and 3600 seconds");
  if (!(e.mean_gap_s >= e.min_gap_s && e.mean_gap_s <= 36000.0) || e.mean_gap_s <= 0.0)
    bad("events.mean_gap_s", "must be above 0, at least events.min_gap_s and at most 36000 seconds");
  if (!(e.snr_min_db >= -40.0 && e.snr_max_db <= 60.0 && e.snr_min_db <= e.snr_max_db))
    bad("events.snr_db", "must be a range [lo, hi] with -40 <= lo <= hi <= 60 dB");
  if (e.snr_reference != "local" && e.snr_reference != "global")
    bad("events.snr_reference", "must be 'local' or 'global', not '" + e.snr_reference + "'");
  if (!(e.overlap_prob >= 0.0 && e.overlap_prob <= 1.0)) bad("events.overlap_prob", "must be a probability (0 to 1)");
  if (e.max_events < 0) bad("events.max_events", "must be 0 (no limit) or more");
  if (background.file.empty()) bad("background.file", "is empty: use random, none or a background name");
  if (background.file == "random" && background.kinds.empty())
    bad("background.kinds", "is empty: list the kinds to pick from (ambience, household, tv)");
  if (tv.file.empty()) bad("tv.file", "is empty: use none, random or a tv bed name");
  if (!(tv.level_db >= -60.0 && tv.level_db <= 20.0)) bad("tv.level_db", "must be between -60 and 20 dB");
  if (noise.color != "none" && noise.color != "white" && noise.color != "pink" && noise.color != "brown")
    bad("noise.color", "must be none, white, pink or brown, not '" + noise.color + "'");
  if (!(noise.snr_db >= -40.0 && noise.snr_db <= 80.0)) bad("noise.snr_db", "must be between -40 and 80 dB");
}

SoundscapeSpec SoundscapeSpec::from_yaml_text(const std::string& text, const std::string& origin,
                                              const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& ex) {
    throw Error(origin + ": not valid YAML/JSON (" + ex.msg + " at line " + std::to_string(ex.mark.line + 1) + ")");
  }
  SoundscapeSpec s;
  if (!root || root.IsNull()) return s;
  check_known(root, {"seed", "name", "count", "duration_s", "sample_rate", "format", "peak_dbfs", "sounds_dir",
                     "annotation", "events", "background", "tv", "noise"},
              origin, "");
  get(root, "seed", s.seed, origin, "");
  get(root, "name", s.name, origin, "");
  get(root, "count", s.count, origin, "");
  get(root, "duration_s", s.duration_s, origin, "");
  get(root, "sample_rate", s.sample_rate, origin, "");
  std::string fmt = util::wav_format_name(s.format);
  get(root, "format", fmt, origin, "");
  try {
    s.format = util::parse_wav_format(fmt);
  } catch (const Error& ex) {
    throw Error(origin + ": 'format': " + ex.what());
  }
  get(root, "peak_dbfs", s.peak_dbfs, origin, "");
  get(root, "annotation", s.annotation, origin, "");
  get(root, "sounds_dir", s.sounds_dir, origin, "");
  s.sounds_dir = resolve(s.sounds_dir, base_dir);

  if (const auto e = root["events"]) {
    check_known(e, {"mean_gap_s", "min_gap_s", "snr_db", "snr_reference", "overlap_prob", "classes", "clips",
                    "clips_file", "max_events"},
                origin, "events");
    get(e, "mean_gap_s", s.events.mean_gap_s, origin, "events");
    get(e, "min_gap_s", s.events.min_gap_s, origin, "events");
    if (const auto snr = e["snr_db"]) {
      // A range [lo, hi], or one number for a fixed SNR.
      std::vector<double> r;
      if (snr.IsSequence()) {
        get(e, "snr_db", r, origin, "events");
      } else {
        double v = 0;
        get(e, "snr_db", v, origin, "events");
        r = {v, v};
      }
      if (r.size() != 2) throw Error(origin + ": 'events.snr_db' must be [lo, hi] or one number");
      s.events.snr_min_db = r[0];
      s.events.snr_max_db = r[1];
    }
    get(e, "snr_reference", s.events.snr_reference, origin, "events");
    get(e, "overlap_prob", s.events.overlap_prob, origin, "events");
    get(e, "classes", s.events.classes, origin, "events");
    get(e, "clips", s.events.clips, origin, "events");
    get(e, "clips_file", s.events.clips_file, origin, "events");
    s.events.clips_file = resolve(s.events.clips_file, base_dir);
    get(e, "max_events", s.events.max_events, origin, "events");
  }
  if (const auto b = root["background"]) {
    check_known(b, {"file", "kinds"}, origin, "background");
    get(b, "file", s.background.file, origin, "background");
    get(b, "kinds", s.background.kinds, origin, "background");
  }
  if (const auto t = root["tv"]) {
    check_known(t, {"file", "level_db"}, origin, "tv");
    get(t, "file", s.tv.file, origin, "tv");
    get(t, "level_db", s.tv.level_db, origin, "tv");
  }
  if (const auto n = root["noise"]) {
    check_known(n, {"color", "snr_db"}, origin, "noise");
    get(n, "color", s.noise.color, origin, "noise");
    get(n, "snr_db", s.noise.snr_db, origin, "noise");
  }
  return s;
}

SoundscapeSpec SoundscapeSpec::from_file(const std::string& path) {
  // Bounded: a FIFO or device is refused, not read forever.
  return from_yaml_text(util::read_file_bounded(path, util::kMaxConfigBytes, "synth spec"), path,
                        fs::path(path).parent_path().string());
}

std::string SoundscapeSpec::to_json() const {
  ojson j;
  j["seed"] = seed;
  j["name"] = name;
  j["count"] = count;
  j["duration_s"] = duration_s;
  j["sample_rate"] = sample_rate;
  j["format"] = util::wav_format_name(format);
  j["peak_dbfs"] = peak_dbfs;
  j["sounds_dir"] = sounds_dir;
  j["annotation"] = annotation;
  j["events"] = {{"mean_gap_s", events.mean_gap_s},     {"min_gap_s", events.min_gap_s},
                 {"snr_db", {events.snr_min_db, events.snr_max_db}},
                 {"snr_reference", events.snr_reference}, {"overlap_prob", events.overlap_prob},
                 {"classes", events.classes},             {"clips", events.clips},
                 {"clips_file", events.clips_file},       {"max_events", events.max_events}};
  j["background"] = {{"file", background.file}, {"kinds", background.kinds}};
  j["tv"] = {{"file", tv.file}, {"level_db", tv.level_db}};
  j["noise"] = {{"color", noise.color}, {"snr_db", noise.snr_db}};
  return j.dump(2);
}

// ---------------------------------------------------------------------------------------------
// Library

SoundLibrary SoundLibrary::load(const std::string& dir) {
  if (dir.empty())
    throw Error("synth: no sounds folder given; set sounds_dir in the spec or pass --sounds (shared/sounds has one)");
  SoundLibrary lib;
  lib.dir = dir;
  const auto events_csv = (fs::path(dir) / "events.csv").string();
  const auto backgrounds_csv = (fs::path(dir) / "backgrounds.csv").string();
  if (!fs::exists(events_csv)) throw Error(events_csv + ": not found; is '" + dir + "' a sounds folder?");
  auto need = [](const std::map<std::string, std::string>& row, const char* key, const std::string& path) {
    const auto it = row.find(key);
    if (it == row.end()) throw Error(path + ": no '" + key + "' column");
    return it->second;
  };
  auto number = [](const std::string& v, const std::string& path) {
    try {
      return std::stod(v);
    } catch (const std::exception&) {
      throw Error(path + ": '" + v + "' is not a number in column duration_s");
    }
  };
  for (const auto& row : util::read_csv_table(events_csv)) {
    Clip c;
    c.file = need(row, "file", events_csv);
    c.label = need(row, "class", events_csv);
    std::stringstream ls(need(row, "audioset_labels", events_csv));
    for (std::string l; std::getline(ls, l, ';');)
      if (!l.empty()) c.audioset_labels.push_back(l);
    c.duration_s = number(need(row, "duration_s", events_csv), events_csv);
    lib.clips.push_back(std::move(c));
  }
  if (fs::exists(backgrounds_csv)) {
    for (const auto& row : util::read_csv_table(backgrounds_csv)) {
      Background b;
      b.file = need(row, "file", backgrounds_csv);
      b.kind = need(row, "kind", backgrounds_csv);
      b.duration_s = number(need(row, "duration_s", backgrounds_csv), backgrounds_csv);
      lib.backgrounds.push_back(std::move(b));
    }
  }
  return lib;
}

// ---------------------------------------------------------------------------------------------
// Noise

std::vector<float> make_noise(const std::string& color, size_t n, int rate, uint64_t seed) {
  NoiseGen gen(color, rate, seed);
  std::vector<double> tmp(n);
  double ss = 0;
  for (auto& v : tmp) {
    v = gen.next();
    ss += v * v;
  }
  const double g = (n > 0 && ss > 0) ? 1.0 / std::sqrt(ss / double(n)) : 1.0;
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = float(tmp[i] * g);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rendering

namespace {

// Decoded clips and backgrounds by file, shared by the soundscapes of one synthesize() call.
using AudioCache = std::map<std::string, std::vector<float>>;

class Renderer {
 public:
  Renderer(const SoundscapeSpec& spec, const SoundLibrary& lib, uint64_t seed, AudioCache& cache)
      : spec_(spec), lib_(lib), seed_(seed), rate_(spec.sample_rate),
        n_(size_t(std::llround(spec.duration_s * spec.sample_rate))), cache_(cache) {}

  Soundscape run(bool keep_bed) {
    spec_.validate();
    const auto allowed = allowed_clips();
    std::vector<float> mix(n_, 0.0f);
    ojson manifest;
    manifest["generator"] = std::string("earmark ") + earmark::version();
    manifest["seed"] = seed_;
    manifest["sample_rate"] = rate_;
    manifest["duration_s"] = double(n_) / rate_;
    manifest["samples"] = n_;

    // Bed: background sets the reference level; TV and noise are placed relative to it.
    double bg_rms = 0;
    ojson bg_json = nullptr, tv_json = nullptr, noise_json = nullptr;
    Rng bg_rng(stream_seed(seed_, kBackground));
    if (const Background* bg = pick_background(spec_.background.file, spec_.background.kinds, bg_rng, "background")) {
      auto& rng = bg_rng;
      const auto& x = audio(bg->file);
      Loop loop(x, size_t(rng.uniform() * double(x.size())), rate_);
      const double r = loop_rms(loop);
      if (r <= 0) throw Error(path_of(bg->file) + ": background is silent");
      const double g = kReferenceRms / r;
      for (size_t i = 0; i < n_; ++i) mix[i] += float(g * loop.at(i));
      bg_rms = kReferenceRms;
      bg_json = {{"file", bg->file}, {"kind", bg->kind}, {"start_s", double(loop.start()) / rate_},
                 {"gain_db", gain_to_db(g)}};
    }
    Rng tv_rng(stream_seed(seed_, kTv));
    if (const Background* tv = pick_background(spec_.tv.file, {"tv"}, tv_rng, "tv")) {
      auto& rng = tv_rng;
      const auto& x = audio(tv->file);
      Loop loop(x, size_t(rng.uniform() * double(x.size())), rate_);
      const double r = loop_rms(loop);
      if (r <= 0) throw Error(path_of(tv->file) + ": TV bed is silent");
      const double target = (bg_rms > 0 ? bg_rms : kReferenceRms) * db_to_gain(spec_.tv.level_db);
      const double g = target / r;
      for (size_t i = 0; i < n_; ++i) mix[i] += float(g * loop.at(i));
      tv_json = {{"file", tv->file}, {"start_s", double(loop.start()) / rate_}, {"level_db", spec_.tv.level_db},
                 {"gain_db", gain_to_db(g)}};
    }
    if (spec_.noise.color != "none") {
      // Two passes over the same deterministic sequence: measure, then add at the exact level,
      // so no second full-length buffer is needed.
      const uint64_t ns = stream_seed(seed_, kNoise);
      double ss = 0;
      {
        NoiseGen gen(spec_.noise.color, rate_, ns);
        for (size_t i = 0; i < n_; ++i) {
          const double v = gen.next();
          ss += v * v;
        }
      }
      const double r = std::sqrt(ss / double(n_));
      const double target = bg_rms > 0 ? bg_rms * db_to_gain(-spec_.noise.snr_db) : kReferenceRms;
      const double g = r > 0 ? target / r : 0.0;
      NoiseGen gen(spec_.noise.color, rate_, ns);
      for (size_t i = 0; i < n_; ++i) mix[i] += float(g * gen.next());
      noise_json = {{"color", spec_.noise.color}, {"snr_db", spec_.noise.snr_db},
                    {"relative_to", bg_rms > 0 ? "background" : "reference"}};
    }
    manifest["background"] = bg_json;
    manifest["tv"] = tv_json;
    manifest["noise"] = noise_json;

    // Events: timing and choices first, all gains from the bed alone, then mixed in.
    const double bed_rms = rms_of(mix, 0, n_);
    const auto events = place_events(allowed);
    struct Gain {
      double gain, reference;
    };
    std::vector<Gain> gains;
    for (const auto& pe : events) {
      const auto& x = audio(pe.clip->file);
      const double clip_rms = rms_of(x, 0, x.size());
      if (clip_rms <= 0) throw Error(path_of(pe.clip->file) + ": event clip is silent");
      double ref = kReferenceRms;
      if (bed_rms > 0) {
        ref = bed_rms;
        if (spec_.events.snr_reference == "local")
          ref = std::max(rms_of(mix, pe.start, pe.start + x.size()), bed_rms * db_to_gain(kLocalFloorDb));
      }
      gains.push_back({db_to_gain(pe.snr_db) * ref / clip_rms, ref});
    }
    Soundscape out;
    if (keep_bed) out.bed = mix;
    // Where each event can be heard over the bed alone (other events do not mask it: an
    // overlapping sound is an event of its own). The final gain scales both alike.
    std::vector<std::vector<std::pair<double, double>>> audible(events.size());
    for (size_t k = 0; k < events.size(); ++k) {
      const auto& x = audio(events[k].clip->file);
      std::vector<float> scaled(x.size());
      for (size_t i = 0; i < x.size(); ++i) scaled[i] = float(gains[k].gain) * x[i];
      audible[k] = audible_extent(scaled, std::span<const float>(mix).subspan(events[k].start, x.size()), rate_);
      for (auto& [a, b] : audible[k]) {
        a += double(events[k].start) / rate_;
        b += double(events[k].start) / rate_;
      }
    }
    for (size_t k = 0; k < events.size(); ++k) {
      const auto& x = audio(events[k].clip->file);
      const float g = float(gains[k].gain);
      for (size_t i = 0; i < x.size(); ++i) mix[events[k].start + i] += g * x[i];
    }

    // Final level: peak exactly at peak_dbfs.
    float peak = 0;
    for (float v : mix) peak = std::max(peak, std::fabs(v));
    const double final_gain = peak > 0 ? db_to_gain(spec_.peak_dbfs) / peak : 1.0;
    const float fg = float(final_gain);
    for (auto& v : mix) v *= fg;
    for (auto& v : out.bed) v *= fg;

    out.seed = seed_;
    out.sample_rate = rate_;
    out.annotation = spec_.annotation;
    out.mix_gain_db = gain_to_db(final_gain);
    ojson ev_json = ojson::array();
    for (size_t k = 0; k < events.size(); ++k) {
      const auto& pe = events[k];
      PlacedEvent e;
      e.onset = double(pe.start) / rate_;
      e.offset = double(pe.start + audio(pe.clip->file).size()) / rate_;
      e.label = pe.clip->label;
      e.audioset_labels = pe.clip->audioset_labels;
      e.clip = pe.clip->file;
      e.snr_db = pe.snr_db;
      e.gain_db = gain_to_db(gains[k].gain);
      e.reference_db = gain_to_db(gains[k].reference * final_gain);
      e.overlaps_previous = pe.overlaps;
      e.audible = std::move(audible[k]);
      ojson aud = ojson::array();
      for (const auto& [a, b] : e.audible) aud.push_back({a, b});
      ev_json.push_back({{"onset", e.onset}, {"offset", e.offset}, {"audible", std::move(aud)}, {"event_label", e.label},
                         {"audioset_labels", e.audioset_labels}, {"clip", e.clip}, {"snr_db", e.snr_db},
                         {"gain_db", e.gain_db}, {"reference_dbfs", e.reference_db},
                         {"overlaps_previous", e.overlaps_previous}});
      out.events.push_back(std::move(e));
    }
    manifest["mix_gain_db"] = out.mix_gain_db;
    manifest["peak_dbfs"] = spec_.peak_dbfs;
    manifest["bed_rms_dbfs"] = gain_to_db(bed_rms * final_gain);
    manifest["events"] = std::move(ev_json);
    manifest["spec"] = ojson::parse(spec_.to_json());
    manifest["note"] =
        "Backgrounds and TV beds contain unlabelled sounds of their own (speech and music in the TV beds, "
        "thunder, birds...). SNR: 20*log10(RMS(event) / RMS(bed)), bed = background + tv + noise, over the "
        "event's span ('local', floored 20 dB below the bed RMS) or the whole file ('global'). onset/offset: the clip's "
        "file span; audible: where it can be heard over the bed (what the TSV lists when annotation is 'audible').";
    out.manifest_json = manifest.dump(2) + "\n";
    out.audio = std::move(mix);
    return out;
  }

 private:
  struct Pending {
    const Clip* clip;
    size_t start;
    double snr_db;
    bool overlaps;
  };

  std::string path_of(const std::string& file) const { return (fs::path(lib_.dir) / file).string(); }

  const std::vector<float>& audio(const std::string& file) {
    auto it = cache_.find(file);
    if (it == cache_.end()) it = cache_.emplace(file, decode::decode_file(path_of(file), rate_)).first;
    return it->second;
  }

  // RMS over the span actually used, so the level is right however the loop falls.
  double loop_rms(const Loop& loop) const {
    double ss = 0;
    for (size_t i = 0; i < n_; ++i) {
      const double v = loop.at(i);
      ss += v * v;
    }
    return std::sqrt(ss / double(n_));
  }

  // The choice is the stream's first draw, the loop's start its second.
  const Background* pick_background(const std::string& which, const std::vector<std::string>& kinds, Rng& rng,
                                    const std::string& key) {
    if (which == "none") return nullptr;
    std::vector<const Background*> cands;
    for (const auto& b : lib_.backgrounds) {
      if (which == "random" ? std::find(kinds.begin(), kinds.end(), b.kind) != kinds.end() : names_entry(which, b.file))
        cands.push_back(&b);
    }
    if (cands.empty()) {
      std::vector<std::string> names;
      for (const auto& b : lib_.backgrounds) names.push_back(fs::path(b.file).stem().string() + " (" + b.kind + ")");
      if (which == "random")
        throw Error("synth spec: '" + key + "': no background of kind " + join(kinds, "/") + " in " + lib_.dir);
      throw Error("synth spec: '" + key + ".file' = '" + which + "' is not in " + lib_.dir +
                  "/backgrounds.csv (have: " + join(names) + ")");
    }
    return cands[rng.index(cands.size())];
  }

  std::vector<const Clip*> allowed_clips() const {
    const auto& es = spec_.events;
    std::vector<std::string> wanted = es.clips;
    if (!es.clips_file.empty()) {
      std::istringstream f(util::read_file_bounded(es.clips_file, util::kMaxTableBytes, "clip list (events.clips_file)"));
      for (std::string line; std::getline(f, line);) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
        const auto first = line.find_first_not_of(" \t");
        if (first == std::string::npos || line[first] == '#') continue;
        wanted.push_back(line.substr(first));
      }
    }
    std::set<std::string> known_classes;
    for (const auto& c : lib_.clips) known_classes.insert(c.label);
    for (const auto& c : es.classes)
      if (!known_classes.count(c))
        throw Error("synth spec: 'events.classes': '" + c + "' is not a class in " + lib_.dir + "/events.csv (have: " +
                    join(std::vector<std::string>(known_classes.begin(), known_classes.end())) + ")");
    for (const auto& w : wanted) {
      const bool found = std::any_of(lib_.clips.begin(), lib_.clips.end(), [&](const Clip& c) {
        return w == c.file || w == fs::path(c.file).filename().string();
      });
      if (!found) throw Error("synth spec: 'events.clips': '" + w + "' is not listed in " + lib_.dir + "/events.csv");
    }
    std::vector<const Clip*> out;
    for (const auto& c : lib_.clips) {
      if (!es.classes.empty() && std::find(es.classes.begin(), es.classes.end(), c.label) == es.classes.end()) continue;
      if (!wanted.empty() && std::none_of(wanted.begin(), wanted.end(), [&](const std::string& w) {
            return w == c.file || w == fs::path(c.file).filename().string();
          }))
        continue;
      out.push_back(&c);
    }
    if (out.empty()) throw Error("synth spec: no event clip is left after the events.classes/clips filters");
    return out;
  }

  std::vector<Pending> place_events(const std::vector<const Clip*>& allowed) {
    const auto& es = spec_.events;
    std::map<std::string, std::vector<const Clip*>> by_class;
    for (const Clip* c : allowed) by_class[c->label].push_back(c);
    std::vector<const std::vector<const Clip*>*> classes;
    for (const auto& [label, v] : by_class) classes.push_back(&v);

    Rng rng(stream_seed(seed_, kEvents));
    auto pause = [&] { return size_t(std::llround((es.min_gap_s + rng.exponential(es.mean_gap_s - es.min_gap_s)) * rate_)); };
    std::vector<Pending> out;
    size_t t = pause();
    bool overlaps = false;
    while (es.max_events == 0 || out.size() < size_t(es.max_events)) {
      // Every draw is made each round, in this order, so one setting does not shift the others.
      const auto& cls = *classes[rng.index(classes.size())];
      const Clip* clip = cls[rng.index(cls.size())];
      const double snr = rng.uniform(es.snr_min_db, es.snr_max_db);
      const double u_overlap = rng.uniform();
      const double u_where = rng.uniform();
      const size_t gap = pause();
      const size_t len = audio(clip->file).size();
      if (len == 0 || t + len > n_) break;
      out.push_back({clip, t, snr, overlaps});
      overlaps = u_overlap < es.overlap_prob;
      t = overlaps ? t + std::max<size_t>(1, size_t((0.1 + 0.8 * u_where) * double(len))) : t + len + gap;
    }
    return out;
  }

  const SoundscapeSpec& spec_;
  const SoundLibrary& lib_;
  uint64_t seed_;
  int rate_;
  size_t n_;
  AudioCache& cache_;
};

std::string fmt3(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

}  // namespace

std::vector<Soundscape::Reference> Soundscape::reference_events() const {
  std::vector<Reference> out;
  for (const auto& e : events) {
    if (annotation == "clip") {
      out.push_back({e.onset, e.offset, e.label});
      continue;
    }
    for (const auto& [a, b] : e.audible) out.push_back({a, b, e.label});
  }
  std::stable_sort(out.begin(), out.end(), [](const Reference& a, const Reference& b) { return a.onset < b.onset; });
  return out;
}

Soundscape render(const SoundscapeSpec& spec, const SoundLibrary& lib, uint64_t seed, bool keep_bed) {
  AudioCache cache;
  return Renderer(spec, lib, seed, cache).run(keep_bed);
}

std::vector<std::string> write_soundscape(const Soundscape& s, util::WavFormat format, const std::string& out_dir,
                                          const std::string& name) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw Error(out_dir + ": cannot create the output folder (" + ec.message() + ")");
  const auto base = fs::path(out_dir) / name;
  const std::string wav = base.string() + ".wav", tsv = base.string() + ".tsv", json = base.string() + ".json";
  util::write_wav(wav, s.audio, s.sample_rate, 1, format);
  {
    std::ofstream f(tsv, std::ios::binary | std::ios::trunc);
    f << "filename\tonset\toffset\tevent_label\n";
    const std::string fname = name + ".wav";
    for (const auto& e : s.reference_events())
      f << fname << '\t' << fmt3(e.onset) << '\t' << fmt3(e.offset) << '\t' << e.label << '\n';
    if (!f) throw Error(tsv + ": write failed");
  }
  {
    std::ofstream f(json, std::ios::binary | std::ios::trunc);
    f << s.manifest_json;
    if (!f) throw Error(json + ": write failed");
  }
  return {wav, tsv, json};
}

std::vector<std::string> synthesize(const SoundscapeSpec& spec, const std::string& out_dir) {
  spec.validate();
  const auto lib = SoundLibrary::load(spec.sounds_dir);
  std::vector<std::string> written;
  std::string all_tsv = "filename\tonset\toffset\tevent_label\n";
  AudioCache cache;
  for (int i = 0; i < spec.count; ++i) {
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "-%03d", i);
    const std::string name = spec.count == 1 ? spec.name : spec.name + suffix;
    const auto s = Renderer(spec, lib, spec.seed + uint64_t(i), cache).run(false);
    const auto paths = write_soundscape(s, spec.format, out_dir, name);
    written.insert(written.end(), paths.begin(), paths.end());
    for (const auto& e : s.reference_events())
      all_tsv += name + ".wav\t" + fmt3(e.onset) + "\t" + fmt3(e.offset) + "\t" + e.label + "\n";
  }
  if (spec.count > 1) {
    const auto path = (fs::path(out_dir) / (spec.name + ".tsv")).string();
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << all_tsv;
    if (!f) throw Error(path + ": write failed");
    written.push_back(path);
  }
  return written;
}

}  // namespace earmark::synth
