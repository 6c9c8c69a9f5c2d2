// detect: event boundaries from the signal.
//
// The network's score grid places an event to a fraction of a second at best (its columns are
// 0.32 s apart, pooling and median filtering smear them). Where a listener puts an onset is
// where the sound rises out of the background, which the 10 ms log-mel frames show directly.
// For each event found on the score grid:
//   1. Its bands: the log-mel frames are summed into `kEnvelopeBands` bands (energy, dB). Around
//      the event (context_s on each side) each band's background level is a low percentile of
//      its frames outside the event; the event's level is a high percentile inside its coarse
//      span. Bands where the event stands out by at least min_contrast_db are the event's bands,
//      each weighted by how much it stands out.
//   2. Its activity: per 10 ms frame, the weighted mean of the bands' levels over their
//      background (dB), a median over 30 ms. The sound is on where this is at least
//      threshold_db, above what the background alone reaches in those bands (the 95th
//      percentile of the context's activity plus flicker_margin_db: rain or a TV bed flickers),
//      and within drop_db of the event's own peak activity (a sound as loud as that is heard
//      down to about that far under its peak, as in the references of `earmark synth`).
//   3. Its extent: runs of activity within search_s of the coarse span, gaps under bridge_s
//      joined, runs under min_run_s dropped; each run that meets the coarse span becomes one
//      event (three barks a second apart come out as three; more than max_pieces, a trot or a
//      ticking clock, stay one), followed past the search window while the sound goes on (at
//      most max_extend_s). An event with no band standing out, or no
//      run meeting its span (a sound the network hears under the background), keeps its coarse
//      boundaries.
// Same-class events that overlap after this are merged.
#pragma once

#include <cstdint>
#include <span>
#include <memory>
#include <vector>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"
#include "util/spill.hpp"

namespace earmark::detect {

inline constexpr int kEnvelopeBands = 16;

// Band levels of the 10 ms log-mel frames, kept for a whole file (16 bands x 2 bytes per frame:
// 11.5 MB per hour; beyond spill_after() frames in a temporary file, util/spill.hpp).
class BandEnvelope {
 public:
  // Frames beyond `frames` go to a temporary file (0: all in memory); before the first push.
  void spill_after(size_t frames) { values_->limit_memory(frames > 0 ? frames * kEnvelopeBands : SIZE_MAX); }
  // Normalised log-mel frames, frame-major (n x 128), in order.
  void push(std::span<const float> frames, size_t n);
  size_t frames() const { return values_->size() / kEnvelopeBands; }
  void reserve_frames(size_t n) { values_->reserve(n * kEnvelopeBands); }
  double hop_s() const { return kHop / double(kSampleRate); }
  float db(size_t frame, int band) const {
    return float(int16_t(values_->get(frame * kEnvelopeBands + size_t(band)))) / 100.0f;
  }

 private:
  // Centi-dB as int16 bit patterns; pages of 2,048 frames (20 s), 256 cached (2 MB) once on disk.
  std::unique_ptr<util::Spill16> values_ = std::make_unique<util::Spill16>(kEnvelopeBands, 2048, 256);
};

struct BoundaryParams {
  double search_s = 1.0;
  double context_s = 4.0;
  double min_contrast_db = 3.0;
  double threshold_db = 3.0;
  double drop_db = 35.0;
  double background_quantile = 0.95;
  double flicker_margin_db = 1.0;
  double bridge_s = 0.25;
  double min_run_s = 0.05;
  double max_extend_s = 10.0;
  // A coarse event split into more pieces than this (a trot, a ticking clock) stays one event.
  int max_pieces = 3;
  static BoundaryParams from(const EventsConfig& cfg);
};

// Events with boundaries from the signal (see above), sorted by onset then label.
std::vector<Event> refine_boundaries(const std::vector<Event>& events, const BandEnvelope& env,
                                     const BoundaryParams& params, double duration_s);

// The scores of the whole detector, for threshold-free evaluation (PSDS) of what it reports:
// the events pipeline (find_events, then refine_boundaries with `env` when cfg.refine) is run
// at `levels - 1` operating points, every on/off threshold scaled by tau / cfg.threshold_on for
// tau = 1/levels ... (levels-1)/levels (so one of them is the configured detector when
// threshold_on is a multiple of 1/levels); a class's score at each `step_s` step is the highest
// tau at which the step lies inside one of its events (0 where none). Same labels as `scores`.
FrameScores detection_scores(const FrameScores& scores, const EventsConfig& cfg, const BandEnvelope* env,
                             double duration_s, int levels = 20, double step_s = 0.02);

}  // namespace earmark::detect
