#include "condition/conditioner.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "condition/denoiser.hpp"
#include "condition/filters.hpp"

namespace earmark::condition {

namespace {

template <typename T>
void require(bool ok, const char* key, T got, const char* what) {
  if (!ok) throw Error(fmt::format("condition.{}: {} (got {}); fix the value in the configuration", key, what, got));
}

}  // namespace

}  // namespace earmark::condition

namespace earmark {

using condition::kUnmeasurableDb;
using condition::require;

bool ConditionConfig::any_enabled() const {
  return dc_remove.enabled || highpass.enabled || denoise.enabled || normalize.mode != "off";
}

void ConditionConfig::validate() const {
  require(dc_remove.cutoff_hz >= 1 && dc_remove.cutoff_hz <= 40, "dc_remove.cutoff_hz", dc_remove.cutoff_hz,
          "must be between 1 and 40 Hz");
  require(highpass.cutoff_hz >= 10 && highpass.cutoff_hz <= 2000, "highpass.cutoff_hz", highpass.cutoff_hz,
          "must be between 10 and 2000 Hz");

  const auto& n = normalize;
  require(n.mode == "off" || n.mode == "peak" || n.mode == "loudness", "normalize.mode", n.mode,
          "must be off, peak or loudness");
  require(n.peak_target_dbfs <= 0 && n.peak_target_dbfs >= -60, "normalize.peak_target_dbfs", n.peak_target_dbfs,
          "must be between -60 and 0 dBFS");
  require(n.loudness_target_lufs <= 0 && n.loudness_target_lufs >= -70, "normalize.loudness_target_lufs",
          n.loudness_target_lufs, "must be between -70 and 0 LUFS");
  require(n.max_gain_db >= 0 && n.max_gain_db <= 80, "normalize.max_gain_db", n.max_gain_db,
          "must be between 0 and 80 dB");
  require(n.max_noise_floor_dbfs <= 0, "normalize.max_noise_floor_dbfs", n.max_noise_floor_dbfs,
          "must be at most 0 dBFS");
  require(n.peak_ceiling_dbfs <= 0, "normalize.peak_ceiling_dbfs", n.peak_ceiling_dbfs, "must be at most 0 dBFS");
  require(n.analysis_s >= 0.5 && n.analysis_s <= 600, "normalize.analysis_s", n.analysis_s,
          "must be between 0.5 and 600 s");

  const auto& d = denoise;
  require(d.fft_size >= 64 && d.fft_size <= 16384 && (d.fft_size & (d.fft_size - 1)) == 0, "denoise.fft_size",
          d.fft_size, "must be a power of two from 64 to 16384");
  require(d.hop >= 1 && d.fft_size % d.hop == 0 && d.fft_size / d.hop >= 2, "denoise.hop", d.hop,
          "must divide fft_size with a quotient of at least 2 (e.g. fft_size/4)");
  require(d.noise_init_s > 0 && d.noise_init_s <= 30, "denoise.noise_init_s", d.noise_init_s,
          "must be in (0, 30] s");
  require(d.quiet_fraction > 0 && d.quiet_fraction <= 1, "denoise.quiet_fraction", d.quiet_fraction,
          "must be in (0, 1]");
  require(d.update_window_s > 0 && d.update_window_s <= 60, "denoise.update_window_s", d.update_window_s,
          "must be in (0, 60] s");
  require(d.update_gate_db >= 0 && d.update_gate_db <= 20, "denoise.update_gate_db", d.update_gate_db,
          "must be between 0 and 20 dB");
  require(d.update_time_s > 0, "denoise.update_time_s", d.update_time_s, "must be positive");
  require(d.over_subtraction >= 0.5 && d.over_subtraction <= 5, "denoise.over_subtraction", d.over_subtraction,
          "must be between 0.5 and 5");
  require(d.dd_alpha >= 0 && d.dd_alpha < 1, "denoise.dd_alpha", d.dd_alpha, "must be in [0, 1)");
  require(d.gain_floor_db <= 0 && d.gain_floor_db >= -60, "denoise.gain_floor_db", d.gain_floor_db,
          "must be between -60 and 0 dB");
  require(d.gain_release_s >= 0 && d.gain_release_s <= 1, "denoise.gain_release_s", d.gain_release_s,
          "must be in [0, 1] s");
}

std::string ConditionConfig::to_string() const {
  auto b = [](bool v) { return v ? "true" : "false"; };
  const auto& n = normalize;
  const auto& d = denoise;
  return fmt::format(
      "dc_remove:\n  enabled: {}\n  cutoff_hz: {}\n"
      "highpass:\n  enabled: {}\n  cutoff_hz: {}\n"
      "denoise:\n  enabled: {}\n  fft_size: {}\n  hop: {}\n  noise_init_s: {}\n  quiet_fraction: {}\n"
      "  update_window_s: {}\n  update_gate_db: {}\n  update_time_s: {}\n  over_subtraction: {}\n"
      "  dd_alpha: {}\n  gain_floor_db: {}\n  gain_release_s: {}\n"
      "normalize:\n  mode: {}\n  peak_target_dbfs: {}\n  loudness_target_lufs: {}\n  max_gain_db: {}\n"
      "  max_noise_floor_dbfs: {}\n  peak_ceiling_dbfs: {}\n  analysis_s: {}\n",
      b(dc_remove.enabled), dc_remove.cutoff_hz, b(highpass.enabled), highpass.cutoff_hz, b(d.enabled), d.fft_size,
      d.hop, d.noise_init_s, d.quiet_fraction, d.update_window_s, d.update_gate_db, d.update_time_s,
      d.over_subtraction, d.dd_alpha, d.gain_floor_db, d.gain_release_s, n.mode, n.peak_target_dbfs,
      n.loudness_target_lufs, n.max_gain_db, n.max_noise_floor_dbfs, n.peak_ceiling_dbfs, n.analysis_s);
}

}  // namespace earmark

namespace earmark::condition {

GainDecision normalization_gain(const NormalizeConfig& c, const QualityReport& r) {
  GainDecision d;
  if (c.mode == "off" || r.peak_dbfs <= kUnmeasurableDb) return d;  // nothing to scale
  if (c.mode == "peak") {
    d.wanted_db = c.peak_target_dbfs - r.peak_dbfs;
  } else {
    // Below the loudness gate (-70 LUFS) the plain RMS stands in for the loudness.
    const double level = r.loudness_lufs > kUnmeasurableDb ? r.loudness_lufs : r.rms_dbfs;
    d.wanted_db = c.loudness_target_lufs - level;
  }
  d.gain_db = d.wanted_db;
  auto cap = [&](double limit, const char* why) {
    if (d.gain_db > limit) {
      d.gain_db = limit;
      d.limited_by = why;
    }
  };
  if (c.mode == "loudness") cap(c.peak_ceiling_dbfs - r.peak_dbfs, "peak_ceiling_dbfs");
  if (d.gain_db > 0) {
    // The guards limit amplification only; they never turn it into attenuation.
    cap(c.max_gain_db, "max_gain_db");
    if (r.noise_floor_dbfs > kUnmeasurableDb)
      cap(std::max(0.0, c.max_noise_floor_dbfs - r.noise_floor_dbfs), "max_noise_floor_dbfs");
  }
  return d;
}

struct Conditioner::Impl {
  ConditionConfig cfg;
  int fs;
  bool flushed = false;
  bool started = false;
  std::optional<DcBlocker> dc;
  std::optional<Biquad> hp;
  std::unique_ptr<Denoiser> dn;
  bool normalize;
  std::optional<GainDecision> gain;
  float gain_lin = 1.0f;
  size_t analysis_len = 0;
  std::vector<float> held;     // filtered audio waiting for the normalisation gain
  std::vector<float> stage;    // scratch

  Impl(ConditionConfig c, int rate) : cfg(std::move(c)), fs(rate) {
    if (rate < 8000 || rate > 384000)
      throw Error(fmt::format("conditioning: sample rate {} Hz is out of range; resample to {} Hz first", rate,
                              kSampleRate));
    cfg.validate();
    if (cfg.highpass.enabled && cfg.highpass.cutoff_hz >= 0.45 * rate)
      throw Error(fmt::format("condition.highpass.cutoff_hz: {} Hz is too close to the Nyquist frequency at {} Hz; "
                              "use a lower cutoff",
                              cfg.highpass.cutoff_hz, rate));
    if (cfg.dc_remove.enabled) dc.emplace(rate, cfg.dc_remove.cutoff_hz);
    if (cfg.highpass.enabled) hp.emplace(butterworth_highpass(rate, cfg.highpass.cutoff_hz));
    if (cfg.denoise.enabled) dn = std::make_unique<Denoiser>(cfg.denoise, rate);
    normalize = cfg.normalize.mode != "off";
    analysis_len = size_t(std::llround(cfg.normalize.analysis_s * rate));
  }

  void set_gain(GainDecision d) {
    gain = std::move(d);
    gain_lin = float(std::pow(10.0, gain->gain_db / 20));
  }

  // Non-finite samples become 0 here: one NaN would otherwise poison the filter state and the
  // noise profile for the rest of the stream.
  void filters(std::span<const float> in, std::vector<float>& out) {
    out.assign(in.begin(), in.end());
    for (float& v : out) {
      double x = std::isfinite(v) ? v : 0.0;
      if (dc) x = dc->process(x);
      if (hp) x = hp->process(x);
      v = float(x);
    }
  }

  // Filtered audio -> gain -> out.
  void normalise(std::span<const float> in, std::vector<float>& out, bool last) {
    if (!normalize) {
      out.insert(out.end(), in.begin(), in.end());
      return;
    }
    size_t i = 0;
    if (!gain) {
      const size_t take = std::min(in.size(), analysis_len - held.size());
      held.insert(held.end(), in.begin(), in.begin() + std::ptrdiff_t(take));
      i = take;
      if (held.size() == analysis_len || last) {
        set_gain(normalization_gain(cfg.normalize, analyze(held, {}, fs)));
        apply(held, out);
        held.clear();
        held.shrink_to_fit();
      }
    }
    if (gain && !held.empty()) {  // decided from an analysis handed over (use_whole_input_analysis)
      apply(held, out);
      held.clear();
      held.shrink_to_fit();
    }
    if (gain) apply(in.subspan(i), out);
  }

  void apply(std::span<const float> in, std::vector<float>& out) const {
    const size_t at = out.size();
    out.resize(at + in.size());
    for (size_t k = 0; k < in.size(); ++k) out[at + k] = in[k] * gain_lin;
  }

  void process(std::span<const float> in, std::vector<float>& out) {
    if (flushed) throw Error("conditioning: process() after flush(); start a new Conditioner");
    started = true;
    if (!cfg.any_enabled()) {
      out.insert(out.end(), in.begin(), in.end());
      return;
    }
    filters(in, stage);
    if (dn) {
      std::vector<float> den;
      dn->process(stage, den);
      stage.swap(den);
    }
    normalise(stage, out, false);
  }

  void flush(std::vector<float>& out) {
    if (flushed) throw Error("conditioning: flush() called twice; start a new Conditioner");
    flushed = true;
    stage.clear();
    if (dn) dn->flush(stage);
    normalise(stage, out, true);
  }
};

Conditioner::Conditioner(ConditionConfig config, int sample_rate)
    : impl_(std::make_unique<Impl>(std::move(config), sample_rate)) {}
Conditioner::~Conditioner() = default;
Conditioner::Conditioner(Conditioner&&) noexcept = default;
Conditioner& Conditioner::operator=(Conditioner&&) noexcept = default;

void Conditioner::set_normalization_gain(double gain_db) {
  if (impl_->started) throw Error("conditioning: set_normalization_gain() after process(); set it first");
  if (!std::isfinite(gain_db) || std::fabs(gain_db) > 120)
    throw Error(fmt::format("conditioning: normalisation gain {} dB is not a usable gain", gain_db));
  if (!impl_->normalize) return;
  GainDecision d;
  d.gain_db = d.wanted_db = gain_db;
  impl_->set_gain(d);
}

void Conditioner::process(std::span<const float> in, std::vector<float>& out) { impl_->process(in, out); }

bool Conditioner::use_whole_input_analysis(const QualityReport& report, size_t total_samples) {
  auto& s = *impl_;
  if (!s.normalize || s.gain || s.dc || s.hp || s.dn || s.flushed || s.fs != kSampleRate) return false;
  if (total_samples > s.analysis_len || total_samples < s.held.size()) return false;
  s.set_gain(normalization_gain(s.cfg.normalize, report));
  return true;
}
void Conditioner::flush(std::vector<float>& out) { impl_->flush(out); }

size_t Conditioner::max_latency_samples() const {
  size_t n = 0;
  if (impl_->dn) n += impl_->dn->max_latency_samples();
  if (impl_->normalize && !impl_->gain) n += impl_->analysis_len;
  return n;
}

std::optional<GainDecision> Conditioner::normalization() const { return impl_->gain; }

std::vector<float> condition_buffer(std::span<const float> in, const ConditionConfig& config, int sample_rate,
                                    GainDecision* gain) {
  ConditionConfig filters_only = config;
  filters_only.normalize.mode = "off";
  config.validate();
  Conditioner c(filters_only, sample_rate);
  std::vector<float> out;
  out.reserve(in.size());
  c.process(in, out);
  c.flush(out);
  if (config.normalize.mode != "off") {
    const GainDecision d = normalization_gain(config.normalize, analyze(out, {}, sample_rate));
    const float g = float(std::pow(10.0, d.gain_db / 20));
    for (float& v : out) v *= g;
    if (gain) *gain = d;
  }
  return out;
}

}  // namespace earmark::condition
