#include "util/fft.hpp"

#include <fftw3.h>

#include <new>

namespace earmark::util {

std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}

RealFft::RealFft(size_t n) : n_(n) {
  time_ = static_cast<float*>(fftwf_malloc(sizeof(float) * n_));
  spec_ = static_cast<std::complex<float>*>(fftwf_malloc(sizeof(fftwf_complex) * bins()));
  if (!time_ || !spec_) {
    fftwf_free(time_);
    fftwf_free(spec_);
    throw std::bad_alloc();
  }
  auto* spec = reinterpret_cast<fftwf_complex*>(spec_);
  {
    std::lock_guard lock(fftw_planner_mutex());
    // FFTW_ESTIMATE: planning must not overwrite or time the buffers, and keeps start-up cheap.
    fwd_ = fftwf_plan_dft_r2c_1d(static_cast<int>(n_), time_, spec, FFTW_ESTIMATE);
    inv_ = fftwf_plan_dft_c2r_1d(static_cast<int>(n_), spec, time_, FFTW_ESTIMATE);
  }
  if (!fwd_ || !inv_) {
    release();
    throw std::bad_alloc();
  }
}

RealFft::~RealFft() { release(); }

void RealFft::release() noexcept {
  {
    std::lock_guard lock(fftw_planner_mutex());
    if (fwd_) fftwf_destroy_plan(static_cast<fftwf_plan>(fwd_));
    if (inv_) fftwf_destroy_plan(static_cast<fftwf_plan>(inv_));
  }
  fwd_ = inv_ = nullptr;
  fftwf_free(time_);
  fftwf_free(spec_);
  time_ = nullptr;
  spec_ = nullptr;
}

void RealFft::forward() {
  fftwf_execute_dft_r2c(static_cast<fftwf_plan>(fwd_), time_, reinterpret_cast<fftwf_complex*>(spec_));
}

void RealFft::inverse() {
  fftwf_execute_dft_c2r(static_cast<fftwf_plan>(inv_), reinterpret_cast<fftwf_complex*>(spec_), time_);
}

}  // namespace earmark::util
