// The denoise step of the Conditioner (see DenoiseConfig for the method and its knobs).
#pragma once

#include <complex>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <vector>

#include "condition/conditioner.hpp"
#include "util/fft.hpp"

namespace earmark::condition {

class Denoiser {
 public:
  Denoiser(const DenoiseConfig& config, int sample_rate);

  // Appends the samples that are ready; flush() appends the rest so that the output is
  // exactly as long as the input.
  void process(std::span<const float> in, std::vector<float>& out);
  void flush(std::vector<float>& out);

  // Samples held back at most: the STFT's fft_size - hop plus the stored frames of the
  // first noise estimate.
  size_t max_latency_samples() const;

  // Per-bin noise power (empty before the first estimate), for tests and diagnostics.
  const std::vector<float>& noise_profile() const { return noise_; }

 private:
  struct Frame {
    std::vector<std::complex<float>> spec;
    double level_db;  // mean over the bins of 10 log10(power)
    bool usable;  // fully inside the real input and not digital silence
  };

  void analyse_frame(size_t offset);  // the frame starting at vbuf_[offset]
  void end_init();
  void synthesise(Frame& f, bool update_profile);
  void emit(std::vector<float>& out);
  void track_minimum(int64_t index, double level_db);

  DenoiseConfig cfg_;
  int fs_;
  size_t n_, hop_, bins_;
  std::vector<float> window_;  // sqrt-Hann, used for analysis and synthesis
  float ola_scale_;
  util::RealFft fft_;

  std::vector<float> vbuf_;  // input not yet fully analysed, after n - hop leading zeros
  std::vector<float> ola_;   // overlap-add accumulator, n samples
  int64_t input_count_ = 0;  // real samples received
  int64_t frame_index_ = 0;  // next frame to analyse (starts at v-index frame_index_ * hop)
  int64_t v_emitted_ = 0;    // v-index of the next OLA sample to leave the accumulator
  int64_t emitted_ = 0;      // real samples output
  std::vector<float> ready_;  // output waiting for emit()

  // First estimate.
  bool initialised_ = false;
  size_t init_frames_, max_stored_;
  size_t usable_stored_ = 0;
  std::deque<Frame> stored_;

  // Profile and its tracking.
  std::vector<float> noise_;
  std::deque<std::pair<int64_t, double>> minimum_;  // sliding minimum of usable frame levels
  int64_t min_window_frames_;
  double update_a_;

  // Gain state.
  std::vector<float> clean_prev_;  // |S|^2 estimate of the previous frame
  std::vector<float> gain_prev_;
  float floor_gain_, release_c_;
  bool first_frame_ = true;
};

}  // namespace earmark::condition
