// IIR building blocks of the condition stage: biquads designed through the bilinear transform
// (prewarped at the characteristic frequency), the BS.1770 K-weighting at any sample rate,
// and a one-pole DC blocker. State is double: at 32 kHz a 5 Hz pole sits within 1e-3 of the
// unit circle, where float state would add audible rounding noise.
#pragma once

#include <array>

namespace earmark::condition {

struct BiquadCoeffs {
  // y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2]
  double b0 = 1, b1 = 0, b2 = 0, a1 = 0, a2 = 0;
};

// Transposed direct form II.
class Biquad {
 public:
  Biquad() = default;
  explicit Biquad(const BiquadCoeffs& c) : c_(c) {}
  double process(double x) {
    const double y = c_.b0 * x + z1_;
    z1_ = c_.b1 * x - c_.a1 * y + z2_;
    z2_ = c_.b2 * x - c_.a2 * y;
    return y;
  }
  void reset() { z1_ = z2_ = 0; }
  const BiquadCoeffs& coeffs() const { return c_; }

 private:
  BiquadCoeffs c_;
  double z1_ = 0, z2_ = 0;
};

// Second-order high-pass, analog prototype g*s^2 / (s^2 + s*w0/Q + w0^2), bilinear transform
// prewarped at f0. Q = 1/sqrt(2) is the Butterworth response.
BiquadCoeffs highpass_biquad(double sample_rate, double f0, double q, double gain = 1.0);
inline BiquadCoeffs butterworth_highpass(double sample_rate, double cutoff_hz) {
  return highpass_biquad(sample_rate, cutoff_hz, 0.70710678118654752440);
}

// ITU-R BS.1770 K-weighting (stage 1: high shelf for the head, stage 2: RLB high-pass) at
// `sample_rate`. The standard only tabulates 48 kHz coefficients; we invert the prewarped
// bilinear transform on that table to recover each stage's analog parameters and discretise
// them again at the requested rate (at 48 kHz the table comes back exactly).
std::array<BiquadCoeffs, 2> k_weighting(double sample_rate);

// The standard's 48 kHz table (BS.1770-4, tables 1 and 2).
std::array<BiquadCoeffs, 2> k_weighting_48k_table();

// Analog parameters recovered from the 48 kHz table (exposed for tests and documentation).
struct KWeightingPrototype {
  double shelf_f0_hz, shelf_q, shelf_vh, shelf_vb;  // high-shelf: gains at high/band frequencies
  double hp_f0_hz, hp_q, hp_gain;
};
KWeightingPrototype k_weighting_prototype();

// |H(e^{jw})| in dB at `freq_hz`.
double biquad_response_db(const BiquadCoeffs& c, double sample_rate, double freq_hz);

// y[n] = x[n] - x[n-1] + r*y[n-1]: a first-order high-pass with its -3 dB point near
// `cutoff_hz`. The previous input starts at the first sample seen, so a constant offset is
// removed from the first sample on instead of ringing out as a step.
class DcBlocker {
 public:
  DcBlocker(double sample_rate, double cutoff_hz);
  double process(double x) {
    if (!primed_) {
      prev_x_ = x;
      primed_ = true;
    }
    const double y = x - prev_x_ + r_ * prev_y_;
    prev_x_ = x;
    prev_y_ = y;
    return y;
  }

 private:
  double r_;
  double prev_x_ = 0, prev_y_ = 0;
  bool primed_ = false;
};

}  // namespace earmark::condition
