// GRU sequence kernels in both forms of cells/gru.py (gates r, z, n): reset_after (torch/cuDNN)
// and reset-before (Cho et al. 2014, the reset gate scales h before the candidate's matmul).
#include "common.h"

namespace rnnkit {
namespace {

// params: weight_ih (3H, I), weight_hh (3H, H), bias_ih, bias_hh (3H).
// options: {"reset_after" | "reset_before", "gemm=auto|small|blas"}: the per-step matmuls and the row split
// over threads as the LSTM's (common.h make_plan).
// saved: Gs (B, T, 3H) activations r, z, n; Hin (B, T, H) states entering; and
//   reset_after: Hn (B, T, H) = W_hn h_rec + b_hn, which the reset gate scales;
//   reset-before: RH (B, T, H) = r * h_rec, the candidate's recurrent input.
template <typename T>
Tensors gru_fwd(const Tensor& x, const Tensors& state, const Tensors& p, const Tensor& mask, const Tensor& rec_mask,
                const Tensors& zone, bool reverse, bool reset_after, const Options& options) {
  const Loop<T> L = make_loop<T>(x, mask, rec_mask, reverse);
  const int64_t B = L.B, Tn = L.Tn, H = p[1].size(1), G = 3 * H;
  // W_ih x + b_ih + b_hh for all steps; reset_after keeps b_hn inside r * (W_hn h + b_hn).
  Tensor bias = reset_after ? p[2] + at::cat({p[3].slice(0, 0, 2 * H), at::zeros_like(p[3].slice(0, 2 * H))})
                            : p[2] + p[3];
  Tensor Gs = at::addmm(bias, flat(x), p[0].t()).view({B, Tn, G});
  Tensor X2 = at::empty({B, Tn, H}, x.options());  // Hn or RH
  Tensor Hin = state_store(state[0], Tn, reverse), final = at::empty_like(state[0]);
  Tensor seq = at::empty({B, Tn, H}, x.options()), last = at::zeros_like(state[0]);
  Tensor hg = at::empty({B, G}, x.options()), cand = at::empty_like(state[0]), buf = at::empty_like(state[0]);
  const Tensor Wt = p[1].t().contiguous();  // (H, 3H): columns r, z, n
  const State<T> s = make_state<T>(Hin, final, zone, 0);
  T *gs = Gs.data_ptr<T>(), *x2 = X2.data_ptr<T>(), *hgp = hg.data_ptr<T>(), *cd = cand.data_ptr<T>();
  T *out = seq.data_ptr<T>(), *lst = last.data_ptr<T>(), *bufp = buf.data_ptr<T>();
  const T *W = Wt.data_ptr<T>(), *b_hn = p[3].data_ptr<T>() + 2 * H;
  // h_new = (1 - z) n + z h, written to the candidate row, then zoneout / mask / output.
  auto finish = [&](int64_t b, int64_t n, int64_t t, const T* gz, const T* gn) {
    const T* h0 = s.at(b, t);
    T* c = cd + b * H;
    RNNKIT_IVDEP
    for (int64_t j = 0; j < H; ++j) c[j] = (T(1) - gz[j]) * gn[j] + gz[j] * h0[j];
    emit(L, b, t, settle(L, s, b, n, c), H, out, lst);
  };
  const Plan plan = make_plan(option(options, "gemm", "auto"), B, G, H);
  run_shares(plan, B, [&](int64_t b0, int64_t b1) {
    for (int64_t n = 0; n < Tn; ++n) {
      const int64_t t = L.time(n);
      for (int64_t r0 = b0; r0 < b1; r0 += plan.block) {
        const int64_t r1 = std::min(r0 + plan.block, b1), M = r1 - r0;
        auto [h, ld] = recurrent_input_rows(L, s, t, r0, r1, bufp);
        if (reset_after) {
          plan_gemm(plan, M, G, H, h, ld, W, G, T(0), hgp + r0 * G, G);  // h_rec W_hh^T (M, 3H)
          for (int64_t b = r0; b < r1; ++b) {
            T* g = gs + (b * Tn + t) * G;
            const T* hr = hgp + b * G;
            T* hn = x2 + (b * Tn + t) * H;
            RNNKIT_IVDEP
            for (int64_t j = 0; j < 2 * H; ++j) g[j] = sigmoid_(g[j] + hr[j]);  // r, z
            RNNKIT_IVDEP
            for (int64_t j = 0; j < H; ++j) {
              hn[j] = hr[2 * H + j] + b_hn[j];
              g[2 * H + j] = tanh_(g[2 * H + j] + g[j] * hn[j]);
            }
            finish(b, n, t, g + H, g + 2 * H);
          }
          continue;
        }
        T* g0 = gs + (r0 * Tn + t) * G;
        plan_gemm(plan, M, 2 * H, H, h, ld, W, G, T(1), g0, Tn * G);  // r, z += h_rec W_h{r,z}^T
        for (int64_t b = r0; b < r1; ++b) {
          T* g = gs + (b * Tn + t) * G;
          const T* hrow = h + (b - r0) * ld;
          T* rh = x2 + (b * Tn + t) * H;
          RNNKIT_IVDEP
          for (int64_t j = 0; j < 2 * H; ++j) g[j] = sigmoid_(g[j]);
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) rh[j] = g[j] * hrow[j];
        }
        plan_gemm(plan, M, H, H, x2 + (r0 * Tn + t) * H, Tn * H, W + 2 * H, G, T(1), g0 + 2 * H, Tn * G);
        for (int64_t b = r0; b < r1; ++b) {
          T* g = gs + (b * Tn + t) * G;
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) g[2 * H + j] = tanh_(g[2 * H + j]);
          finish(b, n, t, g + H, g + 2 * H);
        }
      }
    }
  });
  return {seq, last, final, Gs, Hin, X2};
}

template <typename T>
Tensors gru_bwd(const Tensor& dseq, const Tensor& dlast, const Tensors& dfinal, const Tensor& x, const Tensors& p,
                const Tensor& mask, const Tensor& rec_mask, const Tensors& zone, bool reverse, bool reset_after,
                const Options& options, const Tensors& saved, bool need_dx) {
  const Loop<T> L = make_loop<T>(x, mask, rec_mask, reverse);
  const int64_t B = L.B, Tn = L.Tn, H = p[1].size(1), G = 3 * H;
  const Tensor &Gs = saved[0], &Hin = saved[1], &X2 = saved[2];
  const State<T> s = make_state<T>(Hin, Tensor(), zone, 0);
  // dGx (B, T, 3H): on the input-side pre-activations; reset_after also needs dGh, the gradient
  // on h_rec W_hh^T + b_hh, which differs in its n block (r * dn instead of dn).
  Tensor dGx = at::empty_like(Gs), dGh = reset_after ? at::empty_like(Gs) : Tensor();
  Tensor g = dfinal[0].clone(), dh = at::empty_like(g), drh = at::empty_like(g), buf = at::empty_like(g);
  Tensor hrec = at::empty_like(g);
  const Tensor W_hh_ = p[1].contiguous();
  const T *gs = Gs.data_ptr<T>(), *x2 = X2.data_ptr<T>(), *dout = dseq.data_ptr<T>(), *dl = dlast.data_ptr<T>();
  const T* W_hh = W_hh_.data_ptr<T>();  // (3H, H)
  T *dx = dGx.data_ptr<T>(), *dgh = reset_after ? dGh.data_ptr<T>() : nullptr, *gp = g.data_ptr<T>();
  T *dhp = dh.data_ptr<T>(), *drhp = drh.data_ptr<T>(), *bufp = buf.data_ptr<T>(), *hrecp = hrec.data_ptr<T>();
  const std::vector<int64_t> tl = last_steps(L);
  const Plan plan = make_plan(option(options, "gemm", "auto"), B, G, H);
  run_shares(plan, B, [&](int64_t b0, int64_t b1) {
    for (int64_t n = Tn - 1; n >= 0; --n) {
      const int64_t t = L.time(n);
      for (int64_t r0 = b0; r0 < b1; r0 += plan.block) {
        const int64_t r1 = std::min(r0 + plan.block, b1), M = r1 - r0;
        for (int64_t b = r0; b < r1; ++b) {
          const int64_t r = (b * Tn + t) * H;
          T *d = dhp + b * H, *g0 = gp + b * H, *dg = dx + 3 * r;
          unsettle(L, s, b, t, g0, dout + r, tl[b] == t ? dl + b * H : nullptr, d);
          const T *gr = gs + 3 * r, *gz = gr + H, *gn = gr + 2 * H, *h0 = s.at(b, t);
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) {
            g0[j] += d[j] * gz[j];
            dg[H + j] = d[j] * (h0[j] - gn[j]) * gz[j] * (T(1) - gz[j]);
            dg[2 * H + j] = d[j] * (T(1) - gz[j]) * (T(1) - gn[j] * gn[j]);
          }
          if (reset_after) {
            const T* hn = x2 + r;
            T* dh2 = dgh + 3 * r;
            RNNKIT_IVDEP
            for (int64_t j = 0; j < H; ++j) {
              dg[j] = dg[2 * H + j] * hn[j] * gr[j] * (T(1) - gr[j]);
              dh2[j] = dg[j];
              dh2[H + j] = dg[H + j];
              dh2[2 * H + j] = dg[2 * H + j] * gr[j];
            }
          }
        }
        if (reset_after) {
          recurrent_grad_rows(plan, L, r0, r1, dgh + (r0 * Tn + t) * G, Tn * G, W_hh, G, H, gp, bufp);
          continue;
        }
        // on r * h_rec: dn W_hn (M, H)
        plan_gemm(plan, M, H, H, dx + (r0 * Tn + t) * G + 2 * H, Tn * G, W_hh + 2 * H * H, H, T(0), drhp + r0 * H, H);
        auto [hr, ld] = recurrent_input_rows(L, s, t, r0, r1, hrecp);
        for (int64_t b = r0; b < r1; ++b) {
          const int64_t r = (b * Tn + t) * H;
          const T *gr = gs + 3 * r, *h = hr + (b - r0) * ld, *d = drhp + b * H;
          T *dg = dx + 3 * r, *hb = bufp + b * H;
          RNNKIT_IVDEP
          for (int64_t j = 0; j < H; ++j) {
            dg[j] = d[j] * h[j] * gr[j] * (T(1) - gr[j]);
            hb[j] = d[j] * gr[j];  // the part of the gradient on h_rec that passes through r * h_rec
          }
        }
        recurrent_grad_rows(plan, L, r0, r1, dx + (r0 * Tn + t) * G, Tn * G, W_hh, 2 * H, H, gp, bufp, true);
      }
    }
  });
  Tensor dGf = flat(dGx), Hrec = flat(recurrent_inputs(Hin, rec_mask));
  Tensor dW_hh, db_hh;
  if (reset_after) {
    dW_hh = at::mm(flat(dGh).t(), Hrec);
    db_hh = flat(dGh).sum(0);
  } else {  // rows r, z see h_rec; rows n see r * h_rec
    dW_hh = at::cat({at::mm(dGf.slice(1, 0, 2 * H).t(), Hrec), at::mm(dGf.slice(1, 2 * H).t(), flat(X2))});
    db_hh = dGf.sum(0);
  }
  return {need_dx ? at::mm(dGf, p[0]).view_as(x) : Tensor(), g, at::mm(dGf.t(), flat(x)), dW_hh, dGf.sum(0),
          db_hh};
}

}  // namespace

Tensors gru_forward(const Tensor& x, const Tensors& state, const Tensors& params, const Tensor& mask,
                    const Tensor& rec_mask, const Tensors& zone, bool reverse, const Options& options) {
  Tensors out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gru_forward", [&] {
    out = gru_fwd<scalar_t>(x, state, params, mask, rec_mask, zone, reverse, options.at(0) == "reset_after", options);
  });
  return out;
}

Tensors gru_backward(const Tensor& dseq, const Tensor& dlast, const Tensors& dfinal, const Tensor& x,
                     const Tensors& params, const Tensor& mask, const Tensor& rec_mask, const Tensors& zone,
                     bool reverse, const Options& options, const Tensors& saved, bool need_dx) {
  Tensors out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gru_backward", [&] {
    out = gru_bwd<scalar_t>(dseq, dlast, dfinal, x, params, mask, rec_mask, zone, reverse,
                            options.at(0) == "reset_after", options, saved, need_dx);
  });
  return out;
}

}  // namespace rnnkit
