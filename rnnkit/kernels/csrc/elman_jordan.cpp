// Elman (cells/elman.py) and Jordan (cells/jordan.py) sequence kernels.
#include "common.h"

namespace rnnkit {
namespace {

// Elman. params: weight_ih (H, I), weight_hh (H, H), bias_ih, bias_hh (H); options: {activation}.
// saved: A (B, T, H) the activations (the candidate states), Sin (B, T, H) the states entering.
template <typename T>
Tensors elman_fwd(const Tensor& x, const Tensors& state, const Tensors& p, const Tensor& mask, const Tensor& rec_mask,
                  const Tensors& zone, bool reverse, Act act) {
  const Loop<T> L = make_loop<T>(x, mask, rec_mask, reverse);
  const int64_t B = L.B, Tn = L.Tn, H = p[1].size(0);
  // (B, T, H): W_ih x + b for every step at once; each step adds W_hh h and applies act in place.
  Tensor A = at::addmm(p[2] + p[3], flat(x), p[0].t()).view({B, Tn, H});
  Tensor Sin = state_store(state[0], Tn, reverse), final = at::empty_like(state[0]);
  Tensor seq = at::empty({B, Tn, H}, x.options()), last = at::zeros_like(state[0]), buf = at::empty_like(state[0]);
  const State<T> s = make_state<T>(Sin, final, zone, 0);
  T *a = A.data_ptr<T>(), *out = seq.data_ptr<T>(), *lst = last.data_ptr<T>();
  const T* W_hh = p[1].data_ptr<T>();
  for (int64_t n = 0; n < Tn; ++n) {
    const int64_t t = L.time(n);
    auto [h, ld] = recurrent_input(L, s, t, buf.data_ptr<T>());
    gemm(B, H, H, h, ld, W_hh, H, true, T(1), a + t * H, Tn * H);  // += h_rec W_hh^T
    for_rows(B, H, [&](int64_t b) {
      T* row = a + (b * Tn + t) * H;
      activate(act, row, H);
      emit(L, b, t, settle(L, s, b, n, row), H, out, lst);
    });
  }
  return {seq, last, final, A, Sin};
}

template <typename T>
Tensors elman_bwd(const Tensor& dseq, const Tensor& dlast, const Tensors& dfinal, const Tensor& x, const Tensors& p,
                  const Tensor& mask, const Tensor& rec_mask, const Tensors& zone, bool reverse, Act act,
                  const Tensors& saved, bool need_dx) {
  const Loop<T> L = make_loop<T>(x, mask, rec_mask, reverse);
  const int64_t B = L.B, Tn = L.Tn, H = p[1].size(0);
  const Tensor &A = saved[0], &Sin = saved[1];
  const State<T> s = make_state<T>(Sin, Tensor(), zone, 0);
  Tensor dG = at::empty_like(A), g = dfinal[0].clone(), buf = at::empty_like(g);  // dG: grads on pre-activations
  const T *a = A.data_ptr<T>(), *dout = dseq.data_ptr<T>(), *dl = dlast.data_ptr<T>(), *W_hh = p[1].data_ptr<T>();
  T *dg = dG.data_ptr<T>(), *gp = g.data_ptr<T>();
  const std::vector<int64_t> tl = last_steps(L);
  for (int64_t n = Tn - 1; n >= 0; --n) {
    const int64_t t = L.time(n);
    for_rows(B, H, [&](int64_t b) {
      const int64_t r = (b * Tn + t) * H;
      unsettle(L, s, b, t, gp + b * H, dout + r, tl[b] == t ? dl + b * H : nullptr, dg + r);
      activate_grad(act, a + r, dg + r, H);
    });
    recurrent_grad(L, dg + t * H, Tn * H, W_hh, H, H, gp, buf.data_ptr<T>());
  }
  Tensor dGf = flat(dG), db = dGf.sum(0);
  return {need_dx ? at::mm(dGf, p[0]).view_as(x) : Tensor(), g, at::mm(dGf.t(), flat(x)),
          at::mm(dGf.t(), flat(recurrent_inputs(Sin, rec_mask))), db, db.clone()};
}

// Jordan. params: weight_ih (H, I), weight_yh (H, O), bias_h (H), weight_hy (O, H), bias_y (O);
// options: {activation, output_activation}. State (y,) of size O.
// saved: Hs (B, T, H) hidden activations, Ys (B, T, O) candidate outputs, Sin (B, T, O).
template <typename T>
Tensors jordan_fwd(const Tensor& x, const Tensors& state, const Tensors& p, const Tensor& mask, const Tensor& rec_mask,
                   const Tensors& zone, bool reverse, Act act, Act out_act) {
  const Loop<T> L = make_loop<T>(x, mask, rec_mask, reverse);
  const int64_t B = L.B, Tn = L.Tn, H = p[0].size(0), O = p[3].size(0);
  Tensor Hs = at::addmm(p[2], flat(x), p[0].t()).view({B, Tn, H});  // W_ih x + b_h, all steps
  Tensor Ys = at::empty({B, Tn, O}, x.options());
  Tensor Sin = state_store(state[0], Tn, reverse), final = at::empty_like(state[0]);
  Tensor seq = at::empty({B, Tn, O}, x.options()), last = at::zeros_like(state[0]), buf = at::empty_like(state[0]);
  const State<T> s = make_state<T>(Sin, final, zone, 0);
  T *hs = Hs.data_ptr<T>(), *ys = Ys.data_ptr<T>(), *out = seq.data_ptr<T>(), *lst = last.data_ptr<T>();
  const T *W_yh = p[1].data_ptr<T>(), *W_hy = p[3].data_ptr<T>(), *b_y = p[4].data_ptr<T>();
  for (int64_t n = 0; n < Tn; ++n) {
    const int64_t t = L.time(n);
    auto [y, ld] = recurrent_input(L, s, t, buf.data_ptr<T>());
    gemm(B, H, O, y, ld, W_yh, O, true, T(1), hs + t * H, Tn * H);  // += y_rec W_yh^T
    for_rows(B, H, [&](int64_t b) { activate(act, hs + (b * Tn + t) * H, H); });
    gemm(B, O, H, hs + t * H, Tn * H, W_hy, H, true, T(0), ys + t * O, Tn * O);  // h W_hy^T
    for_rows(B, O, [&](int64_t b) {
      T* row = ys + (b * Tn + t) * O;
      RNNKIT_IVDEP
      for (int64_t j = 0; j < O; ++j) row[j] += b_y[j];
      activate(out_act, row, O);
      emit(L, b, t, settle(L, s, b, n, row), O, out, lst);
    });
  }
  return {seq, last, final, Hs, Ys, Sin};
}

template <typename T>
Tensors jordan_bwd(const Tensor& dseq, const Tensor& dlast, const Tensors& dfinal, const Tensor& x, const Tensors& p,
                   const Tensor& mask, const Tensor& rec_mask, const Tensors& zone, bool reverse, Act act,
                   Act out_act, const Tensors& saved, bool need_dx) {
  const Loop<T> L = make_loop<T>(x, mask, rec_mask, reverse);
  const int64_t B = L.B, Tn = L.Tn, H = p[0].size(0), O = p[3].size(0);
  const Tensor &Hs = saved[0], &Ys = saved[1], &Sin = saved[2];
  const State<T> s = make_state<T>(Sin, Tensor(), zone, 0);
  // dH (B, T, H), dY (B, T, O): gradients on the hidden and output pre-activations.
  Tensor dH = at::empty_like(Hs), dY = at::empty_like(Ys), g = dfinal[0].clone(), buf = at::empty_like(g);
  const T *hs = Hs.data_ptr<T>(), *ys = Ys.data_ptr<T>(), *dout = dseq.data_ptr<T>(), *dl = dlast.data_ptr<T>();
  const T *W_yh = p[1].data_ptr<T>(), *W_hy = p[3].data_ptr<T>();
  T *dh = dH.data_ptr<T>(), *dy = dY.data_ptr<T>(), *gp = g.data_ptr<T>();
  const std::vector<int64_t> tl = last_steps(L);
  for (int64_t n = Tn - 1; n >= 0; --n) {
    const int64_t t = L.time(n);
    for_rows(B, O, [&](int64_t b) {
      const int64_t r = (b * Tn + t) * O;
      unsettle(L, s, b, t, gp + b * O, dout + r, tl[b] == t ? dl + b * O : nullptr, dy + r);
      activate_grad(out_act, ys + r, dy + r, O);
    });
    gemm(B, H, O, dy + t * O, Tn * O, W_hy, H, false, T(0), dh + t * H, Tn * H);  // dY W_hy
    for_rows(B, H, [&](int64_t b) { activate_grad(act, hs + (b * Tn + t) * H, dh + (b * Tn + t) * H, H); });
    recurrent_grad(L, dh + t * H, Tn * H, W_yh, H, O, gp, buf.data_ptr<T>());
  }
  Tensor dHf = flat(dH), dYf = flat(dY);
  return {need_dx ? at::mm(dHf, p[0]).view_as(x) : Tensor(), g, at::mm(dHf.t(), flat(x)),
          at::mm(dHf.t(), flat(recurrent_inputs(Sin, rec_mask))), dHf.sum(0), at::mm(dYf.t(), flat(Hs)),
          dYf.sum(0)};
}

}  // namespace

Tensors elman_forward(const Tensor& x, const Tensors& state, const Tensors& params, const Tensor& mask,
                      const Tensor& rec_mask, const Tensors& zone, bool reverse, const Options& options) {
  Tensors out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "elman_forward", [&] {
    out = elman_fwd<scalar_t>(x, state, params, mask, rec_mask, zone, reverse, parse_act(options.at(0)));
  });
  return out;
}

Tensors elman_backward(const Tensor& dseq, const Tensor& dlast, const Tensors& dfinal, const Tensor& x,
                       const Tensors& params, const Tensor& mask, const Tensor& rec_mask, const Tensors& zone,
                       bool reverse, const Options& options, const Tensors& saved, bool need_dx) {
  Tensors out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "elman_backward", [&] {
    out = elman_bwd<scalar_t>(dseq, dlast, dfinal, x, params, mask, rec_mask, zone, reverse,
                              parse_act(options.at(0)), saved, need_dx);
  });
  return out;
}

Tensors jordan_forward(const Tensor& x, const Tensors& state, const Tensors& params, const Tensor& mask,
                       const Tensor& rec_mask, const Tensors& zone, bool reverse, const Options& options) {
  Tensors out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "jordan_forward", [&] {
    out = jordan_fwd<scalar_t>(x, state, params, mask, rec_mask, zone, reverse, parse_act(options.at(0)),
                               parse_act(options.at(1)));
  });
  return out;
}

Tensors jordan_backward(const Tensor& dseq, const Tensor& dlast, const Tensors& dfinal, const Tensor& x,
                        const Tensors& params, const Tensor& mask, const Tensor& rec_mask, const Tensors& zone,
                        bool reverse, const Options& options, const Tensors& saved, bool need_dx) {
  Tensors out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "jordan_backward", [&] {
    out = jordan_bwd<scalar_t>(dseq, dlast, dfinal, x, params, mask, rec_mask, zone, reverse,
                               parse_act(options.at(0)), parse_act(options.at(1)), saved, need_dx);
  });
  return out;
}

}  // namespace rnnkit
