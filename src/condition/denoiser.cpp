#include "condition/denoiser.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace earmark::condition {

Denoiser::Denoiser(const DenoiseConfig& config, int sample_rate)
    : cfg_(config),
      fs_(sample_rate),
      n_(size_t(config.fft_size)),
      hop_(size_t(config.hop)),
      bins_(n_ / 2 + 1),
      fft_(n_) {
  window_.resize(n_);
  for (size_t i = 0; i < n_; ++i)
    window_[i] = float(std::sqrt(0.5 - 0.5 * std::cos(2 * M_PI * double(i) / double(n_))));
  // The product of analysis and synthesis windows is a periodic Hann, whose copies every hop
  // add up to n / (2 hop) when n / hop is an integer >= 2.
  ola_scale_ = float(2.0 * double(hop_) / double(n_));
  // Leading zeros so that the first real sample is covered by as many frames as any other.
  vbuf_.assign(n_ - hop_, 0.0f);
  ola_.assign(n_, 0.0f);

  const double frames_per_s = double(fs_) / double(hop_);
  init_frames_ = size_t(std::max<int64_t>(1, std::llround(cfg_.noise_init_s * frames_per_s)));
  max_stored_ = 2 * init_frames_;
  min_window_frames_ = std::max<int64_t>(1, std::llround(cfg_.update_window_s * frames_per_s));
  update_a_ = std::exp(-1.0 / (cfg_.update_time_s * frames_per_s));
  floor_gain_ = float(std::pow(10.0, cfg_.gain_floor_db / 20));
  release_c_ = cfg_.gain_release_s > 0 ? float(std::exp(-1.0 / (cfg_.gain_release_s * frames_per_s))) : 0.0f;
  clean_prev_.assign(bins_, 0.0f);
  gain_prev_.assign(bins_, 1.0f);
}

size_t Denoiser::max_latency_samples() const { return (n_ - hop_) + (max_stored_ + 1) * hop_; }

void Denoiser::process(std::span<const float> in, std::vector<float>& out) {
  vbuf_.insert(vbuf_.end(), in.begin(), in.end());
  input_count_ += int64_t(in.size());
  size_t consumed = 0;
  while (vbuf_.size() - consumed >= n_) {
    analyse_frame(consumed);
    consumed += hop_;
  }
  vbuf_.erase(vbuf_.begin(), vbuf_.begin() + std::ptrdiff_t(consumed));
  emit(out);
}

void Denoiser::flush(std::vector<float>& out) {
  if (input_count_ > 0) {
    // The last real sample sits at v-index (n - hop) + count - 1 and is complete once the
    // frame starting in its hop has been added.
    const int64_t last_v = int64_t(n_ - hop_) + input_count_ - 1;
    const int64_t last_frame = last_v / int64_t(hop_);
    const int64_t needed = last_frame * int64_t(hop_) + int64_t(n_) - frame_index_ * int64_t(hop_);
    if (int64_t(vbuf_.size()) < needed) vbuf_.resize(size_t(needed), 0.0f);
    size_t consumed = 0;
    while (frame_index_ <= last_frame) {
      analyse_frame(consumed);
      consumed += hop_;
    }
    vbuf_.clear();
    if (!initialised_) end_init();
  }
  // Drop what the trailing zeros produced beyond the input.
  const int64_t extra = emitted_ + int64_t(ready_.size()) - input_count_;
  if (extra > 0) ready_.resize(ready_.size() - size_t(extra));
  emit(out);
}

void Denoiser::emit(std::vector<float>& out) {
  out.insert(out.end(), ready_.begin(), ready_.end());
  emitted_ += int64_t(ready_.size());
  ready_.clear();
}

void Denoiser::track_minimum(int64_t index, double level_db) {
  while (!minimum_.empty() && minimum_.back().second >= level_db) minimum_.pop_back();
  minimum_.emplace_back(index, level_db);
  while (minimum_.front().first <= index - min_window_frames_) minimum_.pop_front();
}

void Denoiser::analyse_frame(size_t offset) {
  const int64_t v_start = frame_index_ * int64_t(hop_);
  const int64_t lead = int64_t(n_ - hop_);
  float* t = fft_.time();
  for (size_t i = 0; i < n_; ++i) t[i] = vbuf_[offset + i] * window_[i];
  fft_.forward();
  Frame f;
  f.spec.assign(fft_.spectrum(), fft_.spectrum() + bins_);
  // Frames are ranked by their mean log power over the bins rather than by their energy:
  // every bin counts alike, so a few strong low-frequency bins (pink or brown noise, rumble)
  // cannot make a noise frame look loud or quiet, and the ranking of noise-only frames
  // barely fluctuates (the mean of 513 log values).
  double energy = 0, log_sum = 0;
  for (const auto& y : f.spec) {
    const double p = double(std::norm(y));
    energy += p;
    log_sum += std::log10(p + 1e-30);
  }
  f.level_db = 10 * log_sum / double(bins_);
  // Digital silence: the windowed frame's mean square (about 4 energy / n^2) below 1e-14,
  // i.e. -140 dBFS.
  const bool silent = energy <= 2.5e-15 * double(n_) * double(n_);
  f.usable = !silent && v_start >= lead && v_start + int64_t(n_) <= lead + input_count_;
  if (f.usable) track_minimum(frame_index_, f.level_db);
  ++frame_index_;

  if (initialised_) {
    synthesise(f, true);
    return;
  }
  if (f.usable) ++usable_stored_;
  stored_.push_back(std::move(f));
  if (usable_stored_ >= init_frames_ || stored_.size() >= max_stored_) end_init();
}

void Denoiser::end_init() {
  std::vector<const Frame*> usable;
  for (const auto& f : stored_)
    if (f.usable) usable.push_back(&f);
  if (!usable.empty()) {
    // The quietest frames are the ones most likely to hold noise only.
    std::sort(usable.begin(), usable.end(), [](const Frame* a, const Frame* b) { return a->level_db < b->level_db; });
    const size_t k = std::clamp<size_t>(size_t(std::ceil(cfg_.quiet_fraction * double(usable.size()))), 1,
                                        usable.size());
    std::vector<double> acc(bins_, 0.0);
    for (size_t j = 0; j < k; ++j)
      for (size_t b = 0; b < bins_; ++b) acc[b] += double(std::norm(usable[j]->spec[b]));
    noise_.resize(bins_);
    for (size_t b = 0; b < bins_; ++b) noise_[b] = float(acc[b] / double(k));
    initialised_ = true;
  }
  // Without a usable frame (digital silence so far) the stored frames pass unchanged and the
  // estimate waits for sound.
  for (auto& f : stored_) synthesise(f, false);
  stored_.clear();
  usable_stored_ = 0;
}

void Denoiser::synthesise(Frame& f, bool update_profile) {
  auto& Y = f.spec;
  if (!noise_.empty()) {
    if (update_profile && f.usable && !minimum_.empty() && f.level_db <= minimum_.front().second + cfg_.update_gate_db) {
      const float a = float(update_a_);
      for (size_t b = 0; b < bins_; ++b) noise_[b] = a * noise_[b] + (1 - a) * std::norm(Y[b]);
    }
    const float alpha = float(cfg_.dd_alpha), over = float(cfg_.over_subtraction);
    for (size_t b = 0; b < bins_; ++b) {
      const float y2 = std::norm(Y[b]);
      const float lam = over * noise_[b] + 1e-30f;
      const float ml = std::max(y2 / lam - 1.0f, 0.0f);  // maximum-likelihood a-priori SNR
      const float xi = first_frame_ ? ml : alpha * clean_prev_[b] / lam + (1 - alpha) * ml;
      const float gw = xi / (1 + xi);
      clean_prev_[b] = gw * gw * y2;
      const float g = std::max(gw, floor_gain_);
      // Rises at once (onsets stay sharp), falls smoothly: a gain that dips for a frame or
      // two inside a sound does not chop it, and residual noise fades instead of flickering.
      const float gs = first_frame_ || g >= gain_prev_[b] ? g : release_c_ * gain_prev_[b] + (1 - release_c_) * g;
      gain_prev_[b] = gs;
      Y[b] *= gs;
    }
    first_frame_ = false;
  }
  std::copy(Y.begin(), Y.end(), fft_.spectrum());
  fft_.inverse();
  const float* t = fft_.time();
  const float scale = ola_scale_ / float(n_);  // FFTW's inverse is unnormalised
  for (size_t i = 0; i < n_; ++i) ola_[i] += t[i] * window_[i] * scale;

  // The first hop of the accumulator now has every frame that covers it.
  const int64_t lead = int64_t(n_ - hop_);
  for (size_t i = 0; i < hop_; ++i)
    if (v_emitted_ + int64_t(i) >= lead) ready_.push_back(ola_[i]);
  v_emitted_ += int64_t(hop_);
  std::copy(ola_.begin() + std::ptrdiff_t(hop_), ola_.end(), ola_.begin());
  std::fill(ola_.end() - std::ptrdiff_t(hop_), ola_.end(), 0.0f);
}

}  // namespace earmark::condition
