#include "condition/quality.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <mutex>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/fft.hpp"
#include "condition/filters.hpp"

namespace earmark::condition {

namespace {

double power_db(double mean_square) {
  if (!(mean_square > 0)) return kUnmeasurableDb;
  return std::max(kUnmeasurableDb, 10 * std::log10(mean_square));
}
double amplitude_db(double a) { return power_db(a * a); }

template <typename T>
void require(bool ok, const char* key, T got, const char* what) {
  if (!ok) throw Error(fmt::format("quality.{}: {} (got {}); fix the value in the configuration", key, what, got));
}

// Linear interpolation between order statistics (numpy's default), on a copy.
double percentile(std::vector<float> v, double p) {
  if (v.empty()) return kUnmeasurableDb;
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * double(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  const double f = pos - double(lo);
  return double(v[lo]) * (1 - f) + double(v[hi]) * f;
}

// "1234567" -> "1,234,567": counts in messages are read by people.
std::string grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

size_t next_pow2(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

std::vector<float> periodic_hann(size_t n) {
  std::vector<float> w(n);
  for (size_t i = 0; i < n; ++i) w[i] = float(0.5 - 0.5 * std::cos(2 * M_PI * double(i) / double(n)));
  return w;
}

// The analysis windows of a sample rate (the frame's and the hum FFT's), made once per process
// instead of once per file (32,768 cosines for the hum window alone).
const std::vector<float>& shared_periodic_hann(size_t n) {
  static std::mutex m;
  static std::map<size_t, std::vector<float>> windows;
  std::lock_guard lock(m);
  auto it = windows.find(n);
  if (it == windows.end()) it = windows.emplace(n, periodic_hann(n)).first;
  return it->second;  // map nodes stay put
}

constexpr double kBucketMinDb = -160.0;  // frame level buckets for the noise colour, 1 dB wide
constexpr int kBuckets = 180;

}  // namespace

void QualityConfig::validate() const {
  require(frame_s >= 0.005 && frame_s <= 1.0, "frame_s", frame_s, "must be between 0.005 and 1 s");
  require(clip_level > 0 && clip_level <= 1.0, "clip_level", clip_level, "must be in (0, 1]");
  require(clip_min_run >= 1, "clip_min_run", clip_min_run, "must be at least 1 sample");
  require(clip_merge_gap_s >= 0, "clip_merge_gap_s", clip_merge_gap_s, "must not be negative");
  require(clip_error_fraction > 0 && clip_error_fraction <= 1, "clip_error_fraction", clip_error_fraction,
          "must be in (0, 1]");
  require(silence_level >= 0 && silence_level < 0.1, "silence_level", silence_level,
          "must be in [0, 0.1) (a linear sample value)");
  require(silence_min_s > 0, "silence_min_s", silence_min_s, "must be positive");
  require(dropout_min_s > 0 && dropout_min_s < silence_min_s, "dropout_min_s", dropout_min_s,
          "must be positive and shorter than silence_min_s");
  require(dropout_context_s > 0 && dropout_context_s <= 1.0, "dropout_context_s", dropout_context_s,
          "must be in (0, 1] s");
  require(dropout_context_dbfs < 0, "dropout_context_dbfs", dropout_context_dbfs, "must be below 0 dBFS");
  require(noise_floor_percentile >= 0 && noise_floor_percentile <= 100, "noise_floor_percentile",
          noise_floor_percentile, "must be in [0, 100]");
  require(signal_percentile >= 0 && signal_percentile <= 100, "signal_percentile", signal_percentile,
          "must be in [0, 100]");
  require(signal_percentile > noise_floor_percentile, "signal_percentile", signal_percentile,
          "must be above noise_floor_percentile");
  require(pause_margin_db >= 0, "pause_margin_db", pause_margin_db, "must not be negative");
  require(long_pause_min_s > 0, "long_pause_min_s", long_pause_min_s, "must be positive");
  require(pause_bridge_s >= 0, "pause_bridge_s", pause_bridge_s, "must not be negative");
  require(pause_min_snr_db >= 0, "pause_min_snr_db", pause_min_snr_db, "must not be negative");
  require(dc_offset_max > 0, "dc_offset_max", dc_offset_max, "must be positive");
  require(hum_harmonics >= 1 && hum_harmonics <= 20, "hum_harmonics", hum_harmonics, "must be between 1 and 20");
  require(hum_min_prominence_db > 0, "hum_min_prominence_db", hum_min_prominence_db, "must be positive");
  require(colour_quiet_fraction > 0 && colour_quiet_fraction <= 1, "colour_quiet_fraction", colour_quiet_fraction,
          "must be in (0, 1]");
  require(colour_min_hz >= 20 && colour_max_hz > 2 * colour_min_hz, "colour_max_hz", colour_max_hz,
          "must be at least an octave above colour_min_hz (itself at least 20 Hz)");
  require(colour_blue_above > colour_white_above && colour_white_above > colour_pink_above, "colour_white_above",
          colour_white_above, "class limits must decrease: blue > white > pink");
  require(max_regions >= 0, "max_regions", max_regions, "must not be negative");
}

const char* to_string(AnomalyKind k) {
  switch (k) {
    case AnomalyKind::low_level: return "low_level";
    case AnomalyKind::clipping: return "clipping";
    case AnomalyKind::dc_offset: return "dc_offset";
    case AnomalyKind::silence: return "silence";
    case AnomalyKind::long_pause: return "long_pause";
    case AnomalyKind::heavy_noise: return "heavy_noise";
    case AnomalyKind::hum: return "hum";
    case AnomalyKind::dropout: return "dropout";
  }
  return "?";
}

const char* to_string(Severity s) {
  switch (s) {
    case Severity::info: return "info";
    case Severity::warning: return "warning";
    case Severity::error: return "error";
  }
  return "?";
}

const char* to_string(NoiseColour c) {
  switch (c) {
    case NoiseColour::unknown: return "unknown";
    case NoiseColour::white: return "white";
    case NoiseColour::pink: return "pink";
    case NoiseColour::brown: return "brown";
    case NoiseColour::blue: return "blue";
  }
  return "?";
}

bool QualityReport::has(AnomalyKind k) const {
  return std::any_of(anomalies.begin(), anomalies.end(), [k](const Anomaly& a) { return a.kind == k; });
}

std::vector<const Anomaly*> QualityReport::find(AnomalyKind k) const {
  std::vector<const Anomaly*> out;
  for (const auto& a : anomalies)
    if (a.kind == k) out.push_back(&a);
  return out;
}

struct QualityAnalyzer::Impl {
  QualityConfig cfg;
  int fs;
  bool finished = false;

  // Sizes in samples.
  int64_t frame_len, subblock_len, clip_gap, silence_min, dropout_min, dropout_ctx;
  float silence_thr, clip_thr;
  double dropout_ctx_ms;  // mean square threshold of the dropout context

  std::vector<float> scratch;

  // Totals.
  int64_t n = 0;
  double peak = 0, sum = 0, sumsq = 0;

  // Loudness: K-weighted energy per 100 ms sub-block (BS.1770 blocks are 4 of them).
  Biquad kw1, kw2;
  double sub_energy = 0;
  int64_t sub_count = 0;
  double kw_total = 0;  // for inputs shorter than one block
  std::vector<double> subblocks;

  // Frames.
  std::vector<float> frame;
  std::vector<float> frame_levels;
  std::vector<uint8_t> frame_silent;

  // Noise colour: per frame-level bucket, the summed band power densities of its frames.
  std::unique_ptr<util::RealFft> colour_fft;
  const std::vector<float>* colour_window = nullptr;
  struct Band {
    double centre_hz;
    size_t lo, hi;  // bins [lo, hi)
  };
  std::vector<Band> bands;
  std::vector<double> bucket_bands;  // kBuckets x bands
  std::vector<int64_t> bucket_frames;

  // Hum: Welch average of the low part of the spectrum, about 1 Hz resolution.
  std::unique_ptr<util::RealFft> hum_fft;
  const std::vector<float>* hum_window = nullptr;
  std::vector<float> hum_buf;
  std::vector<double> hum_psd;
  int64_t hum_segments = 0;
  double hum_window_power = 0;  // sum of the squared hum window

  // Clipping.
  int64_t clip_run_start = 0, clip_run_len = 0;
  bool clip_region_open = false;
  int64_t clip_region_start = 0, clip_region_end = 0, clip_region_count = 0;
  int64_t clipped_samples = 0, clip_regions_total = 0;
  std::vector<TimeRegion> clip_regions;

  // Near-zero runs (silence and dropouts).
  int64_t zrun_start = 0, zrun_len = 0;
  bool zrun_pre_ok = false;
  std::vector<float> ring;  // the last dropout_ctx + dropout_min samples, sample i at i % size
  struct Candidate {
    int64_t start, end;
    int64_t post_from;  // first sample of the context after the gap
    double post_sum = 0;
    int64_t post_count = 0;
  };
  std::deque<Candidate> pending;
  int64_t silence_total = 0, silence_count = 0, dropout_count = 0;
  std::vector<TimeRegion> silences, dropouts;

  Impl(QualityConfig c, int rate) : cfg(std::move(c)), fs(rate) {
    if (rate < 8000 || rate > 384000)
      throw Error(fmt::format("quality analysis: sample rate {} Hz is out of range; resample to {} Hz first", rate,
                              kSampleRate));
    cfg.validate();
    auto samples_of = [&](double s) { return std::max<int64_t>(1, std::llround(s * fs)); };
    frame_len = samples_of(cfg.frame_s);
    subblock_len = samples_of(0.1);
    clip_gap = std::llround(cfg.clip_merge_gap_s * fs);
    silence_min = samples_of(cfg.silence_min_s);
    dropout_min = samples_of(cfg.dropout_min_s);
    dropout_ctx = samples_of(cfg.dropout_context_s);
    silence_thr = float(cfg.silence_level);
    clip_thr = float(cfg.clip_level);
    dropout_ctx_ms = std::pow(10.0, cfg.dropout_context_dbfs / 10);
    ring.assign(size_t(dropout_ctx + dropout_min), 0.0f);

    const auto kw = k_weighting(fs);
    kw1 = Biquad(kw[0]);
    kw2 = Biquad(kw[1]);
    frame.reserve(size_t(frame_len));

    // Colour: one FFT per frame, zero-padded to a power of two.
    const size_t cn = next_pow2(size_t(frame_len));
    colour_fft = std::make_unique<util::RealFft>(cn);
    colour_window = &shared_periodic_hann(size_t(frame_len));
    const double bin_hz = double(fs) / double(cn);
    const double top = std::min(cfg.colour_max_hz, 0.45 * fs);
    // Third-octave bands on the base-ten grid around 1 kHz.
    for (int k = -30; k <= 30; ++k) {
      const double fc = 1000.0 * std::pow(2.0, k / 3.0);
      if (fc < cfg.colour_min_hz * 0.99 || fc > top * 1.01) continue;
      const double lo_hz = fc * std::pow(2.0, -1.0 / 6), hi_hz = fc * std::pow(2.0, 1.0 / 6);
      const auto lo = static_cast<size_t>(std::ceil(lo_hz / bin_hz));
      const auto hi = std::min(static_cast<size_t>(std::ceil(hi_hz / bin_hz)), cn / 2);
      if (hi > lo) bands.push_back({fc, lo, hi});
    }
    bucket_bands.assign(size_t(kBuckets) * bands.size(), 0.0);
    bucket_frames.assign(kBuckets, 0);

    // Hum: about 1 Hz bins; only the bins up to the highest harmonic (plus a margin for the
    // neighbourhood) are kept.
    const size_t hn = next_pow2(size_t(fs));
    hum_fft = std::make_unique<util::RealFft>(hn);
    hum_window = &shared_periodic_hann(hn);
    hum_window_power = window_power(*hum_window, hn);
    const double hum_top_hz = 60.0 * cfg.hum_harmonics + 60.0;
    hum_psd.assign(std::min(hn / 2 + 1, size_t(std::ceil(hum_top_hz * double(hn) / fs)) + 1), 0.0);
    hum_buf.reserve(hn);
  }

  // ---- streaming ---------------------------------------------------------------------

  // Block by block, each kind of bookkeeping in its own loop over the block (the same
  // arithmetic, in the same order, as one sample at a time): the totals and the K-weighting in
  // one tight loop, clipping only where a sample reaches the clip level, near-zero runs by
  // scanning for their edges, dropout contexts over index ranges.
  void push(std::span<const float> in) {
    if (finished) throw Error("quality analysis: push() after finish(); start a new QualityAnalyzer");
    scratch.assign(in.begin(), in.end());
    for (float& v : scratch)
      if (!std::isfinite(v)) v = 0.0f;
    if (scratch.empty()) return;
    const int64_t n0 = n;
    const float block_peak = totals_and_loudness();
    if (clip_run_len > 0 || block_peak >= clip_thr) clipping(n0);
    zero_runs(n0);
    dropout_contexts(n0);
    remember(n0);
    n = n0 + int64_t(scratch.size());
    feed_frames();
    feed_hum();
  }

  // Peak, DC, power and the K-weighted 100 ms sub-blocks; returns the block's peak.
  float totals_and_loudness() {
    float block_peak = 0;
    // Locals, so that the filter states and sums live in registers rather than in *this.
    double s = sum, sq = sumsq, e = sub_energy, total = kw_total;
    int64_t count = sub_count;
    Biquad k1 = kw1, k2 = kw2;
    for (const float x : scratch) {
      const double xd = x;
      block_peak = std::max(block_peak, std::fabs(x));
      s += xd;
      sq += xd * xd;
      const double k = k2.process(k1.process(xd));
      e += k * k;
      total += k * k;
      if (++count == subblock_len) {
        subblocks.push_back(e / double(subblock_len));
        e = 0;
        count = 0;
      }
    }
    sum = s, sumsq = sq, sub_energy = e, kw_total = total, sub_count = count;
    kw1 = k1, kw2 = k2;
    peak = std::max(peak, double(block_peak));
    return block_peak;
  }

  void clipping(int64_t n0) {
    for (size_t i = 0; i < scratch.size(); ++i) {
      if (std::fabs(scratch[i]) >= clip_thr) {
        if (clip_run_len == 0) clip_run_start = n0 + int64_t(i);
        ++clip_run_len;
      } else if (clip_run_len > 0) {
        end_clip_run();
      }
    }
  }

  // Near-zero runs: only their edges do anything, so scan from edge to edge.
  void zero_runs(int64_t n0) {
    const size_t m = scratch.size();
    size_t i = 0;
    while (i < m) {
      if (zrun_len == 0) {  // find the next near-zero sample
        while (i < m && std::fabs(scratch[i]) > silence_thr) ++i;
        if (i == m) break;
        zrun_start = n0 + int64_t(i);
      }
      // Extend the open run as far as this block goes.
      const size_t from = i;
      while (i < m && std::fabs(scratch[i]) <= silence_thr) ++i;
      const int64_t before = zrun_len;
      zrun_len += int64_t(i - from);
      // The moment it reached dropout_min samples: is there audio before it?
      if (before < dropout_min && zrun_len >= dropout_min)
        zrun_pre_ok = context_before_ok(zrun_start + dropout_min - 1, n0);
      if (i < m) end_zero_run(n0 + int64_t(i));  // sample i ends the run
    }
  }

  // Sample `i` (global index): from this block (starting at n0) or, before it, from the ring.
  float sample_at(int64_t i, int64_t n0) const {
    return i >= n0 ? scratch[size_t(i - n0)] : ring[size_t(i % int64_t(ring.size()))];
  }

  // At the moment a zero run reaches dropout_min samples (at sample `at`), are the dropout_ctx
  // samples before the run loud enough to call a gap in them a dropout?
  bool context_before_ok(int64_t at, int64_t n0) const {
    const int64_t first = at - dropout_min + 1 - dropout_ctx;
    if (first < 0) return false;
    double e = 0;
    for (int64_t i = first; i < first + dropout_ctx; ++i) {
      const double v = sample_at(i, n0);
      e += v * v;
    }
    return e / double(dropout_ctx) >= dropout_ctx_ms;
  }

  // Dropout candidates collect the power of the dropout_ctx samples after their gap.
  void dropout_contexts(int64_t n0) {
    const int64_t n1 = n0 + int64_t(scratch.size());
    for (auto& c : pending) {
      const int64_t a = std::max(n0, c.post_from + c.post_count), b = std::min(n1, c.post_from + dropout_ctx);
      for (int64_t i = a; i < b; ++i) {
        const double xd = scratch[size_t(i - n0)];
        c.post_sum += xd * xd;
        ++c.post_count;
      }
    }
    while (!pending.empty() && pending.front().post_count == dropout_ctx) {
      const auto c = pending.front();
      pending.pop_front();
      if (c.post_sum / double(dropout_ctx) >= dropout_ctx_ms) add_dropout(c.start, c.end);
    }
  }

  // The last ring.size() samples, for the context before a later gap.
  void remember(int64_t n0) {
    const size_t r = ring.size(), m = scratch.size(), k = std::min(r, m);
    size_t pos = size_t((n0 + int64_t(m - k)) % int64_t(r));
    for (size_t i = m - k; i < m; ++i) {
      ring[pos] = scratch[i];
      if (++pos == r) pos = 0;
    }
  }

  void end_zero_run(int64_t end) {
    if (zrun_len >= silence_min) {
      ++silence_count;
      silence_total += zrun_len;
      if (int(silences.size()) < cfg.max_regions)
        silences.push_back({double(zrun_start) / fs, double(end) / fs, zrun_len});
    } else if (zrun_len >= dropout_min && zrun_pre_ok) {
      pending.push_back({zrun_start, end, end + 1});
    }
    zrun_len = 0;
    zrun_pre_ok = false;
  }

  void add_dropout(int64_t start, int64_t end) {
    ++dropout_count;
    if (int(dropouts.size()) < cfg.max_regions)
      dropouts.push_back({double(start) / fs, double(end) / fs, end - start});
  }

  void end_clip_run() {
    if (clip_run_len >= cfg.clip_min_run) {
      clipped_samples += clip_run_len;
      const int64_t end = clip_run_start + clip_run_len;
      if (clip_region_open && clip_run_start - clip_region_end <= clip_gap) {
        clip_region_end = end;
        clip_region_count += clip_run_len;
      } else {
        close_clip_region();
        clip_region_open = true;
        clip_region_start = clip_run_start;
        clip_region_end = end;
        clip_region_count = clip_run_len;
      }
    }
    clip_run_len = 0;
  }

  void close_clip_region() {
    if (!clip_region_open) return;
    ++clip_regions_total;
    if (int(clip_regions.size()) < cfg.max_regions)
      clip_regions.push_back({double(clip_region_start) / fs, double(clip_region_end) / fs, clip_region_count});
    clip_region_open = false;
  }

  void feed_frames() {
    size_t i = 0;
    while (i < scratch.size()) {
      const size_t take = std::min(scratch.size() - i, size_t(frame_len) - frame.size());
      frame.insert(frame.end(), scratch.begin() + std::ptrdiff_t(i), scratch.begin() + std::ptrdiff_t(i + take));
      i += take;
      if (frame.size() == size_t(frame_len)) {
        end_frame(true);
        frame.clear();
      }
    }
  }

  void end_frame(bool complete) {
    double e = 0;
    float mx = 0;
    for (float v : frame) {
      e += double(v) * v;
      mx = std::max(mx, std::fabs(v));
    }
    const double level = power_db(e / double(frame.size()));
    const bool silent = mx <= silence_thr;
    frame_levels.push_back(float(level));
    frame_silent.push_back(silent ? 1 : 0);
    if (complete && !silent && !bands.empty()) add_colour_frame(level);
  }

  void add_colour_frame(double level) {
    const double mean = std::accumulate(frame.begin(), frame.end(), 0.0) / double(frame.size());
    float* t = colour_fft->time();
    std::fill(t, t + colour_fft->size(), 0.0f);
    for (size_t i = 0; i < frame.size(); ++i) t[i] = float((frame[i] - mean) * (*colour_window)[i]);
    colour_fft->forward();
    const auto* X = colour_fft->spectrum();
    const int b = std::clamp(int(std::floor(level - kBucketMinDb)), 0, kBuckets - 1);
    double* acc = &bucket_bands[size_t(b) * bands.size()];
    for (size_t j = 0; j < bands.size(); ++j) {
      double p = 0;
      for (size_t k = bands[j].lo; k < bands[j].hi; ++k) p += std::norm(X[k]);
      acc[j] += p / double(bands[j].hi - bands[j].lo);
    }
    ++bucket_frames[size_t(b)];
  }

  void feed_hum() {
    const size_t hn = hum_fft->size();
    size_t i = 0;
    while (i < scratch.size()) {
      const size_t take = std::min(scratch.size() - i, hn - hum_buf.size());
      hum_buf.insert(hum_buf.end(), scratch.begin() + std::ptrdiff_t(i), scratch.begin() + std::ptrdiff_t(i + take));
      i += take;
      if (hum_buf.size() == hn) {
        hum_segment(hum_buf.size());
        // No overlap: hum is stationary, and each 1 s FFT is the analysis's largest cost
        // (half overlap doubled the time of the whole quality pass).
        hum_buf.clear();
      }
    }
  }

  // Sum of the squared window's first `len` values.
  static double window_power(const std::vector<float>& win, size_t len) {
    double wpow = 0;
    for (size_t k = 0; k < len; ++k) wpow += double(win[k]) * win[k];
    return wpow;
  }

  // One windowed segment of `len` samples (len < FFT size only for a short input at the end;
  // it is then zero-padded with a window of its own length).
  void hum_segment(size_t len) {
    const size_t hn = hum_fft->size();
    const std::vector<float> w = len == hn ? std::vector<float>{} : periodic_hann(len);
    const std::vector<float>& win = len == hn ? *hum_window : w;
    const double wpow = len == hn ? hum_window_power : window_power(win, len);
    // The mean in four interleaved sums (one long chain of dependent additions was a tenth of
    // the quality analysis); it only keeps the DC out of the lowest bins.
    double part[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= len; i += 4)
      for (size_t j = 0; j < 4; ++j) part[j] += hum_buf[i + j];
    for (; i < len; ++i) part[0] += hum_buf[i];
    const float mean = float((part[0] + part[1] + part[2] + part[3]) / double(len));
    float* __restrict t = hum_fft->time();
    const float* __restrict x = hum_buf.data();
    const float* __restrict wk = win.data();
    for (i = 0; i < len; ++i) t[i] = (x[i] - mean) * wk[i];
    std::fill(t + len, t + hn, 0.0f);
    hum_fft->forward();
    const auto* X = hum_fft->spectrum();
    // Scaled so that the one-sided bins sum to the mean square of the segment.
    const double scale = 2.0 / (double(hn) * wpow);
    for (size_t k = 0; k < hum_psd.size(); ++k) hum_psd[k] += std::norm(X[k]) * scale;
    ++hum_segments;
  }

  // ---- end of stream -----------------------------------------------------------------

  QualityReport finish() {
    if (finished) throw Error("quality analysis: finish() called twice; start a new QualityAnalyzer");
    finished = true;
    QualityReport r;
    r.sample_rate = fs;
    r.samples = n;
    r.duration_s = double(n) / fs;

    if (clip_run_len > 0) end_clip_run();
    close_clip_region();
    if (zrun_len > 0) end_zero_run(n);
    pending.clear();  // a gap at the very end has no audio after it: not a dropout
    if (frame.size() * 2 >= size_t(frame_len)) end_frame(false);
    if (hum_segments == 0 && hum_buf.size() >= size_t(fs / 4)) hum_segment(hum_buf.size());

    if (n > 0) {
      r.peak_dbfs = amplitude_db(peak);
      r.rms_dbfs = power_db(sumsq / double(n));
      r.dc_offset = sum / double(n);
    }
    r.loudness_lufs = integrated_loudness();

    r.clipped_samples = clipped_samples;
    r.clipped_region_count = clip_regions_total;
    r.clipped_regions = clip_regions;
    r.silence_s = double(silence_total) / fs;
    r.silence_count = silence_count;
    r.silences = silences;
    r.dropout_count = dropout_count;
    r.dropouts = dropouts;

    std::vector<float> active;
    for (size_t i = 0; i < frame_levels.size(); ++i)
      if (!frame_silent[i]) active.push_back(frame_levels[i]);
    if (!active.empty()) {
      r.noise_floor_dbfs = percentile(active, cfg.noise_floor_percentile);
      r.signal_level_dbfs = percentile(active, cfg.signal_percentile);
      r.snr_db = r.signal_level_dbfs - r.noise_floor_dbfs;
      if (r.snr_db >= cfg.pause_min_snr_db) find_long_pauses(r);
    }
    noise_colour(r);
    hum(r);
    make_anomalies(r);
    return r;
  }

  double integrated_loudness() const {
    std::vector<double> blocks;
    if (subblocks.size() >= 4) {
      for (size_t j = 0; j + 4 <= subblocks.size(); ++j)
        blocks.push_back((subblocks[j] + subblocks[j + 1] + subblocks[j + 2] + subblocks[j + 3]) / 4);
    } else if (n > 0) {
      blocks.push_back(kw_total / double(n));  // shorter than one 400 ms block: use it all
    }
    auto lufs = [](double z) { return -0.691 + 10 * std::log10(z); };
    double s = 0;
    size_t c = 0;
    for (double z : blocks)
      if (z > 0 && lufs(z) > -70.0) s += z, ++c;
    if (c == 0) return kUnmeasurableDb;
    const double relative_gate = lufs(s / double(c)) - 10.0;
    s = 0;
    c = 0;
    for (double z : blocks)
      if (z > 0 && lufs(z) > -70.0 && lufs(z) > relative_gate) s += z, ++c;
    return c == 0 ? kUnmeasurableDb : std::max(kUnmeasurableDb, lufs(s / double(c)));
  }

  void find_long_pauses(QualityReport& r) const {
    const double limit = r.noise_floor_dbfs + cfg.pause_margin_db;
    const auto bridge = static_cast<size_t>(std::llround(cfg.pause_bridge_s / cfg.frame_s));
    const double frame_dur = double(frame_len) / fs;
    bool open = false;
    size_t ps = 0, pe = 0;
    auto close = [&]() {
      if (!open) return;
      const double start = double(ps) * frame_dur, end = std::min(double(pe) * frame_dur, r.duration_s);
      if (end - start >= cfg.long_pause_min_s - 1e-9) {
        ++r.long_pause_count;
        if (int(r.long_pauses.size()) < cfg.max_regions)
          r.long_pauses.push_back({start, end, std::llround((end - start) * fs)});
      }
      open = false;
    };
    for (size_t i = 0; i < frame_levels.size(); ++i) {
      const bool quiet = !frame_silent[i] && frame_levels[i] <= limit;
      if (!quiet) continue;
      if (open && i - pe <= bridge) {
        pe = i + 1;
      } else {
        close();
        open = true;
        ps = i;
        pe = i + 1;
      }
    }
    close();
  }

  void noise_colour(QualityReport& r) const {
    const int64_t total = std::accumulate(bucket_frames.begin(), bucket_frames.end(), int64_t{0});
    // Fewer than 10 frames (0.5 s) of sound: too little to say anything about the noise.
    if (total < 10 || bands.size() < 5) return;
    const auto want = std::max<int64_t>(10, std::llround(cfg.colour_quiet_fraction * double(total)));
    std::vector<double> acc(bands.size(), 0.0);
    int64_t got = 0;
    for (int b = 0; b < kBuckets && got < want; ++b) {
      if (bucket_frames[size_t(b)] == 0) continue;
      for (size_t j = 0; j < bands.size(); ++j) acc[j] += bucket_bands[size_t(b) * bands.size() + j];
      got += bucket_frames[size_t(b)];
    }
    // Least-squares line through (log2 f, 10 log10 density).
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (size_t j = 0; j < bands.size(); ++j) {
      if (!(acc[j] > 0)) continue;
      const double x = std::log2(bands[j].centre_hz), y = 10 * std::log10(acc[j]);
      sx += x, sy += y, sxx += x * x, sxy += x * y, ++m;
    }
    if (m < 5) return;
    const double slope = (m * sxy - sx * sy) / (m * sxx - sx * sx);
    r.noise_slope_db_per_octave = slope;
    r.noise_colour = slope > cfg.colour_blue_above    ? NoiseColour::blue
                     : slope > cfg.colour_white_above ? NoiseColour::white
                     : slope > cfg.colour_pink_above  ? NoiseColour::pink
                                                      : NoiseColour::brown;
  }

  // Per mains family (50 and 60 Hz): for each harmonic, the strongest bin near h*f0, its
  // energy over +-3 bins (the Hann main lobe with margin) and the median bin of its
  // neighbourhood (6 to 25 bins away on both sides) as the background. Harmonics standing
  // 6 dB above their background contribute their excess energy to the hum.
  void hum(QualityReport& r) const {
    if (hum_segments == 0) return;
    const double bin_hz = double(fs) / double(hum_fft->size());
    std::vector<double> p(hum_psd.size());
    for (size_t k = 0; k < p.size(); ++k) p[k] = hum_psd[k] / double(hum_segments);
    const double total = sumsq / double(std::max<int64_t>(n, 1));

    struct Family {
      double energy = 0, prominence = -1e9, freq = 0, best_excess = -1;
    };
    auto analyse = [&](double mains) {
      Family fam;
      for (int h = 1; h <= cfg.hum_harmonics; ++h) {
        const double centre = h * mains;
        const double tol_hz = 1.0 + 0.004 * centre;  // mains drift scales with the harmonic
        const auto lo = static_cast<int64_t>(std::floor((centre - tol_hz) / bin_hz));
        const auto hi = static_cast<int64_t>(std::ceil((centre + tol_hz) / bin_hz));
        if (lo - 25 < 1 || hi + 25 >= int64_t(p.size())) break;
        int64_t kp = lo;
        for (int64_t k = lo; k <= hi; ++k)
          if (p[size_t(k)] > p[size_t(kp)]) kp = k;
        double peak_e = 0;
        for (int64_t k = kp - 3; k <= kp + 3; ++k) peak_e += p[size_t(k)];
        std::vector<double> nb;
        for (int64_t d = 6; d <= 25; ++d) {
          nb.push_back(p[size_t(kp - d)]);
          nb.push_back(p[size_t(kp + d)]);
        }
        std::nth_element(nb.begin(), nb.begin() + std::ptrdiff_t(nb.size() / 2), nb.end());
        const double bg = std::max(nb[nb.size() / 2], 1e-30) * 7;
        const double prominence = 10 * std::log10(std::max(peak_e, 1e-30) / bg);
        fam.prominence = std::max(fam.prominence, prominence);
        if (prominence < 6.0) continue;
        const double excess = peak_e - bg;
        fam.energy += excess;
        if (excess > fam.best_excess) {
          fam.best_excess = excess;
          // Parabolic interpolation of the log spectrum around the peak bin.
          const double a = std::log(p[size_t(kp - 1)] + 1e-30), b = std::log(p[size_t(kp)] + 1e-30),
                       c = std::log(p[size_t(kp + 1)] + 1e-30);
          const double den = a - 2 * b + c;
          const double delta = den < 0 ? std::clamp(0.5 * (a - c) / den, -0.5, 0.5) : 0.0;
          fam.freq = (double(kp) + delta) * bin_hz / h;
        }
      }
      return fam;
    };
    const Family f50 = analyse(50.0), f60 = analyse(60.0);
    const Family& f = f60.energy > f50.energy ? f60 : f50;
    r.hum_prominence_db = std::max(f.prominence, 0.0);
    if (f.energy > 0) {
      r.hum_frequency_hz = f.freq;
      r.hum_level_dbfs = power_db(f.energy);
      r.hum_ratio_db = total > 0 ? power_db(f.energy / total) : kUnmeasurableDb;
    }
    r.hum_detected = f.energy > 0 && f.prominence >= cfg.hum_min_prominence_db &&
                     r.hum_level_dbfs >= cfg.hum_min_level_dbfs;
  }

  void make_anomalies(QualityReport& r) const {
    auto add = [&](AnomalyKind k, Severity s, double a, double b, std::string msg) {
      r.anomalies.push_back({k, s, a, b, std::move(msg)});
    };
    const double dur = r.duration_s;
    if (n > 0 && (r.peak_dbfs < cfg.low_level_peak_dbfs || r.loudness_lufs < cfg.low_level_lufs)) {
      const std::string loud =
          r.loudness_lufs <= kUnmeasurableDb ? "not measurable" : fmt::format("{:.1f} LUFS", r.loudness_lufs);
      add(AnomalyKind::low_level, Severity::warning, 0, dur,
          fmt::format("Low level: peak {:.1f} dBFS, loudness {}; the recording is very quiet (normalise it or "
                      "check the input gain)",
                      r.peak_dbfs, loud));
    }
    if (r.clipped_samples > 0) {
      const Severity s = double(r.clipped_samples) >= cfg.clip_error_fraction * double(n) ? Severity::error
                                                                                           : Severity::warning;
      for (const auto& reg : r.clipped_regions)
        add(AnomalyKind::clipping, s, reg.start_s, reg.end_s,
            reg.end_s - reg.start_s < 0.1
                ? fmt::format("Clipping: {} samples at full scale at {:.3f} s", grouped(reg.samples), reg.start_s)
                : fmt::format("Clipping: {} samples at full scale between {:.1f} s and {:.1f} s",
                              grouped(reg.samples), reg.start_s, reg.end_s));
      if (r.clipped_region_count > int64_t(r.clipped_regions.size())) {
        const int64_t listed = std::accumulate(r.clipped_regions.begin(), r.clipped_regions.end(), int64_t{0},
                                               [](int64_t a, const TimeRegion& t) { return a + t.samples; });
        add(AnomalyKind::clipping, s, r.clipped_regions.empty() ? 0 : r.clipped_regions.back().end_s, dur,
            fmt::format("Clipping: {} more regions with {} samples at full scale (not listed)",
                        grouped(r.clipped_region_count - int64_t(r.clipped_regions.size())),
                        grouped(r.clipped_samples - listed)));
      }
    }
    if (n > 0 && std::fabs(r.dc_offset) >= cfg.dc_offset_max)
      add(AnomalyKind::dc_offset, Severity::warning, 0, dur,
          fmt::format("DC offset: the mean sample value is {:.4f} ({:.1f} dBFS); a high-pass filter removes it",
                      r.dc_offset, amplitude_db(std::fabs(r.dc_offset))));
    for (const auto& reg : r.silences)
      add(AnomalyKind::silence, Severity::warning, reg.start_s, reg.end_s,
          fmt::format("Digital silence: {:.1f} s of zeros between {:.1f} s and {:.1f} s", reg.end_s - reg.start_s,
                      reg.start_s, reg.end_s));
    if (r.silence_count > int64_t(r.silences.size()))
      add(AnomalyKind::silence, Severity::warning, r.silences.empty() ? 0 : r.silences.back().end_s, dur,
          fmt::format("Digital silence: {} more stretches (not listed); {:.1f} s of silence in all",
                      grouped(r.silence_count - int64_t(r.silences.size())), r.silence_s));
    for (const auto& reg : r.long_pauses)
      add(AnomalyKind::long_pause, Severity::info, reg.start_s, reg.end_s,
          fmt::format("Long pause: {:.1f} s of background only (within {:.0f} dB of the {:.1f} dBFS noise floor) "
                      "between {:.1f} s and {:.1f} s",
                      reg.end_s - reg.start_s, cfg.pause_margin_db, r.noise_floor_dbfs, reg.start_s, reg.end_s));
    if (r.long_pause_count > int64_t(r.long_pauses.size()))
      add(AnomalyKind::long_pause, Severity::info, r.long_pauses.empty() ? 0 : r.long_pauses.back().end_s, dur,
          fmt::format("Long pause: {} more pauses (not listed)",
                      grouped(r.long_pause_count - int64_t(r.long_pauses.size()))));
    if (r.noise_floor_dbfs > kUnmeasurableDb && r.snr_db < cfg.heavy_noise_snr_db)
      add(AnomalyKind::heavy_noise, Severity::warning, 0, dur,
          fmt::format("Heavy noise: estimated SNR {:.1f} dB (the loud parts at {:.1f} dBFS stand little above a "
                      "noise floor of {:.1f} dBFS); unless this is steady music or ambience, consider denoising",
                      r.snr_db, r.signal_level_dbfs, r.noise_floor_dbfs));
    if (r.hum_detected)
      add(AnomalyKind::hum, Severity::warning, 0, dur,
          fmt::format("Hum at {:.1f} Hz: {:.1f} dBFS, {:.0f} dB above the neighbouring spectrum", r.hum_frequency_hz,
                      r.hum_level_dbfs, r.hum_prominence_db));
    for (const auto& reg : r.dropouts)
      add(AnomalyKind::dropout, Severity::error, reg.start_s, reg.end_s,
          fmt::format("Dropout: the signal drops to digital zero for {:.0f} ms at {:.3f} s",
                      (reg.end_s - reg.start_s) * 1000, reg.start_s));
    if (r.dropout_count > int64_t(r.dropouts.size()))
      add(AnomalyKind::dropout, Severity::error, r.dropouts.empty() ? 0 : r.dropouts.back().end_s, dur,
          fmt::format("Dropout: {} more dropouts (not listed)",
                      grouped(r.dropout_count - int64_t(r.dropouts.size()))));
    std::stable_sort(r.anomalies.begin(), r.anomalies.end(),
                     [](const Anomaly& a, const Anomaly& b) { return a.start_s < b.start_s; });
  }
};

QualityAnalyzer::QualityAnalyzer(QualityConfig config, int sample_rate)
    : impl_(std::make_unique<Impl>(std::move(config), sample_rate)) {}
QualityAnalyzer::~QualityAnalyzer() = default;
QualityAnalyzer::QualityAnalyzer(QualityAnalyzer&&) noexcept = default;
QualityAnalyzer& QualityAnalyzer::operator=(QualityAnalyzer&&) noexcept = default;

void QualityAnalyzer::push(std::span<const float> samples) { impl_->push(samples); }
QualityReport QualityAnalyzer::finish() { return impl_->finish(); }

QualityReport analyze(std::span<const float> samples, const QualityConfig& config, int sample_rate) {
  QualityAnalyzer qa(config, sample_rate);
  // Blocks of one second keep the scratch copy small for long buffers.
  for (size_t i = 0; i < samples.size(); i += size_t(sample_rate))
    qa.push(samples.subspan(i, std::min(samples.size() - i, size_t(sample_rate))));
  return qa.finish();
}

nlohmann::json to_json(const QualityReport& r) {
  using nlohmann::json;
  auto regions = [](const std::vector<TimeRegion>& v) {
    json a = json::array();
    for (const auto& t : v) a.push_back({{"start_s", t.start_s}, {"end_s", t.end_s}, {"samples", t.samples}});
    return a;
  };
  json anomalies = json::array();
  for (const auto& a : r.anomalies)
    anomalies.push_back({{"kind", to_string(a.kind)},
                         {"severity", to_string(a.severity)},
                         {"start_s", a.start_s},
                         {"end_s", a.end_s},
                         {"message", a.message}});
  return json{
      {"sample_rate", r.sample_rate},
      {"samples", r.samples},
      {"duration_s", r.duration_s},
      {"peak_dbfs", r.peak_dbfs},
      {"rms_dbfs", r.rms_dbfs},
      {"loudness_lufs", r.loudness_lufs},
      {"dc_offset", r.dc_offset},
      {"clipping",
       {{"samples", r.clipped_samples}, {"regions", r.clipped_region_count}, {"listed", regions(r.clipped_regions)}}},
      {"silence", {{"total_s", r.silence_s}, {"regions", r.silence_count}, {"listed", regions(r.silences)}}},
      {"dropouts", {{"count", r.dropout_count}, {"listed", regions(r.dropouts)}}},
      {"noise_floor_dbfs", r.noise_floor_dbfs},
      {"signal_level_dbfs", r.signal_level_dbfs},
      {"snr_db", r.snr_db},
      {"long_pauses", {{"count", r.long_pause_count}, {"listed", regions(r.long_pauses)}}},
      {"noise_colour", {{"class", to_string(r.noise_colour)}, {"slope_db_per_octave", r.noise_slope_db_per_octave}}},
      {"hum",
       {{"detected", r.hum_detected},
        {"frequency_hz", r.hum_frequency_hz},
        {"level_dbfs", r.hum_level_dbfs},
        {"prominence_db", r.hum_prominence_db},
        {"ratio_db", r.hum_ratio_db}}},
      {"anomalies", anomalies},
  };
}

std::string to_markdown(const QualityReport& r, const std::string& title) {
  auto db = [](double v, const char* unit) {
    return v <= kUnmeasurableDb ? std::string("not measurable") : fmt::format("{:.1f} {}", v, unit);
  };
  std::string s = fmt::format("## {}\n\n| Measure | Value |\n|---|---|\n", title);
  auto row = [&](const std::string& k, const std::string& v) { s += fmt::format("| {} | {} |\n", k, v); };
  row("Duration", fmt::format("{:.2f} s ({} samples at {} Hz)", r.duration_s, grouped(r.samples), r.sample_rate));
  row("Peak", db(r.peak_dbfs, "dBFS"));
  row("RMS", db(r.rms_dbfs, "dBFS"));
  row("Loudness", db(r.loudness_lufs, "LUFS"));
  row("DC offset", fmt::format("{:.5f}", r.dc_offset));
  row("Noise floor", db(r.noise_floor_dbfs, "dBFS"));
  row("SNR estimate", r.noise_floor_dbfs <= kUnmeasurableDb ? "not measurable" : fmt::format("{:.1f} dB", r.snr_db));
  row("Noise colour", r.noise_colour == NoiseColour::unknown
                          ? std::string("unknown")
                          : fmt::format("{} ({:+.1f} dB/octave)", to_string(r.noise_colour),
                                        r.noise_slope_db_per_octave));
  row("Clipped samples", fmt::format("{} in {} regions", grouped(r.clipped_samples), grouped(r.clipped_region_count)));
  row("Digital silence", fmt::format("{:.1f} s in {} stretches", r.silence_s, grouped(r.silence_count)));
  row("Dropouts", grouped(r.dropout_count));
  row("Long pauses", grouped(r.long_pause_count));
  row("Hum", r.hum_detected ? fmt::format("{:.1f} Hz at {:.1f} dBFS", r.hum_frequency_hz, r.hum_level_dbfs)
                            : std::string("none"));
  s += "\n";
  if (r.anomalies.empty()) {
    s += "No anomalies found.\n";
  } else {
    s += fmt::format("Anomalies ({}):\n\n", r.anomalies.size());
    for (const auto& a : r.anomalies)
      s += fmt::format("- **{}** `{}` {:.1f}–{:.1f} s: {}\n", to_string(a.severity), to_string(a.kind), a.start_s,
                       a.end_s, a.message);
  }
  return s;
}

}  // namespace earmark::condition
