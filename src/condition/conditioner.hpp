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

// The configuration structs (DcRemoveConfig ... ConditionConfig) are public: earmark/config.hpp.
using earmark::ConditionConfig;
using earmark::DcRemoveConfig;
using earmark::DenoiseConfig;
using earmark::HighpassConfig;
using earmark::NormalizeConfig;

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

  // Normalisation with no filter or denoiser before it decides its gain from analyze() of the
  // first normalize.analysis_s seconds, or of the whole input when that is shorter. A caller
  // that measures the whole input anyway (a QualityAnalyzer with the default settings fed
  // exactly the samples given to process() so far plus those it gives before flush(),
  // `total_samples` in all) can hand its report over before they are given, saving the second
  // analysis; the output is the same. Returns false, changing nothing, where that does not
  // apply (other steps on, the input longer than analysis_s, the gain already decided).
  bool use_whole_input_analysis(const QualityReport& report, size_t total_samples);
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
