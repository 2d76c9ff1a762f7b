// Shared pieces of rnnkit's native sequence kernels (one .cpp per cell family, one module).
//
// Every kernel reproduces rnnkit/kernels/reference.py `recur` for one cell family:
//   the input projection of all steps is one matmul before the time loop; the loop runs here
//   (one recurrent gemm per step into preallocated storage, then one fused elementwise pass over
//   the batch rows); the weight gradients are one matmul each after the backward loop.
//
// Layout: every per-step tensor is (B, T, n), indexed by the step's time t (not its processing
// order), so a step's B rows are a strided matrix (leading dimension T*n) that BLAS reads and
// writes in place, and (B*T, n) views feed the matmuls before and after the loop.
//
// Calling convention (native.py): an empty tensor means "absent" (no mask, no rec_mask, a cell
// without that parameter); zone is an empty list or one (B, T, S_k) tensor per state tensor.
// forward returns {seq, last, final state..., saved...}; backward returns
// {dx, dstate..., dparams...} with undefined tensors (None) for absent inputs.
#pragma once

#include <ATen/ATen.h>  // not torch/extension.h: only module.cpp needs pybind, and this compiles faster
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "fastmath.h"

namespace rnnkit {

// Before a loop over rows of distinct buffers: they never overlap (at most a row is updated in
// place, element by element), so the vectoriser need not version the loop on alias checks, which
// it gives up on past a few pointers and then calls the scalar exp / tanh.
#define RNNKIT_IVDEP _Pragma("GCC ivdep")

using at::Tensor;
using Tensors = std::vector<Tensor>;
using Options = std::vector<std::string>;

using rnnkit_math::exp_;  // inline, vectorisable (fastmath.h)
using rnnkit_math::sigmoid_;
using rnnkit_math::tanh_;

// The activations an Elman or Jordan cell may name (cells/base.py ACTIVATIONS).
enum class Act { Tanh, Relu, Sigmoid, Identity };

inline Act parse_act(const std::string& name) {
  if (name == "tanh") return Act::Tanh;
  if (name == "relu") return Act::Relu;
  if (name == "sigmoid") return Act::Sigmoid;
  TORCH_CHECK(name == "identity", "rnnkit native: unknown activation ", name);
  return Act::Identity;
}

// v (n) <- act(v), in place.
template <typename T> inline void activate(Act act, T* v, int64_t n) {
  switch (act) {
    case Act::Tanh: for (int64_t j = 0; j < n; ++j) v[j] = tanh_(v[j]); break;
    case Act::Relu: for (int64_t j = 0; j < n; ++j) v[j] = v[j] > T(0) ? v[j] : T(0); break;
    case Act::Sigmoid: for (int64_t j = 0; j < n; ++j) v[j] = sigmoid_(v[j]); break;
    case Act::Identity: break;
  }
}

// d (n) <- d * act'(pre), with act' written in terms of the activation's output a.
template <typename T> inline void activate_grad(Act act, const T* a, T* d, int64_t n) {
  switch (act) {
    case Act::Tanh: for (int64_t j = 0; j < n; ++j) d[j] *= T(1) - a[j] * a[j]; break;
    case Act::Relu: for (int64_t j = 0; j < n; ++j) d[j] = a[j] > T(0) ? d[j] : T(0); break;
    case Act::Sigmoid: for (int64_t j = 0; j < n; ++j) d[j] *= a[j] * (T(1) - a[j]); break;
    case Act::Identity: break;
  }
}

// Row-major C (M, N) = A (M, K) @ op(Bm) + beta * C, each a strided matrix in existing storage
// (rows lda, ldb, ldc apart). Bm is (N, K) when b_t (an nn.Linear weight, used as W^T), else (K, N).
// Through at::mm_out / at::addmm_out on views of the storage: torch's own BLAS (MKL, OpenBLAS or
// its fallback, whichever this torch was built with), 64-bit sizes, no symbol outside torch's API.
// beta is 0 (C is overwritten, never read) or 1 (accumulate).
template <typename T>
inline void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* Bm, int64_t ldb, bool b_t,
                 T beta, T* C, int64_t ldc) {
  TORCH_CHECK(beta == T(0) || beta == T(1), "rnnkit native: gemm takes beta 0 or 1");
  const auto opt = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  const Tensor a = at::from_blob(const_cast<T*>(A), {M, K}, {lda, 1}, opt);
  const Tensor b = b_t ? at::from_blob(const_cast<T*>(Bm), {N, K}, {ldb, 1}, opt).t()
                       : at::from_blob(const_cast<T*>(Bm), {K, N}, {ldb, 1}, opt);
  Tensor c = at::from_blob(C, {M, N}, {ldc, 1}, opt);
  if (beta == T(0)) {
    at::mm_out(c, a, b);
  } else {
    at::addmm_out(c, c, a, b);
  }
}

// Row-major C (M, N) = A (M, K) @ Bm (K, N) + beta * C on this thread, calling nothing in torch: the
// matmul of one recurrent step for a block of rows when the matrices are small (H = 32: a 16 x 32 @ 32 x 128
// product), where at::mm's per-call cost (views, dispatch, a threading decision) outweighs the work and
// where a worker of a row split must not start BLAS threads of its own. Tiles of 4 rows x 2 vectors
// (GCC/Clang vector extensions: 8 floats or 4 doubles, lowered to whatever SIMD the target has) keep
// 8 accumulators in registers over the whole K loop. beta is 0 (C is overwritten) or 1 (accumulate).
template <typename T>
inline void small_gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* Bm, int64_t ldb, T beta,
                       T* C, int64_t ldc) {
  typedef T V __attribute__((vector_size(32)));
  constexpr int64_t W = 32 / sizeof(T), NB = 2 * W, MR = 4;
  auto load = [](const T* p) { V v; std::memcpy(&v, p, sizeof v); return v; };
  auto store = [](T* p, V v) { std::memcpy(p, &v, sizeof v); };
  int64_t j = 0;
  for (; j + NB <= N; j += NB) {
    int64_t i = 0;
    for (; i + MR <= M; i += MR) {
      V acc[MR][2];
      for (int64_t r = 0; r < MR; ++r) {
        T* c = C + (i + r) * ldc + j;
        acc[r][0] = beta == T(0) ? V{} : load(c);
        acc[r][1] = beta == T(0) ? V{} : load(c + W);
      }
      for (int64_t k = 0; k < K; ++k) {
        const V b0 = load(Bm + k * ldb + j), b1 = load(Bm + k * ldb + j + W);
        for (int64_t r = 0; r < MR; ++r) {
          const T a = A[(i + r) * lda + k];
          acc[r][0] += a * b0;
          acc[r][1] += a * b1;
        }
      }
      for (int64_t r = 0; r < MR; ++r) {
        store(C + (i + r) * ldc + j, acc[r][0]);
        store(C + (i + r) * ldc + j + W, acc[r][1]);
      }
    }
    for (; i < M; ++i) {
      V a0 = beta == T(0) ? V{} : load(C + i * ldc + j), a1 = beta == T(0) ? V{} : load(C + i * ldc + j + W);
      for (int64_t k = 0; k < K; ++k) {
        const T a = A[i * lda + k];
        a0 += a * load(Bm + k * ldb + j);
        a1 += a * load(Bm + k * ldb + j + W);
      }
      store(C + i * ldc + j, a0);
      store(C + i * ldc + j + W, a1);
    }
  }
  for (int64_t i = 0; j < N && i < M; ++i) {  // the last N % NB columns
    T* c = C + i * ldc;
    for (int64_t jj = j; jj < N; ++jj) c[jj] = beta == T(0) ? T(0) : c[jj];
    for (int64_t k = 0; k < K; ++k) {
      const T a = A[i * lda + k];
      const T* b = Bm + k * ldb;
      for (int64_t jj = j; jj < N; ++jj) c[jj] += a * b[jj];
    }
  }
}

// How a kernel runs its time loop. Rows of a batch are independent over the whole sequence, so
// `workers` threads each run a contiguous share of the rows through every step, with no barrier per
// step; the weight gradients are single matmuls over all rows after the loop. Inside a share the rows go
// in blocks of `block` (the step's gate rows stay in L1 between the matmul and the gate math), and
// the per-step matmul is small_gemm (`small`) or torch's BLAS (at::mm on the whole batch, which may use
// torch's threads itself; then workers is 1).
struct Plan {
  bool small;
  int64_t workers, block;
};

// The plan for a batch of B rows whose step matmuls are at most (N, K) = (big, small) in size. `choice`
// is the kernel's "gemm=" option: "small", "blas", or "auto": small up to the LSTM's matmul at H = 32
// (4H x H = 128 x 32); and up to the LSTM's at H = 128 (N <= 512, K <= 128) when the rows really are split
// over two or more threads with at least 16 rows each; BLAS otherwise. Measured by benchmarks/step_gemm.py
// (2 threads, float32, training step of the native layer, results/step-gemm-2threads.txt): with the rows
// split, small won at every size from H = 32 to 128 for the LSTM and the GRU (B from 32 to 128, 4-21% at
// H = 64 and 128), tied at the GRU's H = 256 and lost at the LSTM's H = 256 and at H = 512; with B = 8 (one
// share) BLAS won at H = 128. Not measured: more than 2 threads, float64. (The earlier bound of H = 32 was
// measured while the split ran on one thread, see run_shares; at H = 32 small won there too.) Workers:
// torch's thread count, at least 8 rows each; 1 in a build without OpenMP, where the split cannot run in
// parallel (build.thread_flags).
inline Plan make_plan(const std::string& choice, int64_t B, int64_t N, int64_t K) {
  TORCH_CHECK(choice == "small" || choice == "blas" || choice == "auto", "rnnkit native: unknown gemm=", choice);
#ifdef _OPENMP
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), B / 8));
#else
  const int64_t workers = 1;
#endif
  const bool split = workers > 1 && B / workers >= 16;
  const bool small = choice == "small" ||
                     (choice == "auto" && (N * K <= 128 * 32 || (split && N <= 512 && K <= 128)));
  if (!small) return {false, 1, B};
  return {true, workers, 16};
}

// The value of option `name=` in options, or `fallback`.
inline std::string option(const Options& options, const std::string& name, const std::string& fallback) {
  for (const auto& o : options)
    if (o.rfind(name + "=", 0) == 0) return o.substr(name.size() + 1);
  return fallback;
}

// f(b0, b1) on plan.workers contiguous shares of [0, B), one per thread of torch's own pool (at::parallel_for),
// whose threads call no torch function inside (see small_gemm): no thread started per call, and no thread of
// ours sharing a core with torch's OpenMP threads (they spin a while after the matmuls around the loop).
// at::parallel_for is inline: it runs in parallel only in a build with OpenMP on (build.thread_flags), else
// serially on this thread; module.cpp's row_split_threads lets the tests see which. An exception in a share
// is rethrown here.
template <typename F> inline void run_shares(const Plan& plan, int64_t B, const F& f) {
  const int64_t n = std::min<int64_t>(plan.workers, B);
  if (n <= 1) return f(int64_t(0), B);
  at::parallel_for(0, n, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) f(B * k / n, B * (k + 1) / n);
  });
}

// C (M, N) = A (M, K) @ Bm (K, N) + beta * C by the plan's gemm.
template <typename T>
inline void plan_gemm(const Plan& plan, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* Bm,
                      int64_t ldb, T beta, T* C, int64_t ldc) {
  if (plan.small) {
    small_gemm(M, N, K, A, lda, Bm, ldb, beta, C, ldc);
  } else {
    gemm(M, N, K, A, lda, Bm, ldb, false, beta, C, ldc);
  }
}

// f(b) for every batch row, split over torch's threads when a step has enough work (width per row).
template <typename F> inline void for_rows(int64_t B, int64_t width, const F& f) {
  at::parallel_for(0, B, std::max<int64_t>(1, 2048 / std::max<int64_t>(width, 1)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) f(b);
  });
}

// One call: sizes, direction, and the per-sequence multipliers of the reference loop.
template <typename T> struct Loop {
  int64_t B, Tn;
  bool reverse;
  const bool* mask;   // (B, T): false steps carry the state and output zero; null: every step valid
  const T* rec_mask;  // (B, S0): recurrent dropout on state[0] before the recurrent matmul; null: none
  int64_t time(int64_t n) const { return reverse ? Tn - 1 - n : n; }  // processing step n -> time t
  bool valid(int64_t b, int64_t t) const { return mask == nullptr || mask[b * Tn + t]; }
};

template <typename T>
inline Loop<T> make_loop(const Tensor& x, const Tensor& mask, const Tensor& rec_mask, bool reverse) {
  return {x.size(0), x.size(1), reverse, mask.numel() ? mask.data_ptr<bool>() : nullptr,
          rec_mask.numel() ? rec_mask.data_ptr<T>() : nullptr};
}

// One state tensor: its value entering every step, its final value, its zoneout weights.
template <typename T> struct State {
  T* in;          // (B, T, S): in[b, t] is the state step t reads
  T* final;       // (B, S)
  const T* zone;  // (B, T, S): the weight kept on the previous value; null: no zoneout
  int64_t S, Tn;
  T* at(int64_t b, int64_t t) const { return in + (b * Tn + t) * S; }
  const T* z(int64_t b, int64_t t) const { return zone ? zone + (b * Tn + t) * S : nullptr; }
};

template <typename T>
inline State<T> make_state(const Tensor& in, const Tensor& final, const Tensors& zone, size_t k) {
  return {in.data_ptr<T>(), final.defined() ? final.data_ptr<T>() : nullptr,
          zone.empty() ? nullptr : zone[k].data_ptr<T>(), in.size(2), in.size(1)};
}

// (B, T, S) storage of the state entering each step, seeded with s0 at the first processed step.
inline Tensor state_store(const Tensor& s0, int64_t Tn, bool reverse) {
  Tensor in = at::empty({s0.size(0), Tn, s0.size(1)}, s0.options());
  in.select(1, reverse ? Tn - 1 : 0).copy_(s0);
  return in;
}

// (B*T, n) view of a (B, T, n) tensor: the rows the matmuls before and after the loop read.
inline Tensor flat(const Tensor& t) { return t.reshape({-1, t.size(-1)}); }

// The recurrent inputs of all steps (B, T, S0): state[0] entering each step times rec_mask.
inline Tensor recurrent_inputs(const Tensor& in, const Tensor& rec_mask) {
  return rec_mask.numel() ? in * rec_mask.unsqueeze(1) : in;
}

// The reference loop's zoneout then mask, for row b at processing step n: writes the state after
// the step (into the next step's slot, or the final state) from the state before it and the
// cell's candidate (S values). Returns the row written.
template <typename T>
inline const T* settle(const Loop<T>& L, const State<T>& s, int64_t b, int64_t n, const T* cand) {
  const int64_t t = L.time(n), S = s.S;
  const T* prev = s.at(b, t);
  T* next = n + 1 < L.Tn ? s.at(b, L.time(n + 1)) : s.final + b * S;
  const T* z = s.z(b, t);
  if (!L.valid(b, t)) {
    std::copy(prev, prev + S, next);
  } else if (z) {
    RNNKIT_IVDEP
    for (int64_t j = 0; j < S; ++j) next[j] = z[j] * prev[j] + (T(1) - z[j]) * cand[j];
  } else {
    std::copy(cand, cand + S, next);
  }
  return next;
}

// Step t's output for row b: state[0] after the step where valid, else zero; `last` keeps the
// output of the row's latest valid step. seq (B, T, S0), last (B, S0).
template <typename T>
inline void emit(const Loop<T>& L, int64_t b, int64_t t, const T* h, int64_t S, T* seq, T* last) {
  T* out = seq + (b * L.Tn + t) * S;
  if (L.valid(b, t)) {
    std::copy(h, h + S, out);
    std::copy(h, h + S, last + b * S);
  } else {
    std::fill(out, out + S, T(0));
  }
}

// The adjoint of settle and emit for row b at step t. g (S) holds the gradient on the state after
// the step and becomes the direct gradient on the state before it (the cell's own terms are added
// later); dcand (S) receives the gradient on the cell's candidate. dout, dlast: gradients on the
// step's output and on `last` (state 0 only; null where they do not reach this step).
template <typename T>
inline void unsettle(const Loop<T>& L, const State<T>& s, int64_t b, int64_t t, T* g, const T* dout,
                     const T* dlast, T* dcand) {
  const int64_t S = s.S;
  if (!L.valid(b, t)) {
    std::fill(dcand, dcand + S, T(0));
    return;
  }
  if (dout) {
    RNNKIT_IVDEP
    for (int64_t j = 0; j < S; ++j) g[j] += dout[j];
  }
  if (dlast) {
    RNNKIT_IVDEP
    for (int64_t j = 0; j < S; ++j) g[j] += dlast[j];
  }
  const T* z = s.z(b, t);
  if (z) {
    RNNKIT_IVDEP
    for (int64_t j = 0; j < S; ++j) {
      dcand[j] = (T(1) - z[j]) * g[j];
      g[j] = z[j] * g[j];
    }
  } else {
    std::copy(g, g + S, dcand);
    std::fill(g, g + S, T(0));
  }
}

// For each row, the time of its last valid step in processing order (-1: none); `last` is its output.
template <typename T> inline std::vector<int64_t> last_steps(const Loop<T>& L) {
  std::vector<int64_t> tl(L.B, -1);
  for (int64_t b = 0; b < L.B; ++b)
    for (int64_t n = 0; n < L.Tn; ++n)
      if (L.valid(b, L.time(n))) tl[b] = L.time(n);
  return tl;
}

// Row b of step t's recurrent input times the recurrent-dropout mask, into row b of buf (B, S0).
template <typename T>
inline void mask_recurrent_row(const Loop<T>& L, const State<T>& s, int64_t t, int64_t b, T* buf) {
  const int64_t S = s.S;
  const T* h = s.at(b, t);
  const T* m = L.rec_mask + b * S;
  RNNKIT_IVDEP
  for (int64_t j = 0; j < S; ++j) buf[b * S + j] = h[j] * m[j];
}

// Row b of g0 (B, S0) += rec_mask * row b of buf: the gradient the recurrent matmul sends to state[0].
template <typename T>
inline void add_recurrent_grad_row(const Loop<T>& L, int64_t b, int64_t S0, T* g0, const T* buf) {
  T* g = g0 + b * S0;
  const T* d = buf + b * S0;
  if (L.rec_mask) {  // two loops, not `m ? m[j] : 1` in one: a masked load from null (lstm.cpp's note)
    const T* m = L.rec_mask + b * S0;
    RNNKIT_IVDEP
    for (int64_t j = 0; j < S0; ++j) g[j] += m[j] * d[j];
  } else {
    RNNKIT_IVDEP
    for (int64_t j = 0; j < S0; ++j) g[j] += d[j];
  }
}

// The B rows of step t's recurrent input, state[0] times rec_mask: {pointer, leading dimension}.
// Without recurrent dropout these are the stored states themselves; with it, buf (B, S0).
template <typename T>
inline std::pair<const T*, int64_t> recurrent_input(const Loop<T>& L, const State<T>& s, int64_t t, T* buf) {
  if (!L.rec_mask) return {s.at(0, t), L.Tn * s.S};
  for_rows(L.B, s.S, [&](int64_t b) { mask_recurrent_row(L, s, t, b, buf); });
  return {buf, s.S};
}

// g0 (B, S0) += rec_mask * (buf + dG (B, G) @ W (G, S0)): the gradient reaching state[0] through
// the recurrent matmul. buf (B, S0) holds a partial gradient on the recurrent input when
// `partial` (GRU's reset-before candidate), else it is scratch.
template <typename T>
inline void recurrent_grad(const Loop<T>& L, const T* dG, int64_t ldg, const T* W, int64_t G, int64_t S0, T* g0,
                           T* buf, bool partial = false) {
  if (!L.rec_mask && !partial) {
    gemm(L.B, S0, G, dG, ldg, W, S0, false, T(1), g0, S0);
    return;
  }
  gemm(L.B, S0, G, dG, ldg, W, S0, false, partial ? T(1) : T(0), buf, S0);
  for_rows(L.B, S0, [&](int64_t b) { add_recurrent_grad_row(L, b, S0, g0, buf); });
}

// Rows [b0, b1) of step t's recurrent input (recurrent_input for a share of the rows): {pointer to row
// b0, leading dimension}; with recurrent dropout, written into rows [b0, b1) of buf (B, S0).
template <typename T>
inline std::pair<const T*, int64_t> recurrent_input_rows(const Loop<T>& L, const State<T>& s, int64_t t, int64_t b0,
                                                         int64_t b1, T* buf) {
  if (!L.rec_mask) return {s.at(b0, t), L.Tn * s.S};
  for (int64_t b = b0; b < b1; ++b) mask_recurrent_row(L, s, t, b, buf);
  return {buf + b0 * s.S, s.S};
}

// recurrent_grad for rows [b0, b1) by the plan's gemm, dG's row b0 at dG0 (rows ldg apart).
template <typename T>
inline void recurrent_grad_rows(const Plan& plan, const Loop<T>& L, int64_t b0, int64_t b1, const T* dG0, int64_t ldg,
                                const T* W, int64_t G, int64_t S0, T* g0, T* buf, bool partial = false) {
  const int64_t M = b1 - b0;
  if (!L.rec_mask && !partial) {
    plan_gemm(plan, M, S0, G, dG0, ldg, W, S0, T(1), g0 + b0 * S0, S0);
    return;
  }
  plan_gemm(plan, M, S0, G, dG0, ldg, W, S0, partial ? T(1) : T(0), buf + b0 * S0, S0);
  for (int64_t b = b0; b < b1; ++b) add_recurrent_grad_row(L, b, S0, g0, buf);
}

// The kernels, one family per file.
#define RNNKIT_KERNEL(name)                                                                                     \
  Tensors name##_forward(const Tensor& x, const Tensors& state, const Tensors& params, const Tensor& mask,      \
                         const Tensor& rec_mask, const Tensors& zone, bool reverse, const Options& options);   \
  Tensors name##_backward(const Tensor& dseq, const Tensor& dlast, const Tensors& dfinal, const Tensor& x,      \
                          const Tensors& params, const Tensor& mask, const Tensor& rec_mask, const Tensors& zone, \
                          bool reverse, const Options& options, const Tensors& saved, bool need_dx);
RNNKIT_KERNEL(elman)
RNNKIT_KERNEL(jordan)
RNNKIT_KERNEL(lstm)
RNNKIT_KERNEL(gru)
RNNKIT_KERNEL(lnlstm)
#undef RNNKIT_KERNEL

}  // namespace rnnkit
