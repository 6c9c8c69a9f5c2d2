// detect: the false-alarm calibration table (thresholds and confidence map).
#include "detect/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/file.hpp"

namespace earmark::detect {

// The table made by `earmark calibrate` for mn04_as, compiled in (calibration_builtin.cpp,
// generated from data/calibration/ by CMake).
extern const char* const kBuiltinCalibrationJson;
extern const char* const kBuiltinCalibrationName;

namespace {

using json = nlohmann::json;

constexpr int kFormatVersion = 1;
constexpr double kScoreEps = 1e-4;

double logit(double p) {
  p = std::clamp(p, kScoreEps, 1 - kScoreEps);
  return std::log(p / (1 - p));
}
double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

json curve_json(const ConfidenceCurve& c) { return {{"a", c.a}, {"b", c.b}, {"count", c.count}}; }

ConfidenceCurve curve_from(const json& j, const std::string& where) {
  ConfidenceCurve c;
  if (!j.is_object() || !j.contains("a") || !j.contains("b") || !j["a"].is_number() || !j["b"].is_number())
    throw Error(where + ": a confidence curve needs numbers a and b");
  c.a = j["a"].get<double>();
  c.b = j["b"].get<double>();
  c.count = j.value("count", 0);
  if (!std::isfinite(c.a) || !std::isfinite(c.b)) throw Error(where + ": a and b must be finite numbers");
  return c;
}

}  // namespace

double ConfidenceCurve::operator()(double score) const { return sigmoid(a * logit(score) + b); }

Calibration Calibration::parse(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    throw Error(origin + ": not a calibration table (" + std::string(e.what()) +
                "); make one with `earmark calibrate BACKGROUND-FOLDER -o FILE`");
  }
  if (!j.is_object() || j.value("format", "") != "earmark-calibration")
    throw Error(origin + ": not a calibration table (no \"format\": \"earmark-calibration\"); make one with "
                "`earmark calibrate BACKGROUND-FOLDER -o FILE`");
  if (j.value("version", 0) != kFormatVersion)
    throw Error(origin + ": calibration format version " + j.value("version", json(0)).dump() + ", this earmark reads " +
                std::to_string(kFormatVersion) + "; calibrate again with this version");
  Calibration c;
  c.origin = origin;
  try {
    c.model = j.value("model", "");
    c.checkpoint_sha256 = j.value("checkpoint_sha256", "");
    c.created = j.value("created", "");
    c.earmark_version = j.value("earmark", "");
    c.provenance = j.value("provenance", "");
    c.hours = j.value("hours", 0.0);
    c.target_per_hour = j.value("target_per_hour", 1.0);
    c.default_on = j.value("default_on", 0.3);
    if (j.contains("thresholds")) {
      if (!j["thresholds"].is_object()) throw Error("\"thresholds\" must be an object label -> {on, ...}");
      for (const auto& [label, t] : j["thresholds"].items()) {
        ClassThresholdCal k;
        if (!t.is_object()) throw Error("threshold of '" + label + "' must be an object");
        k.on = t.value("on", -1.0);
        if (!(std::isfinite(k.on) && k.on <= 1)) throw Error("threshold of '" + label + "' must be at most 1");
        k.background_peak = t.value("background_peak", 0.0);
        k.false_alarms = t.value("false_alarms", 0);
        k.capped = t.value("capped", false);
        k.recall = t.value("recall", -1.0);
        c.classes.emplace(label, k);
      }
    }
    if (j.contains("confidence") && !j["confidence"].is_null()) {
      const json& cj = j["confidence"];
      c.has_confidence = true;
      c.shared = curve_from(cj.at("shared"), origin + ": confidence.shared");
      if (cj.contains("per_class"))
        for (const auto& [label, v] : cj["per_class"].items())
          c.per_class.emplace(label, curve_from(v, origin + ": confidence.per_class." + label));
      c.ece_fit = cj.value("ece_fit", -1.0);
    }
  } catch (const Error& e) {
    throw Error(origin + ": " + e.what());
  } catch (const std::exception& e) {
    throw Error(origin + ": malformed calibration table (" + std::string(e.what()) + ")");
  }
  return c;
}

Calibration Calibration::load(const std::string& path) {
  return parse(util::read_file_bounded(path, 16u << 20, "calibration table"), path);
}

std::string Calibration::to_json() const {
  json j;
  j["format"] = "earmark-calibration";
  j["version"] = kFormatVersion;
  j["model"] = model;
  j["checkpoint_sha256"] = checkpoint_sha256;
  j["created"] = created;
  j["earmark"] = earmark_version;
  j["provenance"] = provenance;
  j["hours"] = hours;
  j["target_per_hour"] = target_per_hour;
  j["default_on"] = default_on;
  json t = json::object();
  for (const auto& [label, k] : classes) {
    json e{{"on", k.on}, {"background_peak", k.background_peak}, {"false_alarms", k.false_alarms}};
    if (k.capped) e["capped"] = true;
    if (k.recall >= 0) e["recall"] = k.recall;
    t[label] = e;
  }
  j["thresholds"] = t;
  if (has_confidence) {
    json pc = json::object();
    for (const auto& [label, curve] : per_class) pc[label] = curve_json(curve);
    j["confidence"] = {{"shared", curve_json(shared)}, {"per_class", pc}, {"ece_fit", ece_fit}};
  } else {
    j["confidence"] = nullptr;
  }
  return j.dump(1) + "\n";
}

float Calibration::confidence(const std::string& label, float score) const {
  if (!has_confidence) return score;
  const auto it = per_class.find(label);
  return float((it != per_class.end() ? it->second : shared)(score));
}

size_t Calibration::raised() const {
  return size_t(std::count_if(classes.begin(), classes.end(), [](const auto& kv) { return kv.second.on > 0; }));
}

std::string Calibration::summary() const {
  std::string s = "false-alarm calibration " + origin + ": " + std::to_string(raised()) +
                  " class thresholds raised for at most " + fmt::format("{:.3g}", target_per_hour) +
                  " false alarm(s) per class per hour on " + fmt::format("{:.2g}", hours) + " h of background audio";
  if (!provenance.empty()) s += " (" + provenance + ")";
  s += has_confidence ? "; confidence is the calibrated probability that a detection is right"
                      : "; confidence is the network's peak score (no confidence map)";
  return s;
}

const Calibration* builtin_calibration(const std::string& checkpoint_sha256) {
  static const Calibration table = [] {
    Calibration c = Calibration::parse(kBuiltinCalibrationJson, std::string("built-in (") + kBuiltinCalibrationName + ")");
    return c;
  }();
  return !checkpoint_sha256.empty() && table.checkpoint_sha256 == checkpoint_sha256 ? &table : nullptr;
}

std::optional<Calibration> select_calibration(const std::string& setting, const std::string& checkpoint_sha256) {
  if (setting == "none") return std::nullopt;
  if (setting.empty()) {
    if (const auto* b = builtin_calibration(checkpoint_sha256)) return *b;
    return std::nullopt;
  }
  return Calibration::load(setting);
}

void apply_thresholds(const Calibration& cal, const std::vector<std::string>& labels, EventsConfig& events) {
  auto lower = [](std::string x) {
    for (auto& ch : x) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    return x;
  };
  std::map<std::string, std::string> by_lower;
  for (const auto& l : labels) by_lower.emplace(lower(l), l);
  std::map<std::string, bool> user_set;
  for (const auto& [name, t] : events.per_class) user_set[lower(name)] = true;
  const double gap = std::max(0.0, events.threshold_on - events.threshold_off);
  for (const auto& [label, k] : cal.classes) {
    if (!(k.on > events.threshold_on)) continue;
    const auto it = by_lower.find(lower(label));
    if (it == by_lower.end() || user_set.count(lower(label))) continue;
    ClassThreshold t;
    t.on = std::min(1.0, k.on);
    t.off = std::max(events.threshold_off, t.on - gap);
    events.per_class[it->second] = t;
  }
}

ConfidenceCurve fit_platt(const std::vector<float>& scores, const std::vector<int>& right, const ConfidenceCurve* fixed_a) {
  if (scores.size() != right.size()) throw Error("fit_platt: scores and outcomes differ in length");
  ConfidenceCurve c;
  c.count = int(scores.size());
  if (fixed_a) c.a = fixed_a->a;
  if (scores.empty()) return fixed_a ? *fixed_a : c;
  // Platt's smoothed targets keep b finite when every outcome is the same.
  const double pos = double(std::count(right.begin(), right.end(), 1));
  const double neg = double(right.size()) - pos;
  const double t_pos = (pos + 1) / (pos + 2), t_neg = 1 / (neg + 2);
  std::vector<double> x(scores.size()), t(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) {
    x[i] = logit(scores[i]);
    t[i] = right[i] ? t_pos : t_neg;
  }
  // Newton's method on the log-loss (convex), with a small ridge for stability and a
  // backtracking line search: a plain Newton step can overshoot back and forth for ever when the
  // scores say little about the outcome (a flat optimum) and some logits are large.
  double a = c.a, b = fixed_a ? fixed_a->b : 0.0;
  const double ridge = 1e-6;
  auto loss = [&](double aa, double bb) {
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double z = aa * x[i] + bb;
      // log(1 + e^z) - t z, computed without overflow
      s += (z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z))) - t[i] * z;
    }
    return s;
  };
  double current = loss(a, b);
  for (int it = 0; it < 100; ++it) {
    double ga = 0, gb = 0, haa = ridge, hab = 0, hbb = ridge;
    for (size_t i = 0; i < x.size(); ++i) {
      const double p = sigmoid(a * x[i] + b), d = p - t[i], w = std::max(p * (1 - p), 1e-12);
      ga += d * x[i];
      gb += d;
      haa += w * x[i] * x[i];
      hab += w * x[i];
      hbb += w;
    }
    double da = 0, db = 0;
    if (fixed_a) {
      db = gb / hbb;
    } else {
      const double det = haa * hbb - hab * hab;
      if (!(std::abs(det) > 1e-18)) break;
      da = (hbb * ga - hab * gb) / det;
      db = (haa * gb - hab * ga) / det;
    }
    const double step = std::max(std::abs(da), std::abs(db));
    if (step < 1e-10) break;
    double scale = 1.0, next = loss(a - da, b - db);
    for (int k = 0; k < 40 && !(next <= current); ++k) {
      scale *= 0.5;
      next = loss(a - scale * da, b - scale * db);
    }
    if (!(next <= current)) break;  // no descent left: at the optimum to rounding
    a -= scale * da;
    b -= scale * db;
    const bool done = current - next < 1e-12 * std::max(1.0, std::abs(current));
    current = next;
    if (done) break;
  }
  c.a = a;
  c.b = b;
  return c;
}

double expected_calibration_error(const std::vector<float>& confidence, const std::vector<int>& right, int bins) {
  if (confidence.size() != right.size()) throw Error("expected_calibration_error: lengths differ");
  if (confidence.empty() || bins < 1) return 0;
  std::vector<double> sum_c(size_t(bins), 0), sum_r(size_t(bins), 0), n(size_t(bins), 0);
  for (size_t i = 0; i < confidence.size(); ++i) {
    if (!std::isfinite(confidence[i])) continue;  // no confidence: not judged
    const int k = std::clamp(int(std::clamp(double(confidence[i]), 0.0, 1.0) * bins), 0, bins - 1);
    sum_c[size_t(k)] += confidence[i];
    sum_r[size_t(k)] += right[i] ? 1 : 0;
    n[size_t(k)] += 1;
  }
  double total = 0, e = 0;
  for (double c : n) total += c;
  for (size_t k = 0; k < size_t(bins); ++k)
    if (n[k] > 0) e += std::abs(sum_c[k] - sum_r[k]) / total;
  return e;
}

}  // namespace earmark::detect
