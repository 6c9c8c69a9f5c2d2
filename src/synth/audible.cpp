#include "synth/audible.hpp"

#include <algorithm>
#include <cmath>

#include "earmark/earmark.hpp"
#include "util/fft.hpp"

namespace earmark::synth {

namespace {
constexpr double kLowHz = 60.0, kHighHz = 15000.0;
constexpr double kFrameS = 0.010, kWindowS = 0.032;
}  // namespace

std::vector<std::pair<double, double>> audible_extent(std::span<const float> event, std::span<const float> bed,
                                                      int rate, const AudibleRule& rule) {
  if (event.size() != bed.size()) throw Error("audible_extent: event and bed spans differ in length");
  if (rate <= 0 || rule.bands < 1) throw Error("audible_extent: rate and bands must be positive");
  const size_t n = event.size();
  if (n == 0) return {};
  const size_t hop = size_t(std::lround(rate * kFrameS));
  size_t fft_n = 1;
  while (double(fft_n) < rate * kWindowS) fft_n *= 2;
  const size_t win = size_t(std::lround(rate * kWindowS));
  std::vector<float> window(win);
  for (size_t i = 0; i < win; ++i) window[i] = float(0.5 - 0.5 * std::cos(2 * M_PI * (double(i) + 0.5) / double(win)));

  // Band edges in FFT bins, log-spaced; every band gets at least one bin.
  const size_t bins = fft_n / 2 + 1;
  const double bin_hz = double(rate) / double(fft_n);
  const double high = std::min(kHighHz, rate / 2.0);
  std::vector<size_t> edge(size_t(rule.bands) + 1);
  for (int b = 0; b <= rule.bands; ++b) {
    const double hz = kLowHz * std::pow(high / kLowHz, double(b) / rule.bands);
    edge[size_t(b)] = std::min(bins - 1, size_t(std::lround(hz / bin_hz)));
  }
  for (int b = 1; b <= rule.bands; ++b) edge[size_t(b)] = std::max(edge[size_t(b)], edge[size_t(b) - 1] + 1);
  if (edge.back() > bins) throw Error("audible_extent: too many bands for the window");

  // Frame t is centred on sample t * hop.
  const size_t frames = (n + hop - 1) / hop;
  const size_t B = size_t(rule.bands);
  std::vector<float> ev(frames * B), bd(frames * B);
  util::RealFft fft(fft_n);
  auto bands_of = [&](std::span<const float> x, size_t t, float* out) {
    float* buf = fft.time();
    std::fill(buf, buf + fft_n, 0.0f);
    const long start = long(t * hop) - long(win / 2);
    for (size_t i = 0; i < win; ++i) {
      const long s = start + long(i);
      if (s >= 0 && size_t(s) < n) buf[i] = x[size_t(s)] * window[i];
    }
    fft.forward();
    const auto* X = fft.spectrum();
    for (size_t b = 0; b < B; ++b) {
      double e = 0;
      for (size_t k = edge[b]; k < edge[b + 1]; ++k) e += double(std::norm(X[k]));
      out[b] = float(e);
    }
  };
  float peak = 0;
  for (size_t t = 0; t < frames; ++t) {
    bands_of(event, t, ev.data() + t * B);
    bands_of(bed, t, bd.data() + t * B);
    for (size_t b = 0; b < B; ++b) peak = std::max(peak, ev[t * B + b]);
  }
  if (!(peak > 0)) return {};
  const double floor_e = peak * std::pow(10.0, -rule.below_peak_db / 10.0);
  const double mask = std::pow(10.0, rule.masked_db / 10.0);
  std::vector<std::pair<size_t, size_t>> runs;  // frames [first, last]
  for (size_t t = 0; t < frames; ++t) {
    bool audible = false;
    for (size_t b = 0; b < B && !audible; ++b) {
      const double e = ev[t * B + b];
      audible = e >= floor_e && e >= double(bd[t * B + b]) * mask;
    }
    if (!audible) continue;
    if (!runs.empty() && runs.back().second + 1 == t) runs.back().second = t;
    else runs.emplace_back(t, t);
  }
  // Frame t stands for [t - 1/2, t + 1/2) hops.
  auto to_s = [&](double frame_edge) { return std::clamp(frame_edge * double(hop), 0.0, double(n)) / rate; };
  std::vector<std::pair<double, double>> out;
  for (const auto& [a, b] : runs) {
    const double on = to_s(double(a) - 0.5), off = to_s(double(b) + 0.5);
    if (!out.empty() && on - out.back().second < rule.bridge_s) out.back().second = off;
    else out.emplace_back(on, off);
  }
  std::erase_if(out, [&](const auto& r) { return r.second - r.first < rule.min_run_s; });
  return out;
}

}  // namespace earmark::synth
