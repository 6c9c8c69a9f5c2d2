#include "eval/psds.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace earmark::eval {

namespace {

using Interval = std::pair<double, double>;

double round6(double x) { return std::nearbyint(x * 1e6) / 1e6; }

double overlap(const Interval& a, const Interval& b) {
  return std::max(0.0, std::min(a.second, b.second) - std::max(a.first, b.first));
}

// Sorted, merged (overlapping or touching), non-empty intervals.
std::vector<Interval> merge_intervals(std::vector<Interval> v) {
  std::sort(v.begin(), v.end());
  std::vector<Interval> out;
  for (const auto& iv : v) {
    if (!(iv.second > iv.first)) continue;
    if (!out.empty() && iv.first <= out.back().second)
      out.back().second = std::max(out.back().second, iv.second);
    else
      out.push_back(iv);
  }
  return out;
}

struct Stats {
  long tp = 0, fp = 0;
  std::vector<long> ct;  // per class (own class stays 0); empty when cross-triggers are off
};

void add_to(Stats& a, const Stats& b, long sign) {
  a.tp += sign * b.tp;
  a.fp += sign * b.fp;
  if (a.ct.size() < b.ct.size()) a.ct.resize(b.ct.size(), 0);
  for (size_t k = 0; k < b.ct.size(); ++k) a.ct[k] += sign * b.ct[k];
}

// One file, one class, one set of detections.
Stats judge(const std::vector<Interval>& dets, const std::vector<std::vector<Interval>>& gt, size_t c,
            const PsdsConfig& cfg, bool with_ct) {
  Stats s;
  const auto& own = gt[c];
  std::vector<double> cover(own.size(), 0.0);
  if (with_ct) s.ct.assign(gt.size(), 0);
  for (const auto& d : dets) {
    const double len = d.second - d.first;
    if (!(len > 0)) continue;
    double inter = 0;
    for (const auto& g : own) inter += overlap(d, g);
    const bool dtc_ok = inter > 0 && round6(inter) >= round6(cfg.dtc * len);
    if (dtc_ok) {
      for (size_t j = 0; j < own.size(); ++j) cover[j] += overlap(d, own[j]);
      continue;
    }
    s.fp += 1;
    if (!with_ct) continue;
    for (size_t k = 0; k < gt.size(); ++k) {
      if (k == c) continue;
      double other = 0;
      for (const auto& g : gt[k]) other += overlap(d, g);
      if (other > 0 && round6(other) >= round6(cfg.cttc * len)) s.ct[k] += 1;
    }
  }
  for (size_t j = 0; j < own.size(); ++j)
    if (cover[j] > 0 && round6(cover[j]) >= round6(cfg.gtc * (own[j].second - own[j].first))) s.tp += 1;
  return s;
}

struct Curve {
  std::vector<double> x, y;  // x ascending unique, y non-decreasing
};

// (x, y) points -> staircase: max y per x, then running maximum.
Curve staircase(std::vector<std::pair<double, double>> pts) {
  std::sort(pts.begin(), pts.end());
  Curve c;
  for (const auto& [x, y] : pts) {
    if (!c.x.empty() && c.x.back() == x)
      c.y.back() = std::max(c.y.back(), y);
    else
      c.x.push_back(x), c.y.push_back(y);
  }
  for (size_t i = 1; i < c.y.size(); ++i) c.y[i] = std::max(c.y[i], c.y[i - 1]);
  return c;
}

// Value of the staircase at `x`: y of the last point at or before x (0 before the first).
double step_at(const Curve& c, double x) {
  auto it = std::upper_bound(c.x.begin(), c.x.end(), x);
  if (it == c.x.begin()) return 0.0;
  return c.y[size_t(it - c.x.begin()) - 1];
}

}  // namespace

PsdsConfig PsdsConfig::psds1() {
  PsdsConfig c;
  c.dtc = c.gtc = 0.7;
  c.alpha_ct = 0;
  c.alpha_st = 1;
  c.max_efpr = 100;
  return c;
}

PsdsConfig PsdsConfig::psds2() {
  PsdsConfig c;
  c.dtc = c.gtc = 0.1;
  c.cttc = 0.3;
  c.alpha_ct = 0.5;
  c.alpha_st = 1;
  c.max_efpr = 100;
  return c;
}

void PsdsConfig::validate() const {
  auto in01 = [](double v) { return v > 0 && v <= 1; };
  if (!in01(dtc)) throw Error(fmt::format("psds: dtc {} must be in (0, 1]", dtc));
  if (!in01(gtc)) throw Error(fmt::format("psds: gtc {} must be in (0, 1]", gtc));
  if (!in01(cttc)) throw Error(fmt::format("psds: cttc {} must be in (0, 1]", cttc));
  if (!(alpha_ct >= 0 && alpha_ct <= 1)) throw Error(fmt::format("psds: alpha_ct {} must be in [0, 1]", alpha_ct));
  if (!(alpha_st >= 0) || !std::isfinite(alpha_st)) throw Error(fmt::format("psds: alpha_st {} must be >= 0", alpha_st));
  if (!(max_efpr > 0) || !std::isfinite(max_efpr)) throw Error(fmt::format("psds: max_efpr {} must be > 0", max_efpr));
  if (!(unit_s > 0) || !std::isfinite(unit_s)) throw Error(fmt::format("psds: unit_s {} must be > 0", unit_s));
  if (!exact && n_thresholds < 1) throw Error(fmt::format("psds: n_thresholds {} must be >= 1", n_thresholds));
  if (exact && detect)
    throw Error("psds: a post-processing callback needs the linear threshold sweep (exact = false)");
}

double staircase_area(const std::vector<double>& x, const std::vector<double>& y, double max_x) {
  double area = 0;
  for (size_t i = 0; i < x.size() && x[i] < max_x; ++i) {
    const double next = i + 1 < x.size() ? std::min(x[i + 1], max_x) : max_x;
    area += y[i] * (next - x[i]);
  }
  return area;
}

std::vector<std::pair<double, double>> threshold_runs(const FrameScores& scores, int cls, double threshold,
                                                      double duration_s) {
  std::vector<std::pair<double, double>> out;
  const size_t k = scores.labels.size();
  // Scores are float: compare in float so that a score written as 0.35 is on at threshold 0.35.
  const float t = static_cast<float>(threshold);
  int start = -1;
  for (int f = 0; f <= scores.frames; ++f) {
    const bool on = f < scores.frames && scores.values[size_t(f) * k + size_t(cls)] >= t;
    if (on && start < 0) start = f;
    if (!on && start >= 0) {
      const double a = start * scores.hop_s, b = std::min(f * scores.hop_s, duration_s);
      if (b > a) out.emplace_back(a, b);
      start = -1;
    }
  }
  return out;
}

PsdsResult psds(const std::map<std::string, FrameScores>& scores, const EventTable& ref,
                const Durations& durations, const PsdsConfig& cfg) {
  cfg.validate();
  ref.check("reference");
  for (const auto& [file, d] : durations)
    if (!std::isfinite(d) || d < 0) throw Error(fmt::format("durations: {}: {} is not a length in seconds", file, d));

  // Files and their lengths.
  std::vector<std::string> files = ref.files();
  for (const auto& [f, d] : durations)
    if (!ref.has(f)) files.push_back(f);
  {
    std::vector<std::string> missing;
    for (const auto& f : files)
      if (!scores.count(f)) missing.push_back(f);
    if (!missing.empty()) {
      std::string list;
      for (size_t i = 0; i < missing.size() && i < 10; ++i) list += (i ? ", " : "") + missing[i];
      throw Error(fmt::format("psds: no frame scores for {} of {} files ({}{})", missing.size(), files.size(), list,
                              missing.size() > 10 ? ", ..." : ""));
    }
  }
  if (files.empty()) throw Error("psds: the reference lists no files");

  // Classes: those of the ground truth.
  std::vector<std::string> classes;
  for (const auto& l : ref.labels()) classes.push_back(l);
  if (classes.empty()) throw Error("psds: the reference has no events; PSDS needs ground truth events");
  const size_t K = classes.size();

  struct FileData {
    const FrameScores* scores;
    double duration;
    std::vector<int> column;                  // per class, index in scores->labels
    std::vector<std::vector<Interval>> gt;    // per class, merged
  };
  std::vector<FileData> data;
  PsdsResult result;
  std::vector<long> n_ref(K, 0);
  std::vector<double> t_ref(K, 0.0);
  for (const auto& f : files) {
    FileData fd;
    fd.scores = &scores.at(f);
    const FrameScores& s = *fd.scores;
    if (s.values.size() != size_t(s.frames) * s.labels.size() || !(s.hop_s > 0))
      throw Error("psds: " + f + ": frame scores are inconsistent (values != frames x labels, or hop <= 0)");
    auto d = durations.find(f);
    fd.duration = d != durations.end() ? d->second : s.frames * s.hop_s;
    std::vector<std::string> absent;
    for (const auto& c : classes) {
      auto it = std::find(s.labels.begin(), s.labels.end(), c);
      if (it == s.labels.end()) absent.push_back(c);
      fd.column.push_back(int(it - s.labels.begin()));
    }
    if (!absent.empty()) {
      std::string list;
      for (size_t i = 0; i < absent.size() && i < 10; ++i) list += (i ? ", '" : "'") + absent[i] + "'";
      throw Error(fmt::format("psds: scores of {} have no column for {} reference class(es): {}{}; map the model's "
                              "labels to the dataset's classes (--map)",
                              f, absent.size(), list, absent.size() > 10 ? ", ..." : ""));
    }
    fd.gt.resize(K);
    for (const auto& e : ref.events(f)) {
      const size_t c = size_t(std::lower_bound(classes.begin(), classes.end(), e.label) - classes.begin());
      fd.gt[c].emplace_back(e.onset, e.offset);
    }
    for (size_t c = 0; c < K; ++c) {
      fd.gt[c] = merge_intervals(std::move(fd.gt[c]));
      n_ref[c] += long(fd.gt[c].size());
      for (const auto& g : fd.gt[c]) t_ref[c] += g.second - g.first;
    }
    result.duration_s += fd.duration;
    data.push_back(std::move(fd));
  }
  result.files = int(files.size());
  if (!(result.duration_s > 0)) throw Error("psds: total audio length is 0; give durations (--durations)");

  const bool with_ct = cfg.alpha_ct > 0;
  std::vector<double> grid;
  if (!cfg.exact)
    for (int k = cfg.n_thresholds - 1; k >= 0; --k) grid.push_back((2.0 * k + 1) / (2.0 * cfg.n_thresholds));

  std::vector<Curve> curves;
  for (size_t c = 0; c < K; ++c) {
    PsdsClass pc;
    pc.label = classes[c];
    pc.n_ref = n_ref[c];
    pc.ref_length_s = t_ref[c];
    // (threshold, accumulated stats), highest threshold first.
    std::vector<std::pair<double, Stats>> totals;
    if (!cfg.exact) {
      for (double t : grid) totals.emplace_back(t, Stats{});
      for (const auto& fd : data)
        for (size_t i = 0; i < grid.size(); ++i) {
          const auto dets = cfg.detect ? cfg.detect(*fd.scores, fd.column[c], grid[i])
                                       : threshold_runs(*fd.scores, fd.column[c], grid[i], fd.duration);
          add_to(totals[i].second, judge(dets, fd.gt, c, cfg, with_ct), +1);
        }
    } else {
      // Each file's statistics change only at its own distinct scores: collect the changes
      // (deltas) at those values and add them up from the highest threshold down.
      std::map<double, Stats, std::greater<>> deltas;
      for (const auto& fd : data) {
        const FrameScores& s = *fd.scores;
        std::set<float, std::greater<>> values;
        for (int f = 0; f < s.frames; ++f) values.insert(s.at(f, fd.column[c]));
        Stats prev;
        for (float v : values) {
          Stats now = judge(threshold_runs(s, fd.column[c], double(v), fd.duration), fd.gt, c, cfg, with_ct);
          Stats& d = deltas[double(v)];
          add_to(d, now, +1);
          add_to(d, prev, -1);
          prev = std::move(now);
        }
      }
      Stats acc;
      for (const auto& [t, d] : deltas) {
        add_to(acc, d, +1);
        totals.emplace_back(t, acc);
      }
    }
    std::vector<std::pair<double, double>> pts{{0.0, 0.0}};  // the "no detection" operating point
    for (const auto& [t, st] : totals) {
      PsdsPoint p;
      p.threshold = t;
      p.tp = st.tp;
      p.fp = st.fp;
      p.tpr = double(st.tp) / double(n_ref[c]);
      p.fpr = double(st.fp) * cfg.unit_s / result.duration_s;
      p.efpr = p.fpr;
      if (with_ct && K > 1) {
        double sum = 0;
        for (size_t k = 0; k < K; ++k)
          if (k != c && k < st.ct.size()) sum += double(st.ct[k]) * cfg.unit_s / t_ref[k];
        p.efpr += cfg.alpha_ct * sum / double(K - 1);
      }
      pts.emplace_back(p.efpr, p.tpr);
      pc.points.push_back(p);
    }
    curves.push_back(staircase(pts));
    pc.psds = staircase_area(curves.back().x, curves.back().y, cfg.max_efpr) / cfg.max_efpr;
    result.classes.push_back(std::move(pc));
  }

  // PSD-ROC on the union of the classes' eFPR points.
  std::set<double> xs;
  for (const auto& cv : curves) xs.insert(cv.x.begin(), cv.x.end());
  std::vector<double> x(xs.begin(), xs.end()), y;
  for (double xv : x) {
    double mean = 0;
    std::vector<double> ys;
    for (const auto& cv : curves) ys.push_back(step_at(cv, xv));
    for (double v : ys) mean += v;
    mean /= double(ys.size());
    double var = 0;
    for (double v : ys) var += (v - mean) * (v - mean);
    const double sd = std::sqrt(var / double(ys.size()));
    y.push_back(std::max(0.0, mean - cfg.alpha_st * sd));
  }
  result.value = staircase_area(x, y, cfg.max_efpr) / cfg.max_efpr;
  for (size_t i = 0; i < x.size() && x[i] < cfg.max_efpr; ++i) {
    result.efpr.push_back(x[i]);
    result.etpr.push_back(y[i]);
  }
  if (!result.etpr.empty()) {
    result.efpr.push_back(cfg.max_efpr);
    result.etpr.push_back(result.etpr.back());
  }
  return result;
}

}  // namespace earmark::eval
