// run: the first half of the pipeline, condition -> log-mel -> network, in one place, so that
// `detect` scores exactly the features `train` fits its heads on.
//
//   FrontHalf fh(config, net, /*keep_embeddings=*/true, /*analyse=*/false);
//   fh.push(samples, /*last=*/true);            // train: one buffer
//   fh.scorer().embeddings();
//
// detect feeds blocks (and may run front() and back() on two threads); with `analyse` it also
// measures the signal quality (on the signal as recorded) and keeps a spectrogram thumbnail and, with
// events.refine, the band envelope that event boundaries are placed on.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "condition/conditioner.hpp"
#include "condition/quality.hpp"
#include "detect/boundaries.hpp"
#include "earmark/config.hpp"
#include "earmark/earmark.hpp"
#include "features/logmel.hpp"
#include "features/thumbnail.hpp"
#include "model/network.hpp"
#include "model/scorer.hpp"

namespace earmark::run {

class FrontHalf {
 public:
  // config: its condition, frames and model.batch settings are used.
  FrontHalf(const Config& config, const model::Network& net, bool keep_embeddings, bool analyse);

  // Condition + log-mel for the next block (`last`: no block follows); appends the mel frames
  // it completes (frame-major, 128 each) to `frames`. Adds to t.condition_s and t.features_s.
  void front(std::span<const float> block, bool last, std::vector<float>& frames, Timings* t = nullptr);
  // The network on frames from front(); `last` as given to the front() call that made them.
  void back(std::span<const float> frames, bool last, Timings* t = nullptr);
  // front() then back().
  void push(std::span<const float> block, bool last, Timings* t = nullptr);

  const model::FrameScorer& scorer() const { return *scorer_; }
  // Frees the network's outputs (logits, embeddings) once they are used: a long file's grid is
  // tens of MB per copy.
  void release_scorer() { scorer_.reset(); }
  // The input's expected length (a container's estimate): the grids are allocated for it once.
  // Capped at 12 hours, so that a header claiming years allocates nothing absurd.
  void expect_seconds(double seconds);
  // Scores in a compact grid instead of logits (before the first block; FrameScorer::keep_scores_only).
  // Rows beyond model.spill_after_s seconds go to a temporary file.
  void keep_scores_only() { scorer_->keep_scores_only(spill_after_s_); }
  ScoreValues take_scores() { return scorer_->take_scores(); }
  // The scaled rows' unscaled scores (see FrameScorer::take_unscaled).
  model::FrameScorer::Unscaled take_unscaled() { return scorer_->take_unscaled(); }
  size_t samples() const { return samples_; }  // given to front() so far
  // After the last block, with `analyse`: the quality report of the signal as recorded, and
  // the thumbnail.
  condition::QualityReport quality();
  Spectrogram thumbnail() const { return thumbnail_.finish(); }
  // With `analyse` and events.refine: the band levels of every 10 ms frame, for event boundaries.
  const detect::BandEnvelope& envelope() const { return envelope_; }
  detect::BandEnvelope take_envelope() { return std::move(envelope_); }

 private:
  features::LogMelStream mel_;
  features::SpectrogramThumbnail thumbnail_;
  detect::BandEnvelope envelope_;
  bool keep_envelope_ = false;
  std::optional<condition::QualityAnalyzer> quality_;
  std::optional<condition::QualityReport> quality_report_;
  std::optional<condition::Conditioner> conditioner_;
  std::optional<model::FrameScorer> scorer_;
  bool analyse_;
  double spill_after_s_;
  size_t samples_ = 0;
  std::vector<float> conditioned_, frames_;
};

}  // namespace earmark::run
