#include "util/fft.hpp"

#include <fftw3.h>

#include <map>
#include <new>

namespace earmark::util {

std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}

namespace {

// One pair of plans per transform length for the whole process: a plan only describes the
// transform, and every RealFft runs it on its own arrays (fftwf_execute_dft_*: same alignment,
// both from fftwf_malloc, and out of place like the planning arrays). Making the plans per
// object cost about 0.6 ms per file (the twiddle factors are computed anew each time).
struct Plans {
  fftwf_plan fwd = nullptr, inv = nullptr;
};
Plans plans_for(size_t n) {
  static std::map<size_t, Plans> plans;  // kept for the process's life
  std::lock_guard lock(fftw_planner_mutex());
  if (auto it = plans.find(n); it != plans.end()) return it->second;
  float* t = static_cast<float*>(fftwf_malloc(sizeof(float) * n));
  auto* s = static_cast<fftwf_complex*>(fftwf_malloc(sizeof(fftwf_complex) * (n / 2 + 1)));
  Plans p;
  if (t && s) {
    // FFTW_ESTIMATE: planning must not overwrite or time the buffers, and keeps start-up cheap.
    p.fwd = fftwf_plan_dft_r2c_1d(static_cast<int>(n), t, s, FFTW_ESTIMATE);
    p.inv = fftwf_plan_dft_c2r_1d(static_cast<int>(n), s, t, FFTW_ESTIMATE);
  }
  fftwf_free(t);  // the plans are only ever run on other arrays
  fftwf_free(s);
  if (!p.fwd || !p.inv) {
    if (p.fwd) fftwf_destroy_plan(p.fwd);
    if (p.inv) fftwf_destroy_plan(p.inv);
    throw std::bad_alloc();
  }
  plans.emplace(n, p);
  return p;
}

}  // namespace

RealFft::RealFft(size_t n) : n_(n) {
  time_ = static_cast<float*>(fftwf_malloc(sizeof(float) * n_));
  spec_ = static_cast<std::complex<float>*>(fftwf_malloc(sizeof(fftwf_complex) * bins()));
  if (!time_ || !spec_) {
    fftwf_free(time_);
    fftwf_free(spec_);
    throw std::bad_alloc();
  }
  try {
    const Plans p = plans_for(n_);
    fwd_ = p.fwd;
    inv_ = p.inv;
  } catch (...) {
    release();
    throw;
  }
}

RealFft::~RealFft() { release(); }

void RealFft::release() noexcept {
  fwd_ = inv_ = nullptr;  // the plans are shared (plans_for)
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
