#include "detect/boundaries.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>

#include "detect/events.hpp"
#include "features/logmel.hpp"

namespace earmark::detect {

namespace {

constexpr int kMelsPerBand = features::kNumMels / kEnvelopeBands;
static_assert(features::kNumMels % kEnvelopeBands == 0);

// The p-quantile (0..1) of v (reordered).
float quantile(std::vector<float>& v, double p) {
  if (v.empty()) return 0.0f;
  const auto k = size_t(std::clamp(p, 0.0, 1.0) * double(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + long(k), v.end());
  return v[k];
}

struct Run {
  long first, last;  // frames, inclusive
};

}  // namespace

void BandEnvelope::push(std::span<const float> frames, size_t n) {
  for (size_t t = 0; t < n; ++t) {
    const float* f = frames.data() + t * features::kNumMels;
    for (int b = 0; b < kEnvelopeBands; ++b) {
      double power = 0;
      // Undo the normalisation: x = (log(mel + 1e-5) + 4.5) / 5.
      for (int m = b * kMelsPerBand; m < (b + 1) * kMelsPerBand; ++m) power += std::exp(5.0 * double(f[m]) - 4.5);
      const double db = 10.0 * std::log10(std::max(power, 1e-12));
      values_->push_back(uint16_t(int16_t(std::clamp(std::lround(db * 100.0), -32000L, 32000L))));
    }
  }
}

BoundaryParams BoundaryParams::from(const EventsConfig& cfg) {
  BoundaryParams p;
  p.search_s = cfg.refine_search_s;
  p.threshold_db = cfg.refine_threshold_db;
  p.bridge_s = cfg.refine_bridge_s;
  return p;
}

std::vector<Event> refine_boundaries(const std::vector<Event>& events, const BandEnvelope& env,
                                     const BoundaryParams& prm, double duration_s) {
  const long n = long(env.frames());
  const double hop = env.hop_s();
  if (n == 0) return events;
  auto frame_of = [&](double s) { return std::clamp(long(std::lround(s / hop)), 0L, n); };
  const long search = long(std::lround(prm.search_s / hop));
  const long context = long(std::lround(prm.context_s / hop));
  const long bridge = long(std::lround(prm.bridge_s / hop));
  const long min_run = std::max(1L, long(std::lround(prm.min_run_s / hop)));
  const long extend = long(std::lround(prm.max_extend_s / hop));
  constexpr int B = kEnvelopeBands;

  std::vector<Event> out;
  std::vector<float> buf, activity;
  for (const Event& e : events) {
    const long a = frame_of(e.onset), b = std::max(a + 1, frame_of(e.offset));  // coarse span [a, b)
    const long c0 = std::max(0L, a - context), c1 = std::min(n, b + context);
    // 1. The event's bands and their background levels.
    std::array<float, B> background{}, contrast{};
    float weight_sum = 0;
    for (int k = 0; k < B; ++k) {
      buf.clear();
      for (long t = c0; t < c1; ++t)
        if (t < a - search || t >= b + search) buf.push_back(env.db(size_t(t), k));
      if (buf.size() < 100) {  // little outside the event: all of the context
        buf.clear();
        for (long t = c0; t < c1; ++t) buf.push_back(env.db(size_t(t), k));
      }
      background[size_t(k)] = quantile(buf, 0.2);
      buf.clear();
      for (long t = a; t < std::min(b, n); ++t) buf.push_back(env.db(size_t(t), k));
      const float level = quantile(buf, 0.9);
      contrast[size_t(k)] = level - background[size_t(k)] >= prm.min_contrast_db ? level - background[size_t(k)] : 0.0f;
      weight_sum += contrast[size_t(k)];
    }
    if (!(weight_sum > 0)) {  // nothing to measure against: a sound that fills its context
      out.push_back(e);
      continue;
    }
    // 2. Activity over a window that can grow while the sound goes on.
    const long w0 = std::max(0L, a - search - extend), w1 = std::min(n, b + search + extend);
    activity.assign(size_t(w1 - w0), 0.0f);
    for (long t = w0; t < w1; ++t) {
      float s = 0;
      for (int k = 0; k < B; ++k)
        if (contrast[size_t(k)] > 0) s += contrast[size_t(k)] * (env.db(size_t(t), k) - background[size_t(k)]);
      activity[size_t(t - w0)] = s / weight_sum;
    }
    // A median of three removes one-frame flicker without moving a rising or falling edge.
    std::vector<float> smooth(activity.size());
    for (size_t i = 0; i < activity.size(); ++i) {
      const float x0 = activity[i > 0 ? i - 1 : i], x1 = activity[i], x2 = activity[std::min(activity.size() - 1, i + 1)];
      smooth[i] = std::max(std::min(x0, x1), std::min(std::max(x0, x1), x2));
    }
    float peak = -std::numeric_limits<float>::infinity();
    for (long t = a; t < std::min(b, w1); ++t) peak = std::max(peak, smooth[size_t(t - w0)]);
    // What the background alone reaches in these bands (its own flicker: rain, a TV bed) is not
    // the sound: the activity of the context outside the search window, at its 95th percentile.
    buf.clear();
    for (long t = std::max(w0, c0); t < std::min(w1, c1); ++t)
      if (t < a - search || t >= b + search) buf.push_back(smooth[size_t(t - w0)]);
    // The context can hold part of this sound or others (the grid's span is only roughly right),
    // so the 95th percentile is capped by what a Gaussian flicker fitted to the lower part of the
    // distribution (10th and 30th percentiles, robust to 70 % of the frames being sound) reaches.
    double flicker = 0;
    if (buf.size() >= 50) {
      const double q95 = quantile(buf, prm.background_quantile), q30 = quantile(buf, 0.3), q10 = quantile(buf, 0.1);
      const double sigma = (q30 - q10) / 0.757;  // z(0.3) - z(0.1)
      flicker = std::min(q95, q30 + (0.524 + 1.645) * sigma);
    }
    const double theta = std::max({prm.threshold_db, flicker + prm.flicker_margin_db, double(peak) - prm.drop_db});
    const auto salience = float(std::max(0.0, double(peak) - std::max(double(prm.threshold_db), flicker)));
    auto on = [&](long t) { return t >= w0 && t < w1 && double(smooth[size_t(t - w0)]) >= theta; };
    // 3. Runs within the search window, bridged, followed outwards while the sound goes on.
    std::vector<Run> runs;
    for (long t = std::max(w0, a - search); t < std::min(w1, b + search); ++t) {
      if (!on(t)) continue;
      if (!runs.empty() && t - runs.back().last - 1 < bridge) runs.back().last = t;
      else runs.push_back({t, t});
    }
    if (!runs.empty()) {
      auto grow = [&](long from, long step) {  // last frame of the sound going on from `from`
        long last = from, gap = 0;
        for (long t = from + step; t >= w0 && t < w1 && gap < bridge; t += step) {
          if (on(t)) {
            last = t;
            gap = 0;
          } else {
            ++gap;
          }
        }
        return last;
      };
      runs.front().first = grow(runs.front().first, -1);
      runs.back().last = grow(runs.back().last, +1);
    }
    std::vector<Event> pieces;
    for (const Run& r : runs) {
      if (r.last - r.first + 1 < min_run) continue;
      if (r.last < a - 1 || r.first > b) continue;  // does not meet the coarse span
      Event x = e;
      x.salience_db = salience;
      x.onset = std::max(0.0, (double(r.first) - 0.5) * hop);
      x.offset = std::min(duration_s, (double(r.last) + 0.5) * hop);
      if (x.offset <= x.onset) continue;
      pieces.push_back(std::move(x));
    }
    // Three barks a second apart are three events; a trot, a ticking clock or rain on a window
    // is one sound that goes on, not a dozen.
    if (int(pieces.size()) > prm.max_pieces) {
      pieces.front().offset = pieces.back().offset;
      pieces.resize(1);
    }
    if (pieces.empty()) {
      out.push_back(e);
      out.back().salience_db = salience;
    }
    for (auto& x : pieces) out.push_back(std::move(x));
  }
  // Same-class events that now overlap are one.
  std::sort(out.begin(), out.end(), [](const Event& x, const Event& y) {
    if (x.class_index != y.class_index) return x.class_index < y.class_index;
    if (x.label != y.label) return x.label < y.label;
    return x.onset < y.onset;
  });
  std::vector<Event> merged;
  for (auto& x : out) {
    if (!merged.empty() && merged.back().label == x.label && merged.back().class_index == x.class_index &&
        x.onset <= merged.back().offset) {
      merged.back().offset = std::max(merged.back().offset, x.offset);
      merged.back().confidence = std::max(merged.back().confidence, x.confidence);
      merged.back().score = std::max(merged.back().score, x.score);
      merged.back().salience_db = std::max(merged.back().salience_db, x.salience_db);
    } else {
      merged.push_back(std::move(x));
    }
  }
  std::sort(merged.begin(), merged.end(), reported_order);
  return merged;
}

FrameScores detection_scores(const FrameScores& scores, const EventsConfig& cfg, const BandEnvelope* env,
                             double duration_s, int levels, double step_s) {
  if (levels < 2 || !(step_s > 0)) throw Error("detection_scores: need at least 2 levels and a positive step");
  FrameScores out;
  out.hop_s = step_s;
  out.labels = scores.labels;
  out.frames = duration_s > 0 ? int(std::ceil(duration_s / step_s - 1e-9)) : 0;
  const size_t C = out.labels.size();
  out.values.assign(size_t(out.frames) * C, 0.0f);
  if (out.frames == 0 || C == 0 || !(cfg.threshold_on > 0)) return out;
  for (int k = 1; k < levels; ++k) {
    const double tau = double(k) / levels;
    const double f = tau / cfg.threshold_on;
    EventsConfig c = cfg;
    c.threshold_on = std::min(1.0, cfg.threshold_on * f);
    c.threshold_off = std::min(c.threshold_on, cfg.threshold_off * f);
    for (auto& [name, t] : c.per_class) {
      if (t.on >= 0) t.on = std::min(1.0, t.on * f);
      if (t.off >= 0) t.off = std::min(t.on >= 0 ? t.on : c.threshold_on, t.off * f);
    }
    auto events = find_events(scores, c, duration_s);
    if (cfg.refine && env) events = refine_boundaries(events, *env, BoundaryParams::from(cfg), duration_s);
    for (const Event& e : events) {
      if (e.class_index < 0 || size_t(e.class_index) >= C) continue;
      // Steps whose middle lies inside the event.
      const long first = std::max(0L, long(std::ceil(e.onset / step_s - 0.5)));
      const long last = std::min(long(out.frames), long(std::ceil(e.offset / step_s - 0.5)));
      for (long j = first; j < last; ++j) {
        const size_t at = size_t(j) * C + size_t(e.class_index);
        out.values.set(at, std::max(float(out.values[at]), float(tau)));
      }
    }
  }
  return out;
}

}  // namespace earmark::detect
