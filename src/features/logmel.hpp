// features: the log-mel front end of the EfficientAT models (upstream AugmentMelSTFT in
// inference mode), streaming.
//
//   32 kHz mono -> pre-emphasis y[n] = x[n+1] - 0.97 x[n] (one sample shorter)
//   -> STFT, n_fft 1024, hop 320, symmetric Hann of 800 centred in the frame,
//      centre=True with reflect padding (frame t is centred on y[320 t])
//   -> power -> 128 Kaldi mel bands 0..15 kHz (+ a zero weight for the Nyquist bin)
//   -> log(mel + 1e-5) -> (x + 4.5) / 5
//
// A signal of N samples gives 1 + (N - 1) / 320 frames (10 s -> 1000).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

namespace earmark::features {

inline constexpr int kFftSize = 1024;
inline constexpr int kWinLength = 800;
inline constexpr int kHopLength = 320;
inline constexpr int kNumMels = 128;
inline constexpr int kNumBins = kFftSize / 2 + 1;
inline constexpr double kPreemphasis = 0.97;
inline constexpr double kFmin = 0.0, kFmax = 15000.0;
// The normalised log-mel value of digital silence, (log(1e-5) + 4.5) / 5: what padding with
// silence looks like to the network.
float silence_value();

// Kaldi-style triangular mel filters (as torchaudio.compliance.kaldi.get_mel_banks with
// vtln_warp_factor 1), num_mels x (n_fft/2 + 1), row-major, last column (Nyquist) zero.
std::vector<double> kaldi_mel_banks(int num_mels, int n_fft, double sample_rate, double fmin, double fmax);

// Symmetric ("periodic=False") Hann window.
std::vector<double> hann_symmetric(int length);

// Number of frames for a signal of `samples` samples (0 for an empty signal).
size_t frames_for(size_t samples);

// Streaming front end: push samples in blocks of any size, call finish() at the end; frames are
// delivered in order, frame-major (each frame = 128 floats). The output is identical to running
// the whole signal at once. Signals shorter than 402 samples cannot be reflect-padded the way the
// reference does; they are zero-extended first (documented deviation for < 13 ms of audio).
class LogMelStream {
 public:
  LogMelStream();
  ~LogMelStream();
  LogMelStream(LogMelStream&&) noexcept;
  LogMelStream& operator=(LogMelStream&&) noexcept;

  void push(std::span<const float> samples);
  void finish();
  // Frames computed and not yet taken.
  size_t available() const;
  // Moves up to `max_frames` frames (frame-major) onto the end of `out`; returns how many.
  size_t take(std::vector<float>& out, size_t max_frames);
  // Frames delivered so far (taken or available).
  size_t frames_produced() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whole signal at once; returns num_mels x frames, mel-major (the reference layout, also the
// network's input layout).
std::vector<float> log_mel(std::span<const float> samples, size_t* frames = nullptr);

// Transposes frame-major (frames x 128) to mel-major (128 x frames).
void to_mel_major(std::span<const float> frame_major, size_t frames, float* out);

}  // namespace earmark::features
