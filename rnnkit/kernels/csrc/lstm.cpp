// LSTM sequence kernel with optional peepholes and projection (cells/lstm.py; gates i, f, g, o).
#include "common.h"

namespace rnnkit {
namespace {

// params: weight_ih (4H, I), weight_hh (4H, R), bias_ih, bias_hh (4H), weight_hr (R, H) or empty,
// weight_c (3, H) or empty. State (h (R), c (H)); R = H without a projection. With weight_ih, bias_ih and
// bias_hh empty, x (B, T, 4H) is the input projection W_ih x + b itself (an embedding's rows projected
// once, native.run_embedded) and backward returns its gradient dG in place of dx, dW_ih and db.
// options: "gemm=auto|small|blas", the per-step matmul and row split (common.h make_plan).
// saved: Gs (B, T, 4H) gate activations, Cs (B, T, H) candidate cells, Hin (B, T, R), Cin (B, T, H)
// states entering each step, and with a projection Ps (B, T, H) = o * tanh(c) before W_hr.
template <typename T>
Tensors lstm_fwd(const Tensor& x, const Tensors& state, const Tensors& p, const Tensor& mask, const Tensor& rec_mask,
                 const Tensors& zone, bool reverse, const Options& options) {
  const Loop<T> L = make_loop<T>(x, mask, rec_mask, reverse);
  const int64_t B = L.B, Tn = L.Tn, G = p[1].size(0), H = G / 4, R = p[1].size(1);
  const bool proj = p[4].numel() > 0, peep = p[5].numel() > 0;
  // W_ih x + b for all steps. An absent weight_ih means x holds it already: a fresh gather that only
  // native.run_embedded holds, so the gates are computed in its storage (backward reads only x's sizes).
  Tensor Gs = p[0].numel() ? at::addmm(p[2] + p[3], flat(x), p[0].t()).view({B, Tn, G}) : x;
  Tensor Cs = at::empty({B, Tn, H}, x.options());
  Tensor Ps = proj ? at::empty({B, Tn, H}, x.options()) : Tensor();
  Tensor Hin = state_store(state[0], Tn, reverse), Cin = state_store(state[1], Tn, reverse);
  Tensor hT = at::empty_like(state[0]), cT = at::empty_like(state[1]);
  Tensor seq = at::empty({B, Tn, R}, x.options()), last = at::zeros_like(state[0]);
  Tensor hcand = at::empty({B, proj ? R : H}, x.options()), buf = at::empty_like(state[0]);
  const Tensor Wt = p[1].t().contiguous(), Wrt = proj ? p[4].t().contiguous() : Tensor();  // (R, 4H), (H, R)
  const State<T> sh = make_state<T>(Hin, hT, zone, 0), sc = make_state<T>(Cin, cT, zone, 1);
  T *gs = Gs.data_ptr<T>(), *cs = Cs.data_ptr<T>(), *hc = hcand.data_ptr<T>(), *bufp = buf.data_ptr<T>();
  T *ps = proj ? Ps.data_ptr<T>() : nullptr, *out = seq.data_ptr<T>(), *lst = last.data_ptr<T>();
  const T *W_hh = Wt.data_ptr<T>(), *W_hr = proj ? Wrt.data_ptr<T>() : nullptr;
  const T* wc = peep ? p[5].data_ptr<T>() : nullptr;  // rows i, f, o
  const Plan plan = make_plan(option(options, "gemm", "auto"), B, G, R);
  run_shares(plan, B, [&](int64_t b0, int64_t b1) {
    for (int64_t n = 0; n < Tn; ++n) {
      const int64_t t = L.time(n);
      for (int64_t r0 = b0; r0 < b1; r0 += plan.block) {
        const int64_t r1 = std::min(r0 + plan.block, b1);
        auto [h, ld] = recurrent_input_rows(L, sh, t, r0, r1, bufp);
        plan_gemm(plan, r1 - r0, G, R, h, ld, W_hh, G, T(1), gs + (r0 * Tn + t) * G, Tn * G);  // += h_rec W_hh^T
        for (int64_t b = r0; b < r1; ++b) {
          T* gi = gs + (b * Tn + t) * G;
          T *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
          T* c = cs + (b * Tn + t) * H;
          const T* c0 = sc.at(b, t);
          if (wc) {
            RNNKIT_IVDEP
            for (int64_t j = 0; j < H; ++j) gi[j] += wc[j] * c0[j], gf[j] += wc[H + j] * c0[j];
          }
          RNNKIT_IVDEP
          for (int64_t j = 0; j < 2 * H; ++j) gi[j] = sigmoid_(gi[j]);  // i and f
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) {
            gg[j] = tanh_(gg[j]);
            c[j] = gf[j] * c0[j] + gi[j] * gg[j];
          }
          if (wc) {
            RNNKIT_IVDEP
            for (int64_t j = 0; j < H; ++j) go[j] += wc[2 * H + j] * c[j];
          }
          T* hh = proj ? ps + (b * Tn + t) * H : hc + b * H;
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) {
            go[j] = sigmoid_(go[j]);
            hh[j] = go[j] * tanh_(c[j]);
          }
          settle(L, sc, b, n, c);
          if (!proj) emit(L, b, t, settle(L, sh, b, n, hh), R, out, lst);
        }
        if (proj) {  // h = (o * tanh c) W_hr^T
          plan_gemm(plan, r1 - r0, R, H, ps + (r0 * Tn + t) * H, Tn * H, W_hr, R, T(0), hc + r0 * R, R);
          for (int64_t b = r0; b < r1; ++b) emit(L, b, t, settle(L, sh, b, n, hc + b * R), R, out, lst);
        }
      }
    }
  });
  Tensors out_ = {seq, last, hT, cT, Gs, Cs, Hin, Cin};
  if (proj) out_.push_back(Ps);
  return out_;
}

template <typename T>
Tensors lstm_bwd(const Tensor& dseq, const Tensor& dlast, const Tensors& dfinal, const Tensor& x, const Tensors& p,
                 const Tensor& mask, const Tensor& rec_mask, const Tensors& zone, bool reverse, const Options& options,
                 const Tensors& saved, bool need_dx) {
  const Loop<T> L = make_loop<T>(x, mask, rec_mask, reverse);
  const int64_t B = L.B, Tn = L.Tn, G = p[1].size(0), H = G / 4, R = p[1].size(1);
  const bool proj = p[4].numel() > 0, peep = p[5].numel() > 0, projected = p[0].numel() == 0;
  const Tensor &Gs = saved[0], &Cs = saved[1], &Hin = saved[2], &Cin = saved[3];
  const State<T> sh = make_state<T>(Hin, Tensor(), zone, 0), sc = make_state<T>(Cin, Tensor(), zone, 1);
  Tensor dG = at::empty_like(Gs);                                            // on gate pre-activations
  Tensor dP = proj ? at::empty({B, Tn, R}, x.options()) : Tensor();         // on the projected candidate h
  Tensor gh = dfinal[0].clone(), gc = dfinal[1].clone();                    // on the state after the step
  Tensor dhh = at::empty({B, H}, x.options()), dc = at::empty({B, H}, x.options()), buf = at::empty_like(gh);
  const Tensor W_hh_ = p[1].contiguous();
  const T *gs = Gs.data_ptr<T>(), *cs = Cs.data_ptr<T>(), *dout = dseq.data_ptr<T>(), *dl = dlast.data_ptr<T>();
  const T *W_hh = W_hh_.data_ptr<T>(), *W_hr = proj ? p[4].data_ptr<T>() : nullptr;
  const T* wc = peep ? p[5].data_ptr<T>() : nullptr;
  T *dg = dG.data_ptr<T>(), *dp = proj ? dP.data_ptr<T>() : nullptr, *ghp = gh.data_ptr<T>(), *gcp = gc.data_ptr<T>();
  T *dhhp = dhh.data_ptr<T>(), *dcp = dc.data_ptr<T>(), *bufp = buf.data_ptr<T>();
  const std::vector<int64_t> tl = last_steps(L);
  const Plan plan = make_plan(option(options, "gemm", "auto"), B, G, R);
  run_shares(plan, B, [&](int64_t b0, int64_t b1) {
    for (int64_t n = Tn - 1; n >= 0; --n) {
      const int64_t t = L.time(n);
      for (int64_t r0 = b0; r0 < b1; r0 += plan.block) {
        const int64_t r1 = std::min(r0 + plan.block, b1);
        for (int64_t b = r0; b < r1; ++b) {
          T* dh_cand = proj ? dp + (b * Tn + t) * R : dhhp + b * H;
          unsettle(L, sh, b, t, ghp + b * R, dout + (b * Tn + t) * R, tl[b] == t ? dl + b * R : nullptr, dh_cand);
          unsettle(L, sc, b, t, gcp + b * H, (const T*)nullptr, (const T*)nullptr, dcp + b * H);
        }
        if (proj)  // dP W_hr
          plan_gemm(plan, r1 - r0, H, R, dp + (r0 * Tn + t) * R, Tn * R, W_hr, H, T(0), dhhp + r0 * H, H);
        // The peephole terms by a compile-time switch, not `wc ? wc[j] : 0` in the loop: GCC turns that
        // into masked loads from the null pointer, which AMD's CPUs run through a microcode assist
        // (measured: the backward loop 3x slower than the forward one on a Zen CPU).
        auto gate_grads = [&](auto peephole) {
          constexpr bool P = decltype(peephole)::value;
          for (int64_t b = r0; b < r1; ++b) {
            const T* gi = gs + (b * Tn + t) * G;
            const T *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
            const T *c = cs + (b * Tn + t) * H, *c0 = sc.at(b, t), *dh = dhhp + b * H;
            T *d = dg + (b * Tn + t) * G, *dcb = dcp + b * H, *g0 = gcp + b * H;
            RNNKIT_IVDEP
            for (int64_t j = 0; j < H; ++j) {
              const T tc = tanh_(c[j]);
              const T dopre = dh[j] * tc * go[j] * (T(1) - go[j]);
              T dcj = dcb[j] + dh[j] * go[j] * (T(1) - tc * tc);
              if constexpr (P) dcj += wc[2 * H + j] * dopre;
              const T dipre = dcj * gg[j] * gi[j] * (T(1) - gi[j]);
              const T dfpre = dcj * c0[j] * gf[j] * (T(1) - gf[j]);
              d[j] = dipre;
              d[H + j] = dfpre;
              d[2 * H + j] = dcj * gi[j] * (T(1) - gg[j] * gg[j]);
              d[3 * H + j] = dopre;
              if constexpr (P) {
                g0[j] += dcj * gf[j] + wc[j] * dipre + wc[H + j] * dfpre;
              } else {
                g0[j] += dcj * gf[j];
              }
            }
          }
        };
        if (wc) {
          gate_grads(std::true_type{});
        } else {
          gate_grads(std::false_type{});
        }
        recurrent_grad_rows(plan, L, r0, r1, dg + (r0 * Tn + t) * G, Tn * G, W_hh, G, R, ghp, bufp);
      }
    }
  });
  Tensor dGf = flat(dG);
  Tensor db = projected ? Tensor() : dGf.sum(0);  // a projected input took the biases with it
  Tensor dW_hr = proj ? at::mm(flat(dP).t(), flat(saved[4])) : Tensor();
  Tensor dwc;
  if (peep) {  // peephole terms: i, f see the cell entering the step, o the new candidate
    Tensor dGr = dG.view({B, Tn, 4, H});
    dwc = at::stack({(dGr.select(2, 0) * Cin).sum({0, 1}), (dGr.select(2, 1) * Cin).sum({0, 1}),
                     (dGr.select(2, 3) * Cs).sum({0, 1})});
  }
  Tensor dW_hh = at::mm(dGf.t(), flat(recurrent_inputs(Hin, rec_mask)));
  if (projected) return {need_dx ? dG : Tensor(), gh, gc, Tensor(), dW_hh, Tensor(), Tensor(), dW_hr, dwc};
  return {need_dx ? at::mm(dGf, p[0]).view_as(x) : Tensor(), gh, gc, at::mm(dGf.t(), flat(x)), dW_hh, db,
          db.clone(), dW_hr, dwc};
}

}  // namespace

Tensors lstm_forward(const Tensor& x, const Tensors& state, const Tensors& params, const Tensor& mask,
                     const Tensor& rec_mask, const Tensors& zone, bool reverse, const Options& options) {
  Tensors out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_forward", [&] {
    out = lstm_fwd<scalar_t>(x, state, params, mask, rec_mask, zone, reverse, options);
  });
  return out;
}

Tensors lstm_backward(const Tensor& dseq, const Tensor& dlast, const Tensors& dfinal, const Tensor& x,
                      const Tensors& params, const Tensor& mask, const Tensor& rec_mask, const Tensors& zone,
                      bool reverse, const Options& options, const Tensors& saved, bool need_dx) {
  Tensors out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_backward", [&] {
    out = lstm_bwd<scalar_t>(dseq, dlast, dfinal, x, params, mask, rec_mask, zone, reverse, options, saved, need_dx);
  });
  return out;
}

}  // namespace rnnkit
