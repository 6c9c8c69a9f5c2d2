#include "detect/naive.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace earmark::detect {

FramesConfig naive_frames_config() {
  FramesConfig f;
  f.method = "windows";
  f.window_s = 0.96;
  f.hop_s = 0.48;
  return f;
}

std::vector<Event> naive_events(const FrameScores& s, double threshold, double duration_s) {
  if (!(threshold >= 0.0 && threshold <= 1.0))
    throw Error("naive baseline: threshold " + std::to_string(threshold) + " must be a score between 0 and 1");
  if (s.frames < 0 || s.values.size() != size_t(s.frames) * s.labels.size())
    throw Error("naive baseline: score grid has " + std::to_string(s.values.size()) + " values for " +
                std::to_string(s.frames) + " frames x " + std::to_string(s.labels.size()) + " labels");
  if (s.frames > 0 && !(std::isfinite(s.hop_s) && s.hop_s > 0))
    throw Error("naive baseline: frame hop " + std::to_string(s.hop_s) + " s must be positive");
  std::vector<Event> out;
  if (s.labels.empty()) return out;
  const size_t C = s.labels.size();
  // Compared as float, the scores' own precision, so that a score printed as the threshold counts.
  const float thr = static_cast<float>(threshold);
  int open_cls = -1;  // class of the event being extended by the previous frame, -1: none
  for (int f = 0; f < s.frames; ++f) {
    const double start = f * s.hop_s;
    if (start >= duration_s) break;
    int best = 0;
    float best_v = -1.0f;
    for (size_t c = 0; c < C; ++c) {
      float v = s.values[size_t(f) * C + c];
      if (!std::isfinite(v)) v = 0.0f;
      if (v > best_v) best_v = v, best = int(c);
    }
    if (best_v < thr) {
      open_cls = -1;
      continue;
    }
    const double end = std::min((f + 1) * s.hop_s, duration_s);
    if (open_cls == best) {
      out.back().offset = end;
      out.back().confidence = std::max(out.back().confidence, best_v);
      out.back().score = out.back().confidence;
      continue;
    }
    Event e;
    e.onset = start;
    e.offset = end;
    e.label = s.labels[size_t(best)];
    e.class_index = best;
    e.confidence = best_v;
    e.score = best_v;
    out.push_back(std::move(e));
    open_cls = best;
  }
  return out;
}

}  // namespace earmark::detect
