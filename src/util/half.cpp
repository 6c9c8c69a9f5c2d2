// IEEE 754 binary16 <-> binary32, for compact score grids (earmark/earmark.hpp ScoreValues).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "earmark/earmark.hpp"
#include "util/spill.hpp"

namespace earmark {

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const auto sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t biased = (x >> 23) & 0xffu;  // float exponent field
  const uint32_t mant = x & 0x7fffffu;
  if (biased == 0xffu) return uint16_t(sign | 0x7c00u | (mant ? 0x200u : 0u));  // infinity, NaN
  const int exp = int(biased) - 127 + 15;                                         // half exponent field
  if (exp >= 31) return uint16_t(sign | 0x7c00u);                                  // too large: infinity
  if (exp <= 0) {
    // A subnormal half (or zero): value = m * 2^-24 with m = (1.mant * 2^23) >> (14 - exp).
    if (exp < -10) return sign;  // below half the smallest subnormal
    const uint32_t full = mant | 0x800000u;
    const auto shift = uint32_t(14 - exp);
    uint32_t m = full >> shift;
    const uint32_t rest = full & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
    if (rest > halfway || (rest == halfway && (m & 1u))) ++m;  // may carry into the smallest normal: right
    return uint16_t(sign | m);
  }
  uint32_t h = (uint32_t(exp) << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry moves to the next exponent (or infinity)
  return uint16_t(sign | h);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t x;
  if (exp == 0x1fu) {
    x = sign | 0x7f800000u | (mant << 13);
  } else if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {
      const float v = std::ldexp(float(mant), -24);
      return sign ? -v : v;
    }
  } else {
    x = sign | ((exp + 127u - 15u) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, sizeof f);
  return f;
}

float ScoreValues::printable(size_t i) const {
  const float v = (*this)[i];
  if (!compact_ || !std::isfinite(v)) return v;
  const uint16_t h = half(i);
  char buf[32];
  for (int digits = 1; digits <= 6; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, double(v));
    const float x = std::strtof(buf, nullptr);
    if (float_to_half(x) == h) return x;
  }
  return v;
}

// Spilled grids: pages of 512 rows (82 s of a detector's 0.16 s grid), 4,096 cached: 4 MB.
namespace {
constexpr size_t kSpillBlockRows = 512;
constexpr size_t kSpillCachePages = 4096;
}  // namespace

ScoreValues::ScoreValues() = default;
ScoreValues::ScoreValues(std::initializer_list<float> v) : f_(v) {}
ScoreValues::ScoreValues(std::vector<float> v) : f_(std::move(v)) {}
ScoreValues::ScoreValues(const ScoreValues& o)
    : compact_(o.compact_), f_(o.f_), h_(o.h_), spill_(o.spill_ ? std::make_unique<util::Spill16>(*o.spill_) : nullptr) {}
ScoreValues::ScoreValues(ScoreValues&& o) noexcept = default;
ScoreValues& ScoreValues::operator=(const ScoreValues& o) {
  if (this != &o) *this = ScoreValues(o);
  return *this;
}
ScoreValues& ScoreValues::operator=(ScoreValues&& o) noexcept = default;
ScoreValues::~ScoreValues() = default;

void ScoreValues::spill_beyond(size_t width, size_t after_values) {
  if (!compact_ || width == 0 || spill_) return;
  spill_ = std::make_unique<util::Spill16>(width, kSpillBlockRows, kSpillCachePages, std::max<size_t>(after_values, 1));
  spill_->reserve(h_.capacity());
  for (uint16_t h : h_) spill_->push_back(h);
  std::vector<uint16_t>().swap(h_);
}

bool ScoreValues::spilled() const { return spill_ && spill_->spilled(); }
uint16_t ScoreValues::spilled_get(size_t i) const { return spill_->get(i); }
void ScoreValues::spilled_set(size_t i, uint16_t h) { spill_->set(i, h); }
void ScoreValues::spilled_push(uint16_t h) { spill_->push_back(h); }
size_t ScoreValues::spilled_size() const { return spill_->size(); }

void ScoreValues::reserve(size_t n) {
  if (!compact_)
    f_.reserve(n);
  else if (spill_)
    spill_->reserve(n);
  else
    h_.reserve(n);
}

void ScoreValues::resize(size_t n, float v) {
  if (!compact_)
    f_.resize(n, v);
  else if (spill_)
    spill_->resize(n, float_to_half(v));
  else
    h_.resize(n, float_to_half(v));
}

void ScoreValues::clear() {
  f_.clear();
  h_.clear();
  if (spill_)  // a fresh store with the same settings, its file (if any) gone
    spill_ = std::make_unique<util::Spill16>(spill_->width(), kSpillBlockRows, kSpillCachePages, spill_->memory_values());
}

}  // namespace earmark
