// model: frame-level scores over audio of any length with bounded memory.
//
// Two methods (FramesConfig::method):
//  * columns (default): the network runs on chunks of a few seconds plus context on each side,
//    and every time column of its last feature map (0.32 s apart) is classified on its own
//    after averaging over frequency and `pool_columns` neighbours. The chunks are short on
//    purpose: the squeeze-excitation layers scale channels by their mean over the whole input,
//    and on 10 s chunks a column holding a loud transient (speech.wav's door slam) comes out
//    with features ~7x the typical size, driving 300+ classes above 0.5; with 3.2 s kept out
//    of 3.84 s the same column gives Door 0.94 and at most 2 classes above 0.5. Chunks
//    are placed so that column g is centred on the middle of grid cell g, i.e. on
//    (g + 0.5) * 0.32 s; outside the file the input is the log-mel of digital silence, which is
//    how the network saw short clips in training (zero-padded to 10 s).
//    With frames.passes = P > 1 the network runs P times, the inputs shifted by 32 / P mel
//    frames, so that pass p's column g is centred on (P g + p + 0.5) * 0.32 / P s; the columns
//    are interleaved into one grid of 0.32 / P s.
//  * windows: the network classifies a window of window_s seconds centred on each grid cell,
//    every hop_s seconds (the classic sliding-window tagger; costs window_s / hop_s passes
//    per window length of audio).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "earmark/config.hpp"
#include "earmark/earmark.hpp"
#include "model/network.hpp"
#include "util/spill.hpp"

namespace earmark::model {

class FrameScorer {
 public:
  // `batch`: chunks (or windows) run through the network together.
  FrameScorer(const Network& net, const FramesConfig& cfg, int batch = 1, bool keep_embeddings = false);

  // Mel frames, frame-major (n x 128), in order.
  void push(std::span<const float> frames, size_t n);
  // All frames pushed; `samples` is the number of audio samples they came from (sets the grid
  // length: ceil(samples / (0.32 s)).
  void finish(size_t samples);

  double hop_s() const;
  int frames() const { return int((scores_.compact() ? scores_.size() : logits_.size()) / size_t(classes_)); }
  int classes() const { return classes_; }
  // frames() x classes() logits (apply a sigmoid for scores).
  const std::vector<float>& logits() const { return logits_; }
  // Allocates the logits (and embeddings) for an input of about this length.
  void reserve_seconds(double seconds);
  // Keep the scores (sigmoid of the logits) in a compact grid (half floats) instead of the
  // logits (call before the first push): a long file's grid at half the size; logits() stays empty.
  // Rows beyond `spill_after_s` seconds of audio go to a temporary file (ScoreValues::spill_beyond;
  // 0: never).
  void keep_scores_only(double spill_after_s = 0);
  // Hands the scores over (frames() is 0 afterwards): a long file's grid is not copied.
  ScoreValues take_scores() { return std::exchange(scores_, ScoreValues::make_compact()); }
  // Rows whose pooled features were scaled down to frames.column_norm_max: the network's
  // scores for them without the scaling (sigmoid in steps of 1/255), in row order. Events are
  // found on the scaled grid; their confidence is the network's own, unscaled peak (a loud,
  // clear sound is more certain than its scaled score says).
  class Unscaled {
   public:
    explicit Unscaled(size_t classes = 0)
        : classes_(classes), scores_(std::make_shared<util::Spill16>((classes + 1) / 2, 512, 1024)) {}
    // Rows beyond `rows` go to a temporary file (util/spill.hpp; pages of 512 rows, 1,024 cached:
    // 1 MB; 0: never). Before the first add.
    void spill_after(size_t rows) { scores_->limit_memory(rows > 0 ? rows * ((classes_ + 1) / 2) : SIZE_MAX); }
    // Row `row` (after the last one added) and its classes() scores.
    void add(long row, const uint8_t* scores);
    size_t size() const { return rows_.size(); }
    bool empty() const { return rows_.empty(); }
    long row(size_t k) const { return rows_[k]; }
    // The first k whose row is at least r (size() if none).
    size_t first_at_or_after(long r) const;
    // Score of class c in the k-th row, 0-255 (255: 1.0).
    uint8_t score(size_t k, size_t c) const;
    size_t classes() const { return classes_; }

   private:
    uint16_t pair(const uint8_t* scores, size_t c) const;  // classes 2c and 2c + 1 of a row
    size_t classes_;
    std::vector<long> rows_;
    std::shared_ptr<util::Spill16> scores_;  // two scores per value, (classes_ + 1) / 2 per row
  };
  Unscaled take_unscaled() { return std::exchange(unscaled_, Unscaled(size_t(classes_))); }
  // frames() x embedding_dim, when asked for (columns method only).
  const std::vector<float>& embeddings() const { return embeddings_; }

 private:
  void run_ready(bool final);
  // Chunks whose kept columns start at grid cells `g0s`, each run once per pass.
  void run_chunks(const std::vector<long>& g0s, int core, int input_columns);
  long chunk_start(long g0, int context) const;  // first mel frame of pass 0's chunk
  int passes() const;
  void run_windows(const std::vector<long>& starts);
  void gather(long start, int length, float* mel_major) const;

  const Network& net_;
  FramesConfig cfg_;
  int batch_;
  bool keep_embeddings_;
  int classes_;
  std::deque<float> mel_;     // frame-major frames [mel_start_, mel_start_ + mel_.size()/128)
  long mel_start_ = 0;
  long mel_total_ = 0;
  long grid_total_ = -1;      // 0.32 s cells, known once finished
  long rows_total_ = -1;      // rows of the (finer, with passes) grid, known once finished
  std::vector<int> pass_offsets_;  // mel frames each pass's chunk is shifted by
  long next_grid_ = 0;        // first grid frame not yet scored
  void append(const std::vector<float>& logits);
  std::vector<float> logits_;
  ScoreValues scores_;  // compact with keep_scores_only: frames() x classes() scores, not logits_
  std::vector<float> embeddings_;
  Unscaled unscaled_;
};

}  // namespace earmark::model
