#include "condition/filters.hpp"

#include <cmath>
#include <complex>
#include <numbers>

namespace earmark::condition {

namespace {

// For a biquad made by the prewarped bilinear transform of a second-order section with
// denominator s^2 + s*w0/Q + w0^2, with K = tan(pi f0 / fs) and D = 1 + K/Q + K^2:
//   a1 = 2(K^2 - 1)/D,  a2 = (1 - K/Q + K^2)/D
// hence 1 + a1 + a2 = 4K^2/D, 1 - a1 + a2 = 4/D and 1 - a2 = 2(K/Q)/D, which give K, Q and D.
struct Denominator {
  double k, q, d;
};
Denominator invert_denominator(double a1, double a2) {
  const double k2 = (1 + a1 + a2) / (1 - a1 + a2);
  const double d = 4 / (1 - a1 + a2);
  const double k_over_q = (1 - a2) * d / 2;
  const double k = std::sqrt(k2);
  return {k, k / k_over_q, d};
}

}  // namespace

BiquadCoeffs highpass_biquad(double sample_rate, double f0, double q, double gain) {
  const double k = std::tan(std::numbers::pi * f0 / sample_rate);
  const double d = 1 + k / q + k * k;
  BiquadCoeffs c;
  c.b0 = gain / d;
  c.b1 = -2 * gain / d;
  c.b2 = gain / d;
  c.a1 = 2 * (k * k - 1) / d;
  c.a2 = (1 - k / q + k * k) / d;
  return c;
}

std::array<BiquadCoeffs, 2> k_weighting_48k_table() {
  BiquadCoeffs shelf{1.53512485958697, -2.69169618940638, 1.19839281085285, -1.69065929318241,
                     0.73248077421585};
  BiquadCoeffs hp{1.0, -2.0, 1.0, -1.99004745483398, 0.99007225036621};
  return {shelf, hp};
}

KWeightingPrototype k_weighting_prototype() {
  constexpr double fs = 48000;
  const auto table = k_weighting_48k_table();
  KWeightingPrototype p{};
  {
    // High shelf: numerator (Vh + Vb K/Q + K^2, 2(K^2 - Vh), Vh - Vb K/Q + K^2) / D, so
    // b1 gives Vh and b0 - b2 gives Vb.
    const auto& c = table[0];
    const auto den = invert_denominator(c.a1, c.a2);
    p.shelf_f0_hz = fs / std::numbers::pi * std::atan(den.k);
    p.shelf_q = den.q;
    p.shelf_vh = den.k * den.k - c.b1 * den.d / 2;
    p.shelf_vb = (c.b0 - c.b2) * den.d / (2 * den.k / den.q);
  }
  {
    // High-pass: numerator g(1, -2, 1)/D; the table's numerator is (1, -2, 1), i.e. g = D.
    const auto& c = table[1];
    const auto den = invert_denominator(c.a1, c.a2);
    p.hp_f0_hz = fs / std::numbers::pi * std::atan(den.k);
    p.hp_q = den.q;
    p.hp_gain = c.b0 * den.d;
  }
  return p;
}

std::array<BiquadCoeffs, 2> k_weighting(double sample_rate) {
  static const KWeightingPrototype p = k_weighting_prototype();
  BiquadCoeffs shelf;
  {
    const double k = std::tan(std::numbers::pi * p.shelf_f0_hz / sample_rate);
    const double d = 1 + k / p.shelf_q + k * k;
    shelf.b0 = (p.shelf_vh + p.shelf_vb * k / p.shelf_q + k * k) / d;
    shelf.b1 = 2 * (k * k - p.shelf_vh) / d;
    shelf.b2 = (p.shelf_vh - p.shelf_vb * k / p.shelf_q + k * k) / d;
    shelf.a1 = 2 * (k * k - 1) / d;
    shelf.a2 = (1 - k / p.shelf_q + k * k) / d;
  }
  return {shelf, highpass_biquad(sample_rate, p.hp_f0_hz, p.hp_q, p.hp_gain)};
}

double biquad_response_db(const BiquadCoeffs& c, double sample_rate, double freq_hz) {
  const double w = 2 * std::numbers::pi * freq_hz / sample_rate;
  const std::complex<double> z1 = std::polar(1.0, -w), z2 = std::polar(1.0, -2 * w);
  const auto h = (c.b0 + c.b1 * z1 + c.b2 * z2) / (1.0 + c.a1 * z1 + c.a2 * z2);
  return 20 * std::log10(std::abs(h));
}

DcBlocker::DcBlocker(double sample_rate, double cutoff_hz)
    : r_(std::exp(-2 * std::numbers::pi * cutoff_hz / sample_rate)) {}

}  // namespace earmark::condition
