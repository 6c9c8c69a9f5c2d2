// Conditioning: optional clean-up of the decoded audio before features are computed.
//
// Steps, in this order, each off by default:
//   dc_remove  one-pole high-pass a few Hz up (removes a DC offset, nothing audible)
//   highpass   2nd-order Butterworth high-pass (rumble, handling noise, wind)
//   denoise    STFT spectral gating for stationary broadband noise (hiss, fan, air)
//   normalize  one gain for the whole stream: to a peak or loudness target, with guards
//
//   Conditioner c(cfg);                          // streams, bounded memory
//   while (reader.read(in, 32000)) { c.process(in, out); in.clear(); }
//   c.flush(out);                                // out.size() == total input size
//
// Peak and loudness normalisation need to know the whole file. Three ways to get the gain:
//   - condition_buffer(): in memory, two passes, exact;
//   - set_normalization_gain(normalization_gain(cfg.normalize, report)) with a QualityReport
//     of a first pass (the pipeline's analysis pass): exact, streaming, no extra latency (the
//     report describes the input before the filters, so peaks the filters change are off by
//     that much);
//   - neither: the Conditioner measures the first normalize.analysis_s seconds of its own
//     filtered output and applies that gain to everything. That delays output by the window
//     and misjudges files whose loud or quiet parts come later (a later peak can then exceed
//     the ceiling; nothing is clipped or limited here).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "condition/quality.hpp"
#include "earmark/earmark.hpp"

namespace earmark::condition {

struct DcRemoveConfig {
  bool enabled = false;
  double cutoff_hz = 5.0;  // -3 dB point; 1 to 40 Hz
};

struct HighpassConfig {
  bool enabled = false;
  double cutoff_hz = 80.0;  // -3 dB point of the Butterworth response; 10 to 2000 Hz
};

struct NormalizeConfig {
  std::string mode = "off";           // "off" | "peak" | "loudness"
  double peak_target_dbfs = -1.0;     // peak mode: sample peak after the gain
  double loudness_target_lufs = -23.0;  // loudness mode: BS.1770 integrated loudness after the gain
  // Never amplify by more than this.
  double max_gain_db = 20.0;
  // Never amplify the noise floor (QualityReport::noise_floor_dbfs) above this.
  double max_noise_floor_dbfs = -50.0;
  // Loudness mode: the gain is lowered so that the sample peak stays at or below this.
  double peak_ceiling_dbfs = -1.0;
  // Streaming without a given gain: length of the leading window the gain is measured on.
  double analysis_s = 10.0;
};

struct DenoiseConfig {
  bool enabled = false;
  // STFT: sqrt-Hann analysis and synthesis windows; fft_size / hop must be an integer >= 2
  // (overlap-add is then exact: with unit gains the output equals the input).
  int fft_size = 1024;
  int hop = 256;
  // A frame's level is the mean over its bins of 10 log10(power).
  // First noise profile: per-bin mean power of the quietest quiet_fraction of the frames in
  // the first noise_init_s seconds (adds that much latency; if those are all digital silence
  // it waits up to twice as long, then passes them through and tries again).
  double noise_init_s = 2.0;
  double quiet_fraction = 0.15;
  // Then the profile follows the noise: frames whose level is within update_gate_db of the
  // lowest frame level of the last update_window_s seconds count as noise only and are
  // averaged in with time constant update_time_s.
  double update_window_s = 5.0;
  double update_gate_db = 3.0;
  double update_time_s = 2.0;
  // Gain rule: Wiener gain xi/(1+xi) with the a-priori SNR xi from the decision-directed
  // estimate (weight dd_alpha on the previous frame's clean estimate: the main defence
  // against isolated spectral peaks, "musical noise"), against the noise profile times
  // over_subtraction; never below gain_floor_db (keeps some natural background instead of
  // "underwater" artefacts). Each bin's gain may then rise at once but falls with time
  // constant gain_release_s (0: off), so that sounds are not chopped and the residual noise
  // does not flicker.
  double over_subtraction = 1.5;
  double dd_alpha = 0.98;
  double gain_floor_db = -15.0;
  double gain_release_s = 0.05;
};

struct ConditionConfig {
  DcRemoveConfig dc_remove;
  HighpassConfig highpass;
  DenoiseConfig denoise;
  NormalizeConfig normalize;

  bool any_enabled() const;
  // Throws earmark::Error naming the key ("condition.denoise.hop") and what to do.
  void validate() const;
  // YAML-style listing of every field, for logs and reports.
  std::string to_string() const;
};

// The normalisation gain for audio described by `report`, with the reason it was limited.
struct GainDecision {
  double gain_db = 0;    // what to apply
  double wanted_db = 0;  // what the target alone asked for
  std::string limited_by;  // "" or the NormalizeConfig field that capped the gain
};
GainDecision normalization_gain(const NormalizeConfig& config, const QualityReport& report);

class Conditioner {
 public:
  explicit Conditioner(ConditionConfig config, int sample_rate = kSampleRate);
  ~Conditioner();
  Conditioner(Conditioner&&) noexcept;
  Conditioner& operator=(Conditioner&&) noexcept;

  // Fixes the normalisation gain instead of measuring a leading window. Only before the
  // first process(); ignored when normalisation is off.
  void set_normalization_gain(double gain_db);

  // Appends to `out` the samples that are ready (fewer than given while the denoiser or the
  // normaliser fills its window). Processing is sample-exact whatever the block sizes.
  void process(std::span<const float> in, std::vector<float>& out);
  // Appends the rest. Over the whole stream exactly as many samples come out as went in.
  // The Conditioner must not be used afterwards.
  void flush(std::vector<float>& out);

  // Upper bound of the samples held back at any time (the memory bound as well).
  size_t max_latency_samples() const;
  // The normalisation gain once known (normalisation on), in dB.
  std::optional<GainDecision> normalization() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// In-memory, two passes: filters, then the exact normalisation gain of the filtered audio.
std::vector<float> condition_buffer(std::span<const float> in, const ConditionConfig& config,
                                    int sample_rate = kSampleRate, GainDecision* gain = nullptr);

}  // namespace earmark::condition
