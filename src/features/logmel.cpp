#include "features/logmel.hpp"

#include "util/fft.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace earmark::features {

namespace {

double mel_scale(double f) { return 1127.0 * std::log(1.0 + f / 700.0); }

// The mel filters as (first bin, weights) per band: each band spans a few dozen bins at most.
struct SparseMel {
  std::vector<int> first;
  std::vector<std::vector<float>> weights;
};
const SparseMel& sparse_mel() {
  static const SparseMel s = [] {
    SparseMel r;
    const auto dense = kaldi_mel_banks(kNumMels, kFftSize, 32000.0, kFmin, kFmax);
    for (int m = 0; m < kNumMels; ++m) {
      int lo = kNumBins, hi = -1;
      for (int k = 0; k < kNumBins; ++k)
        if (dense[size_t(m) * kNumBins + size_t(k)] > 0) lo = std::min(lo, k), hi = std::max(hi, k);
      if (hi < lo) lo = hi = 0;
      r.first.push_back(lo);
      std::vector<float> w;
      for (int k = lo; k <= hi; ++k) w.push_back(float(dense[size_t(m) * kNumBins + size_t(k)]));
      r.weights.push_back(std::move(w));
    }
    return r;
  }();
  return s;
}

const std::vector<float>& window() {
  static const std::vector<float> w = [] {
    const auto d = hann_symmetric(kWinLength);
    return std::vector<float>(d.begin(), d.end());
  }();
  return w;
}

}  // namespace

float silence_value() { return float((std::log(1e-5) + 4.5) / 5.0); }

std::vector<double> hann_symmetric(int length) {
  std::vector<double> w(size_t(std::max(length, 0)));
  if (length == 1) w[0] = 1.0;
  for (int i = 0; length > 1 && i < length; ++i) w[size_t(i)] = 0.5 - 0.5 * std::cos(2.0 * M_PI * i / (length - 1));
  return w;
}

std::vector<double> kaldi_mel_banks(int num_mels, int n_fft, double sample_rate, double fmin, double fmax) {
  const int half = n_fft / 2;
  const int cols = half + 1;
  const double nyquist = sample_rate / 2;
  if (fmax <= 0) fmax += nyquist;
  const double bin_width = sample_rate / n_fft;
  const double mel_lo = mel_scale(fmin), mel_hi = mel_scale(fmax);
  const double delta = (mel_hi - mel_lo) / (num_mels + 1);
  std::vector<double> banks(size_t(num_mels) * size_t(cols), 0.0);
  for (int m = 0; m < num_mels; ++m) {
    const double left = mel_lo + m * delta, center = mel_lo + (m + 1) * delta, right = mel_lo + (m + 2) * delta;
    for (int k = 0; k < half; ++k) {  // the Nyquist column stays zero, as upstream pads it
      const double mel = mel_scale(bin_width * k);
      const double up = (mel - left) / (center - left), down = (right - mel) / (right - center);
      banks[size_t(m) * size_t(cols) + size_t(k)] = std::max(0.0, std::min(up, down));
    }
  }
  return banks;
}

size_t frames_for(size_t samples) { return samples <= 1 ? 0 : 1 + (samples - 1) / kHopLength; }

struct LogMelStream::Impl {
  // Pre-emphasised signal y, of which y_[0] is y[y_start_] (a vector, compacted now and then:
  // indexing a deque per sample cost more than the FFTs).
  std::vector<float> y_;
  size_t y_start_ = 0, y_total_ = 0;
  bool have_prev_ = false, finished_ = false;
  float prev_ = 0;
  size_t samples_in_ = 0;
  size_t next_frame_ = 0, total_frames_ = 0;  // total_frames_ known once finished
  std::vector<float> ready_;                  // frame-major frames not yet taken
  size_t ready_offset_ = 0;
  util::RealFft fft_{kFftSize};
  std::vector<float> power_ = std::vector<float>(kNumBins);

  // Reflect-padded y: y[-j] = y[j]; y[L - 1 + j] = y[L - 1 - j] (only once the end is known).
  float y_at(long j) const {
    if (j < 0) j = -j;
    if (finished_ && j >= long(y_total_)) j = 2 * (long(y_total_) - 1) - j;
    return y_[size_t(j) - y_start_];
  }

  void compute_frame(size_t t) {
    const auto& w = window();
    const long start = long(t) * kHopLength - kWinLength / 2;
    float* in = fft_.time();
    if (start >= 0 && start + kWinLength <= long(y_total_)) {  // no reflection: straight copy
      // Restrict: the FFT's buffer, the signal and the window never overlap (lets it vectorise).
      float* __restrict out = in;
      const float* __restrict y = y_.data() + (size_t(start) - y_start_);
      const float* __restrict win = w.data();
      for (int i = 0; i < kWinLength; ++i) out[i] = y[i] * win[i];
    } else {
      for (int i = 0; i < kWinLength; ++i) in[i] = y_at(start + i) * w[size_t(i)];
    }
    std::fill(in + kWinLength, in + kFftSize, 0.0f);  // a circular shift leaves |X|^2 unchanged
    fft_.forward();
    const std::complex<float>* spec = fft_.spectrum();
    for (int k = 0; k < kNumBins; ++k) power_[size_t(k)] = std::norm(spec[k]);
    const auto& mel = sparse_mel();
    const size_t at = ready_.size();
    ready_.resize(at + kNumMels);
    float* row = ready_.data() + at;
    for (int m = 0; m < kNumMels; ++m) {
      const auto& wts = mel.weights[size_t(m)];
      const float* p = power_.data() + mel.first[size_t(m)];
      float acc = 0;
      for (size_t k = 0; k < wts.size(); ++k) acc += wts[k] * p[k];
      row[m] = (std::log(acc + 1e-5f) + 4.5f) / 5.0f;
    }
  }

  void drain() {
    for (;;) {
      const size_t t = next_frame_;
      if (finished_) {
        if (t >= total_frames_) break;
      } else {
        // Needs y up to index 320 t + 399 (and y[400] for the start reflection).
        const size_t need = std::max<size_t>(t * kHopLength + kWinLength / 2, kWinLength / 2 + 1);
        if (y_total_ < need) break;
      }
      compute_frame(t);
      ++next_frame_;
      // Keep what later frames can still reach: from 320 t' - 400 on, and y[0..400] while the
      // start reflection may be needed (t' < 2).
      if (next_frame_ >= 2) {
        const size_t keep_from = next_frame_ * kHopLength - kWinLength / 2;
        const size_t drop = std::min(keep_from - std::min(keep_from, y_start_), y_.size());
        if (drop > 0 && drop * 2 >= y_.size()) {
          y_.erase(y_.begin(), y_.begin() + long(drop));
          y_start_ += drop;
        }
      }
    }
  }
};

LogMelStream::LogMelStream() : impl_(std::make_unique<Impl>()) {}
LogMelStream::~LogMelStream() = default;
LogMelStream::LogMelStream(LogMelStream&&) noexcept = default;
LogMelStream& LogMelStream::operator=(LogMelStream&&) noexcept = default;

void LogMelStream::push(std::span<const float> samples) {
  auto& s = *impl_;
  if (s.finished_) return;
  // Pre-emphasis y[i] = x[i] - k x[i-1]; the first sample of the stream only starts it.
  size_t i = 0;
  if (!s.have_prev_ && !samples.empty()) {
    s.prev_ = samples[0];
    s.have_prev_ = true;
    i = 1;
  }
  if (i < samples.size()) {
    const size_t n = samples.size() - i, at = s.y_.size();
    s.y_.resize(at + n);
    float* __restrict y = s.y_.data() + at;
    const float* __restrict x = samples.data() + i;
    const float k = float(kPreemphasis);
    y[0] = x[0] - k * s.prev_;
    for (size_t j = 1; j < n; ++j) y[j] = x[j] - k * x[j - 1];
    s.prev_ = x[n - 1];
    s.y_total_ += n;
  }
  s.samples_in_ += samples.size();
  s.drain();
}

void LogMelStream::finish() {
  auto& s = *impl_;
  if (s.finished_) return;
  s.total_frames_ = frames_for(s.samples_in_);
  // Too short to reflect by 400 samples: extend with zeros (only for < 402 input samples).
  while (s.total_frames_ > 0 && s.y_total_ < size_t(kWinLength / 2 + 1)) {
    s.y_.push_back(0.0f);
    ++s.y_total_;
  }
  s.finished_ = true;
  s.drain();
}

size_t LogMelStream::available() const { return (impl_->ready_.size() - impl_->ready_offset_) / kNumMels; }

size_t LogMelStream::take(std::vector<float>& out, size_t max_frames) {
  auto& s = *impl_;
  const size_t n = std::min(max_frames, available());
  const auto first = s.ready_.begin() + long(s.ready_offset_);
  out.insert(out.end(), first, first + long(n * kNumMels));
  s.ready_offset_ += n * kNumMels;
  if (s.ready_offset_ > (1u << 16) && s.ready_offset_ * 2 > s.ready_.size()) {
    s.ready_.erase(s.ready_.begin(), s.ready_.begin() + long(s.ready_offset_));
    s.ready_offset_ = 0;
  }
  return n;
}

size_t LogMelStream::frames_produced() const { return impl_->next_frame_; }

void to_mel_major(std::span<const float> frame_major, size_t frames, float* out) {
  for (size_t t = 0; t < frames; ++t)
    for (size_t m = 0; m < size_t(kNumMels); ++m) out[m * frames + t] = frame_major[t * kNumMels + m];
}

std::vector<float> log_mel(std::span<const float> samples, size_t* frames) {
  LogMelStream s;
  s.push(samples);
  s.finish();
  std::vector<float> fm;
  const size_t n = s.take(fm, s.available());
  std::vector<float> out(fm.size());
  to_mel_major(fm, n, out.data());
  if (frames) *frames = n;
  return out;
}

}  // namespace earmark::features
