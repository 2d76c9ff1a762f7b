// minGRU / minLSTM over a whole sequence on the CPU (rnnkit/kernels/scan.py), from the input
// projection k = x W_ih^T + b_ih (B, T, G*H), G = 2 (z, h) or 3 (f, i, h):
//
//   minGRU   a = 1 - σ(k_z),            b = σ(k_z) g(k_h)
//   minLSTM  a = f / (f + i),           b = i / (f + i) g(k_h),   f = σ(k_f), i = σ(k_i)
//   h_t = a_t ⊙ h_{t-1} + m ⊙ b_t;  a masked step (mask 0) keeps h_{t-1}
//
// m (B, H) is the recurrent-dropout mask of the sequence (one per sequence, 0 or 1/keep; absent:
// 1). It scales the candidate term only, not the carried state (Semeniuta et al. 2016,
// "Recurrent dropout without memory loss"), so the recurrence stays linear and bounded.
//
// One pass over time per batch row, vectorised over the H lanes, rows in parallel: O(B T H)
// work in one sweep, where torch.logcumsumexp costs ~100 ns an element on a CPU and the
// log-space formula needs a dozen full-size elementwise passes forward and backward.
// Backward, from dL/dh: d_t = dL/dh_t + a_{t+1} d_{t+1}; da_t = d_t h_{t-1}; db_t = m d_t; then
// through the gates (derivatives written out below); dh0 = a_1 d_1.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "fastmath.h"


using at::Tensor;

namespace {

template <typename T> RNNKIT_MATH_INLINE T sg(T v) { return rnnkit_math::sigmoid_(v); }  // inline, vectorisable

// a, b and what the backward pass needs of one lane: the candidate g(k_h) and the gates.
template <typename T> struct Coef { T a, b, gh, p, q; };  // p, q: z (minGRU) or f, i (minLSTM)

template <typename T> RNNKIT_MATH_INLINE Coef<T> coef(const T* k, int64_t H, int64_t G, int64_t j) {
  const T kh = k[(G - 1) * H + j], s_kh = sg(kh);  // both branches computed: a select, not a jump
  const T gh = kh >= T(0) ? kh + T(0.5) : s_kh;
  if (G == 2) {
    const T z = sg(k[j]);
    return {T(1) - z, z * gh, gh, z, T(0)};
  }
  const T f = sg(k[j]), i = sg(k[H + j]), s = f + i;
  return {f / s, i / s * gh, gh, f, i};
}

void check(const Tensor& k, const Tensor& h0, const Tensor& mask, const Tensor& drop) {
  TORCH_CHECK(k.dim() == 3 && k.is_contiguous() && h0.is_contiguous() && h0.dim() == 2 &&
              (k.size(2) == 2 * h0.size(1) || k.size(2) == 3 * h0.size(1)) && h0.size(0) == k.size(0),
              "rnnkit scan: expected k (B, T, G*H) with G = 2 or 3 and h0 (B, H), contiguous");
  TORCH_CHECK(mask.numel() == 0 || (mask.sizes() == k.sizes().slice(0, 2) && mask.is_contiguous() &&
                                    mask.scalar_type() == k.scalar_type()),
              "rnnkit scan: mask must be empty or (B, T) of k's dtype");
  TORCH_CHECK(drop.numel() == 0 || (drop.sizes() == h0.sizes() && drop.is_contiguous() &&
                                    drop.scalar_type() == k.scalar_type()),
              "rnnkit scan: the dropout mask must be empty or (B, H) of k's dtype");
}

Tensor forward(const Tensor& k, const Tensor& h0, const Tensor& mask, const Tensor& drop) {
  check(k, h0, mask, drop);
  const int64_t B = k.size(0), T = k.size(1), H = h0.size(1), G = k.size(2) / H;
  Tensor h = at::empty({B, T, H}, k.options());
  AT_DISPATCH_FLOATING_TYPES(k.scalar_type(), "rnnkit_scan_forward", [&] {
    const scalar_t *pk = k.data_ptr<scalar_t>(), *p0 = h0.data_ptr<scalar_t>();
    const scalar_t* pm = mask.numel() ? mask.data_ptr<scalar_t>() : nullptr;
    const scalar_t* pdrop = drop.numel() ? drop.data_ptr<scalar_t>() : nullptr;
    scalar_t* ph = h.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t r0, int64_t r1) {
      const std::vector<scalar_t> ones(pdrop ? 0 : H, scalar_t(1));  // no dropout: m = 1, no branch in the lane loop
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* prev = p0 + r * H;
        const scalar_t* m = pdrop ? pdrop + r * H : ones.data();
        for (int64_t t = 0; t < T; ++t) {
          const int64_t n = r * T + t;
          scalar_t* out = ph + n * H;
          if (pm && pm[n] == scalar_t(0)) {
            for (int64_t j = 0; j < H; ++j) out[j] = prev[j];
          } else {
            const scalar_t* kt = pk + n * G * H;
            if (G == 2) {
              _Pragma("GCC ivdep") for (int64_t j = 0; j < H; ++j) {
                const auto c = coef(kt, H, 2, j);
                out[j] = c.a * prev[j] + m[j] * c.b;
              }
            } else {
              _Pragma("GCC ivdep") for (int64_t j = 0; j < H; ++j) {
                const auto c = coef(kt, H, 3, j);
                out[j] = c.a * prev[j] + m[j] * c.b;
              }
            }
          }
          prev = out;
        }
      }
    });
  });
  return h;
}

// One step back in time over the H lanes of a row: dL/dk_t from d_t = dL/dh_t + carry, and the
// new carry a_t d_t. G is a template argument so that the lane loop has no branch on it: with G
// known at compile time the loop vectorises for both gate counts and both dtypes (with G read at
// run time GCC left the float64 minGRU loop 2x slower).
template <int G, typename T>
RNNKIT_MATH_INLINE void backward_step(const T* kt, const T* gt, const T* prev, const T* m, T* carry, T* dkt,
                                      int64_t H) {
  _Pragma("GCC ivdep") for (int64_t j = 0; j < H; ++j) {
    const auto c = coef(kt, H, G, j);
    const T d = gt[j] + carry[j], da = d * prev[j], db = m[j] * d;
    const T kh = kt[(G - 1) * H + j];
    const T dg = kh >= T(0) ? T(1) : c.gh * (T(1) - c.gh);  // g'(k_h)
    if (G == 2) {  // a = 1 - z, b = z g:  dk_z = (g db - da) z (1 - z),  dk_h = z g' db
      dkt[j] = (c.gh * db - da) * c.p * (T(1) - c.p);
      dkt[H + j] = c.p * dg * db;
    } else {  // a = f/s, b = i/s g, s = f + i:  ∂a/∂f = i/s², ∂a/∂i = -f/s², ∂(i/s)/∂f = -i/s²
      const T f = c.p, i = c.q, s2 = (f + i) * (f + i), e = da - db * c.gh;
      dkt[j] = e * i / s2 * f * (T(1) - f);
      dkt[H + j] = -e * f / s2 * i * (T(1) - i);
      dkt[2 * H + j] = i / (f + i) * dg * db;
    }
    carry[j] = d * c.a;
  }
}

std::vector<Tensor> backward(const Tensor& grad, const Tensor& k, const Tensor& h, const Tensor& h0,
                             const Tensor& mask, const Tensor& drop) {
  check(k, h0, mask, drop);
  TORCH_CHECK(grad.sizes() == h.sizes() && grad.is_contiguous(), "rnnkit scan: gradient of shape (B, T, H)");
  const int64_t B = k.size(0), T = k.size(1), H = h0.size(1), G = k.size(2) / H;
  Tensor dk = at::empty_like(k), dh0 = at::empty_like(h0);
  AT_DISPATCH_FLOATING_TYPES(k.scalar_type(), "rnnkit_scan_backward", [&] {
    const scalar_t *pg = grad.data_ptr<scalar_t>(), *pk = k.data_ptr<scalar_t>(), *ph = h.data_ptr<scalar_t>();
    const scalar_t *p0 = h0.data_ptr<scalar_t>(), *pm = mask.numel() ? mask.data_ptr<scalar_t>() : nullptr;
    const scalar_t* pdrop = drop.numel() ? drop.data_ptr<scalar_t>() : nullptr;
    scalar_t *pdk = dk.data_ptr<scalar_t>(), *pd0 = dh0.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t r0, int64_t r1) {
      std::vector<scalar_t> carry(H);  // a_{t+1} d_{t+1}: the gradient reaching h_t through h_{t+1}
      const std::vector<scalar_t> ones(pdrop ? 0 : H, scalar_t(1));
      for (int64_t r = r0; r < r1; ++r) {
        std::fill(carry.begin(), carry.end(), scalar_t(0));
        const scalar_t* m = pdrop ? pdrop + r * H : ones.data();
        for (int64_t t = T - 1; t >= 0; --t) {
          const int64_t n = r * T + t;
          const scalar_t *prev = t > 0 ? ph + (n - 1) * H : p0 + r * H, *gt = pg + n * H, *kt = pk + n * G * H;
          scalar_t* dkt = pdk + n * G * H;
          if (pm && pm[n] == scalar_t(0)) {  // h_t = h_{t-1}: the gradient passes through unchanged
            for (int64_t j = 0; j < H; ++j) carry[j] += gt[j];
            for (int64_t j = 0; j < G * H; ++j) dkt[j] = scalar_t(0);
            continue;
          }
          if (G == 2) {
            backward_step<2>(kt, gt, prev, m, carry.data(), dkt, H);
          } else {
            backward_step<3>(kt, gt, prev, m, carry.data(), dkt, H);
          }
        }
        std::copy(carry.begin(), carry.end(), pd0 + r * H);
      }
    });
  });
  return {dk, dh0};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "(k, h0, mask, drop) -> h (B, T, H)");
  m.def("backward", &backward, "(dL/dh, k, h, h0, mask, drop) -> (dL/dk, dL/dh0)");
}
