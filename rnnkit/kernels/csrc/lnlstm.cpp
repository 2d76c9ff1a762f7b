// Layer-normalised LSTM sequence kernel (cells/layernorm_lstm.py; gates i, f, g, o).
#include "common.h"

namespace rnnkit {
namespace {

// The cell's eps (LayerNormLSTMCell.eps), passed by native.py as the option "eps=<repr of the float>".
double parse_eps(const Options& options) {
  for (const auto& o : options)
    if (o.rfind("eps=", 0) == 0) {
      const double eps = std::stod(o.substr(4));
      TORCH_CHECK(eps >= 0 && std::isfinite(eps), "rnnkit native: layer norm eps must be finite and >= 0, got ", o);
      return eps;
    }
  TORCH_CHECK(false, "rnnkit native: the lnlstm kernel needs the option eps=<value>");
  return 0;
}

// v (n) <- (v - mean) * rstd in place; returns rstd (biased variance, as F.layer_norm).
template <typename T> inline T normalise(T* v, int64_t n, double eps) {
  T mean = 0, var = 0;
  RNNKIT_IVDEP
  for (int64_t j = 0; j < n; ++j) mean += v[j];
  mean /= T(n);
  RNNKIT_IVDEP
  for (int64_t j = 0; j < n; ++j) var += (v[j] - mean) * (v[j] - mean);
  const T rstd = T(1) / std::sqrt(var / T(n) + T(eps));
  RNNKIT_IVDEP
  for (int64_t j = 0; j < n; ++j) v[j] = (v[j] - mean) * rstd;
  return rstd;
}

// The gradient on the input of a normalisation from dxh (n), the gradient on its normalised
// output xh: out = rstd * (dxh - mean(dxh) - xh * mean(dxh * xh)).
template <typename T> inline void normalise_grad(const T* xh, const T* dxh, T rstd, T* out, int64_t n) {
  T m1 = 0, m2 = 0;
  RNNKIT_IVDEP
  for (int64_t j = 0; j < n; ++j) m1 += dxh[j], m2 += dxh[j] * xh[j];
  m1 /= T(n);
  m2 /= T(n);
  RNNKIT_IVDEP
  for (int64_t j = 0; j < n; ++j) out[j] = rstd * (dxh[j] - m1 - xh[j] * m2);
}

// params: weight_ih (4H, I), weight_hh (4H, H), bias (4H), ln_ih_weight, ln_hh_weight (4H),
// ln_c_weight, ln_c_bias (H). The input side LN(W_ih x) of all steps runs before the loop.
// saved: Gs (B, T, 4H) activations; XR (B*T, 4H) = W_ih x with its LN mean, rstd;
// Xh (B, T, 4H) normalised W_hh h_rec, rh (B, T); Cn (B, T, H) normalised candidate cell, rc (B, T);
// Hin, Cin (B, T, H) the states entering each step.
template <typename T>
Tensors lnlstm_fwd(const Tensor& x, const Tensors& state, const Tensors& p, const Tensor& mask, const Tensor& rec_mask,
                   const Tensors& zone, bool reverse, double eps) {
  const Loop<T> L = make_loop<T>(x, mask, rec_mask, reverse);
  const int64_t B = L.B, Tn = L.Tn, G = p[0].size(0), H = G / 4;
  Tensor XR = at::mm(flat(x), p[0].t());
  auto [XN, mean_x, rstd_x] = at::native_layer_norm(XR, {G}, p[3], std::nullopt, eps);
  Tensor Gs = XN.add_(p[2]).view({B, Tn, G});
  Tensor Xh = at::empty({B, Tn, G}, x.options()), rh = at::empty({B, Tn}, x.options());
  Tensor Cn = at::empty({B, Tn, H}, x.options()), rc = at::empty({B, Tn}, x.options());
  Tensor Hin = state_store(state[0], Tn, reverse), Cin = state_store(state[1], Tn, reverse);
  Tensor hT = at::empty_like(state[0]), cT = at::empty_like(state[1]);
  Tensor seq = at::empty({B, Tn, H}, x.options()), last = at::zeros_like(state[0]);
  Tensor hcand = at::empty({B, H}, x.options()), ccand = at::empty({B, H}, x.options()), buf = at::empty_like(hcand);
  const State<T> sh = make_state<T>(Hin, hT, zone, 0), sc = make_state<T>(Cin, cT, zone, 1);
  T *gs = Gs.data_ptr<T>(), *xh = Xh.data_ptr<T>(), *rhp = rh.data_ptr<T>(), *cn = Cn.data_ptr<T>();
  T *rcp = rc.data_ptr<T>(), *hc = hcand.data_ptr<T>(), *cc = ccand.data_ptr<T>();
  T *out = seq.data_ptr<T>(), *lst = last.data_ptr<T>();
  const T *W_hh = p[1].data_ptr<T>(), *g_hh = p[4].data_ptr<T>(), *g_c = p[5].data_ptr<T>(), *b_c = p[6].data_ptr<T>();
  for (int64_t n = 0; n < Tn; ++n) {
    const int64_t t = L.time(n);
    auto [h, ld] = recurrent_input(L, sh, t, buf.data_ptr<T>());
    gemm(B, G, H, h, ld, W_hh, H, true, T(0), xh + t * G, Tn * G);  // h_rec W_hh^T
    for_rows(B, G, [&](int64_t b) {
      const int64_t r = b * Tn + t;
      T *gi = gs + r * G, *v = xh + r * G, *c = cc + b * H, *cnr = cn + r * H, *hh = hc + b * H;
      T *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
      const T* c0 = sc.at(b, t);
      rhp[r] = normalise(v, G, eps);
      RNNKIT_IVDEP
      for (int64_t j = 0; j < G; ++j) gi[j] += g_hh[j] * v[j];
      RNNKIT_IVDEP
      for (int64_t j = 0; j < 2 * H; ++j) gi[j] = sigmoid_(gi[j]);  // i and f
      RNNKIT_IVDEP
      for (int64_t j = 0; j < H; ++j) {
        gg[j] = tanh_(gg[j]);
        go[j] = sigmoid_(go[j]);
        c[j] = gf[j] * c0[j] + gi[j] * gg[j];
        cnr[j] = c[j];
      }
      rcp[r] = normalise(cnr, H, eps);
      RNNKIT_IVDEP
      for (int64_t j = 0; j < H; ++j) hh[j] = go[j] * tanh_(g_c[j] * cnr[j] + b_c[j]);
      settle(L, sc, b, n, c);
      emit(L, b, t, settle(L, sh, b, n, hh), H, out, lst);
    });
  }
  return {seq, last, hT, cT, Gs, XR, mean_x, rstd_x, Xh, rh, Cn, rc, Hin, Cin};
}

// The per-parameter sums over (b, t) accumulate per batch row inside the loop (each row is one
// thread's at a step), so no (B*T, 4H) pass over memory follows it; `acc` (B, 3G + 2H) holds per
// row: [bias | ln_hh_weight | ln_ih_weight] (G each), [ln_c_weight | ln_c_bias] (H each).
template <typename T>
Tensors lnlstm_bwd(const Tensor& dseq, const Tensor& dlast, const Tensors& dfinal, const Tensor& x, const Tensors& p,
                   const Tensor& mask, const Tensor& rec_mask, const Tensors& zone, bool reverse, const Tensors& saved,
                   bool need_dx) {
  const Loop<T> L = make_loop<T>(x, mask, rec_mask, reverse);
  const int64_t B = L.B, Tn = L.Tn, G = p[0].size(0), H = G / 4, A = 3 * G + 2 * H;
  const Tensor &Gs = saved[0], &XR = saved[1], &Xh = saved[4], &Cn = saved[6], &Hin = saved[8], &Cin = saved[9];
  const State<T> sh = make_state<T>(Hin, Tensor(), zone, 0), sc = make_state<T>(Cin, Tensor(), zone, 1);
  // dXR: on W_ih x before its LN; dR: on h_rec W_hh^T before its LN.
  Tensor dXR = at::empty_like(Gs), dR = at::empty_like(Gs), acc = at::zeros({B, A}, x.options());
  Tensor gh = dfinal[0].clone(), gc = dfinal[1].clone(), dh = at::empty_like(gh), dc = at::empty_like(gc);
  Tensor scratch = at::empty({B, 3 * G}, x.options()), buf = at::empty_like(gh);
  const T *gs = Gs.data_ptr<T>(), *xh = Xh.data_ptr<T>(), *rh = saved[5].data_ptr<T>(), *cn = Cn.data_ptr<T>();
  const T *xr = XR.data_ptr<T>(), *mx = saved[2].data_ptr<T>(), *rx = saved[3].data_ptr<T>();
  const T *rc = saved[7].data_ptr<T>(), *dout = dseq.data_ptr<T>(), *dl = dlast.data_ptr<T>();
  const T *W_hh = p[1].data_ptr<T>(), *g_ih = p[3].data_ptr<T>(), *g_hh = p[4].data_ptr<T>();
  const T *g_c = p[5].data_ptr<T>(), *b_c = p[6].data_ptr<T>();
  T *dxr = dXR.data_ptr<T>(), *dr = dR.data_ptr<T>(), *ac = acc.data_ptr<T>(), *ghp = gh.data_ptr<T>();
  T *gcp = gc.data_ptr<T>(), *dhp = dh.data_ptr<T>(), *dcp = dc.data_ptr<T>(), *sp = scratch.data_ptr<T>();
  const std::vector<int64_t> tl = last_steps(L);
  for (int64_t n = Tn - 1; n >= 0; --n) {
    const int64_t t = L.time(n);
    for_rows(B, G, [&](int64_t b) {
      const int64_t r = b * Tn + t;
      T *d = dhp + b * H, *dcb = dcp + b * H, *g0 = gcp + b * H;
      T *dgr = sp + b * 3 * G, *tmp = dgr + G, *xn = tmp + G;  // gate gradients; scratch; LN(W_ih x)
      T *a_b = ac + b * A, *a_ghh = a_b + G, *a_gih = a_ghh + G, *a_gc = a_gih + G, *a_bc = a_gc + H;
      unsettle(L, sh, b, t, ghp + b * H, dout + r * H, tl[b] == t ? dl + b * H : nullptr, d);
      unsettle(L, sc, b, t, g0, (const T*)nullptr, (const T*)nullptr, dcb);
      const T *gi = gs + r * G, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H, *cnr = cn + r * H;
      const T *c0 = sc.at(b, t), *xhr = xh + r * G, *xrr = xr + r * G;
      RNNKIT_IVDEP
      for (int64_t j = 0; j < H; ++j) {
        const T ty = tanh_(g_c[j] * cnr[j] + b_c[j]);
        const T dy = d[j] * go[j] * (T(1) - ty * ty);  // on LN(c)'s gain-and-shift output
        dgr[3 * H + j] = d[j] * ty * go[j] * (T(1) - go[j]);
        a_gc[j] += dy * cnr[j];
        a_bc[j] += dy;
        tmp[j] = dy * g_c[j];
      }
      normalise_grad(cnr, tmp, rc[r], tmp + H, H);
      RNNKIT_IVDEP
      for (int64_t j = 0; j < H; ++j) {
        const T dcj = dcb[j] + tmp[H + j];
        g0[j] += dcj * gf[j];
        dgr[j] = dcj * gg[j] * gi[j] * (T(1) - gi[j]);
        dgr[H + j] = dcj * c0[j] * gf[j] * (T(1) - gf[j]);
        dgr[2 * H + j] = dcj * gi[j] * (T(1) - gg[j] * gg[j]);
      }
      RNNKIT_IVDEP
      for (int64_t j = 0; j < G; ++j) {
        xn[j] = (xrr[j] - mx[r]) * rx[r];
        a_b[j] += dgr[j];
        a_ghh[j] += dgr[j] * xhr[j];
        a_gih[j] += dgr[j] * xn[j];
        tmp[j] = dgr[j] * g_hh[j];
      }
      normalise_grad(xhr, tmp, rh[r], dr + r * G, G);
      RNNKIT_IVDEP
      for (int64_t j = 0; j < G; ++j) tmp[j] = dgr[j] * g_ih[j];
      normalise_grad(xn, tmp, rx[r], dxr + r * G, G);
    });
    recurrent_grad(L, dr + t * G, Tn * G, W_hh, G, H, ghp, buf.data_ptr<T>());
  }
  const Tensor dXRf = flat(dXR), sums = acc.sum(0);
  return {need_dx ? at::mm(dXRf, p[0]).view_as(x) : Tensor(), gh, gc, at::mm(dXRf.t(), flat(x)),
          at::mm(flat(dR).t(), flat(recurrent_inputs(Hin, rec_mask))), sums.slice(0, 0, G),
          sums.slice(0, 2 * G, 3 * G), sums.slice(0, G, 2 * G), sums.slice(0, 3 * G, 3 * G + H),
          sums.slice(0, 3 * G + H, A)};
}

}  // namespace

Tensors lnlstm_forward(const Tensor& x, const Tensors& state, const Tensors& params, const Tensor& mask,
                       const Tensor& rec_mask, const Tensors& zone, bool reverse, const Options& options) {
  Tensors out;
  const double eps = parse_eps(options);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lnlstm_forward", [&] {
    out = lnlstm_fwd<scalar_t>(x, state, params, mask, rec_mask, zone, reverse, eps);
  });
  return out;
}

Tensors lnlstm_backward(const Tensor& dseq, const Tensor& dlast, const Tensors& dfinal, const Tensor& x,
                        const Tensors& params, const Tensor& mask, const Tensor& rec_mask, const Tensors& zone,
                        bool reverse, const Options&, const Tensors& saved, bool need_dx) {
  Tensors out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lnlstm_backward", [&] {
    out = lnlstm_bwd<scalar_t>(dseq, dlast, dfinal, x, params, mask, rec_mask, zone, reverse, saved, need_dx);
  });
  return out;
}

}  // namespace rnnkit
