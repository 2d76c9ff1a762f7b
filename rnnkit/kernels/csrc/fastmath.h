// Elementary functions for the gate loops, written so that the compiler vectorises them.
//
// exp, tanh and the sigmoid as inline arithmetic (a Cody-Waite range reduction and a polynomial,
// as Cephes's expf / exp; Moshier 1989), not calls into libm: a loop over a gate's lanes then
// compiles to SIMD code with any compiler and C library (no libmvec, no glibc >= 2.35), on x86-64
// and aarch64 alike. Accuracy: a few ulp (float), ~1e-15 relative (double). Arguments are clamped
// to [-87, 88] (float) or [-708, 709] (double), where e^v no longer changes a sigmoid or a tanh of
// that precision, so 2^n stays a normal number; NaN propagates.
#pragma once

#include <cstdint>
#include <cstring>

// Forced inline: `inline` alone is a hint, and in a file with many call sites (stream.cpp) GCC
// kept exp_ as an out-of-line call, which left the gate loops scalar (1.2x slower streaming step).
#define RNNKIT_MATH_INLINE inline __attribute__((always_inline))

namespace rnnkit_math {

RNNKIT_MATH_INLINE float bits_to_float(int32_t i) { float f; std::memcpy(&f, &i, sizeof f); return f; }
RNNKIT_MATH_INLINE double bits_to_double(int64_t i) { double d; std::memcpy(&d, &i, sizeof d); return d; }

// e^v, float: v = n ln2 + r, |r| <= ln2 / 2; e^r by a degree-6 polynomial; 2^n from the exponent bits.
RNNKIT_MATH_INLINE float exp_(float v) {
  const float x = v < -87.0f ? -87.0f : (v > 88.0f ? 88.0f : v);  // 2^n stays a normal number
  const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return (p * r * r + r + 1.0f) * bits_to_float((static_cast<int32_t>(n) + 127) << 23);
}

// e^v, double: Cephes's exp, a Padé form R(r) with |r| <= ln2 / 2.
RNNKIT_MATH_INLINE double exp_(double v) {
  const double x = v < -708.0 ? -708.0 : (v > 709.0 ? 709.0 : v);
  const double n = __builtin_floor(x * 1.4426950408889634073599 + 0.5);
  double r = x - n * 6.93145751953125e-1;
  r = r - n * 1.42860682030941723212e-6;
  const double rr = r * r;
  const double px = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr + 9.99999999999999999910e-1);
  const double qx = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr + 2.27265548208155028766e-1) * rr +
                    2.00000000000000000009e0;
  return (1.0 + 2.0 * px / (qx - px)) * bits_to_double((static_cast<int64_t>(n) + 1023) << 52);
}

template <typename T> RNNKIT_MATH_INLINE T sigmoid_(T v) { return T(1) / (T(1) + exp_(-v)); }

// tanh v = sign(v) (1 - e) / (1 + e), e = e^{-2|v|} <= 1: no overflow, exact limits at +-inf.
template <typename T> RNNKIT_MATH_INLINE T tanh_(T v) {
  const T a = v < T(0) ? -v : v;
  const T e = exp_(T(-2) * a);
  const T t = (T(1) - e) / (T(1) + e);
  return v < T(0) ? -t : t;
}

}  // namespace rnnkit_math
