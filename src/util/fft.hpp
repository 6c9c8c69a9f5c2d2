// Small FFTW (single precision) wrapper shared by the stages that need spectra.
//
// FFTW's planner keeps global state and is not thread-safe, so every plan is created under
// fftw_planner_mutex(). Plans are made once per transform length and kept for the process;
// executing a plan on our own arrays (fftwf_execute_dft_r2c/c2r) is thread-safe, so one RealFft
// may be used by one thread while other threads use theirs. Other stages that make FFTW plans
// must take the same mutex.
#pragma once

#include <complex>
#include <cstddef>
#include <mutex>
#include <span>

namespace earmark::util {

std::mutex& fftw_planner_mutex();

class RealFft {
 public:
  explicit RealFft(size_t n);  // n: transform length (any size; powers of two are fastest)
  ~RealFft();
  RealFft(const RealFft&) = delete;
  RealFft& operator=(const RealFft&) = delete;

  size_t size() const { return n_; }
  size_t bins() const { return n_ / 2 + 1; }

  // Time-domain buffer of size() floats: fill it, then call forward().
  float* time() { return time_; }
  // Spectrum of bins() values, valid after forward(); fill it before inverse().
  std::complex<float>* spectrum() { return spec_; }

  // time() -> spectrum() (unnormalised).
  void forward();
  // spectrum() -> time(), unnormalised (the result is size() times the original); the
  // spectrum buffer is overwritten.
  void inverse();

 private:
  void release() noexcept;

  size_t n_;
  float* time_ = nullptr;
  std::complex<float>* spec_ = nullptr;
  void* fwd_ = nullptr;
  void* inv_ = nullptr;
};

}  // namespace earmark::util
