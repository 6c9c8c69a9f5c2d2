#include "condition/conditioner.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "condition/denoiser.hpp"
#include "condition/filters.hpp"

namespace earmark {

using condition::kUnmeasurableDb;

bool ConditionConfig::any_enabled() const {
  return dc_remove.enabled || highpass.enabled || denoise.enabled || normalize.mode != "off";
}

// ConditionConfig::validate() and to_string() live in src/config.cpp with the other keys'
// table.

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
