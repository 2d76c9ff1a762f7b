// One time step of a stack of recurrent layers, for streaming inference (rnnkit/kernels/stream.py).
//
// A Stepper holds, per layer, the cell's parameter dictionary (its Python `_parameters`) and the
// names it reads there, the tensors it last found (sharing their storage) and derived copies laid
// out for a matrix-vector product: W^T (K, n) row-major, so that out[b, :] += in[b, k] * W^T[k, :]
// streams contiguous rows, and the biases summed. Before each step it looks every parameter up
// again in the dictionary and compares the tensor found (its identity, version counter and data
// pointer) with the one it saw, and rebuilds the copies of a layer whose parameters changed or
// were replaced (an optimiser step, copy_, load_state_dict with or without assign=True, a new
// nn.Parameter assigned, torch.utils.swap_tensors). Small batches use hand-written loops into preallocated outputs, larger
// ones torch's BLAS; no autograd graph is recorded (inference only).
//
// Layer kinds and their parameter lists (the order stream.py passes them):
//   Elman   weight_ih, weight_hh, bias_ih, bias_hh            h = act(W [x; h] + b)
//   Jordan  weight_ih, weight_yh, bias_h, weight_hy, bias_y   y = out_act(W_hy act(W [x; y] + b_h) + b_y)
//   LSTM    weight_ih, weight_hh, bias_ih, bias_hh [, weight_c] [, weight_hr]   gates i, f, g, o
//   GRU     weight_ih, weight_hh, bias_ih, bias_hh            gates r, z, n; both forms
//   LNLSTM  weight_ih, weight_hh, bias, ln_ih_weight, ln_hh_weight, ln_c_weight, ln_c_bias
//   MinGRU  weight_ih, bias_ih (z, h);  MinLSTM  weight_ih, bias_ih (f, i, h)
// The equations are the cells' step functions in rnnkit/cells/; zoneout enters as its
// expectation, s = p s_prev + (1 - p) s_new (evaluation mode of Krueger et al. 2016).
#include <torch/extension.h>

#include <cmath>
#include <string>
#include <vector>

#include "fastmath.h"

namespace py = pybind11;
using at::Tensor;

namespace {

template <typename T> RNNKIT_MATH_INLINE T th(T v) { return rnnkit_math::tanh_(v); }  // inline, vectorisable (fastmath.h)
template <typename T> RNNKIT_MATH_INLINE T sg(T v) { return rnnkit_math::sigmoid_(v); }
template <typename T> RNNKIT_MATH_INLINE T min_g(T v) { return v >= T(0) ? v + T(0.5) : sg(v); }  // minGRU's g

enum Kind { ELMAN = 0, JORDAN, LSTM, GRU, LNLSTM, MINGRU, MINLSTM };
enum Act { TANH = 0, RELU, SIGMOID, IDENTITY };

template <typename T> void activate(int act, T* v, int64_t n) {
  if (act == TANH) for (int64_t j = 0; j < n; ++j) v[j] = th(v[j]);
  if (act == RELU) for (int64_t j = 0; j < n; ++j) v[j] = v[j] > T(0) ? v[j] : T(0);
  if (act == SIGMOID) for (int64_t j = 0; j < n; ++j) v[j] = sg(v[j]);
}

// out[b, :n] = bias (or 0) for b < B; out has leading dimension ldo.
template <typename T> void fill(T* out, int64_t ldo, int64_t B, int64_t n, const T* bias) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < n; ++j) out[b * ldo + j] = bias ? bias[j] : T(0);
}

// out[b, :n] += in[b, :K] @ W[:K, :n]; W row-major with leading dimension ldw.
template <typename T> void accumulate(T* out, int64_t ldo, const T* in, int64_t ldi, int64_t B, int64_t K,
                                      const T* W, int64_t ldw, int64_t n) {
  if (B >= 8) {  // enough rows for a blocked gemm to win
    auto opt = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
    auto o = at::from_blob(out, {B, n}, {ldo, 1}, opt);
    o.addmm_(at::from_blob(const_cast<T*>(in), {B, K}, {ldi, 1}, opt),
             at::from_blob(const_cast<T*>(W), {K, n}, {ldw, 1}, opt));
    return;
  }
  for (int64_t b = 0; b < B; ++b) {
    T* o = out + b * ldo;
    const T* v = in + b * ldi;
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {  // four rows of W per pass over o: a quarter of the loads and stores
      const T v0 = v[k], v1 = v[k + 1], v2 = v[k + 2], v3 = v[k + 3];
      const T *w0 = W + k * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
      for (int64_t j = 0; j < n; ++j) o[j] += v0 * w0[j] + v1 * w1[j] + v2 * w2[j] + v3 * w3[j];
    }
    for (; k < K; ++k) {
      const T vk = v[k];
      const T* w = W + k * ldw;
      for (int64_t j = 0; j < n; ++j) o[j] += vk * w[j];
    }
  }
}

// v (n) <- LN(v) * gain [+ shift], biased variance, as torch's layer_norm.
template <typename T> void layer_norm(T* v, int64_t n, const T* gain, const T* shift, double eps) {
  double mean = 0, var = 0;
  for (int64_t j = 0; j < n; ++j) mean += v[j];
  mean /= n;
  for (int64_t j = 0; j < n; ++j) var += (v[j] - mean) * (v[j] - mean);
  const T m = T(mean), inv = T(1.0 / std::sqrt(var / n + eps));
  for (int64_t j = 0; j < n; ++j) v[j] = (v[j] - m) * inv * gain[j] + (shift ? shift[j] : T(0));
}

struct Layer {
  int kind, act = TANH, out_act = TANH;
  bool reset_after = true, peephole = false, proj = false;
  double zoneout = 0, eps = 1e-5;
  int64_t I = 0, H = 0;                  // input size, hidden size
  std::vector<int64_t> sizes;            // state sizes
  py::dict source;                       // the cell's _parameters, looked up at every step
  std::vector<py::str> names;            // the parameters read, in the order listed above
  std::vector<Tensor> params;            // detached views of what refresh() found there (shared storage)
  // The tensors refresh() found, by address only: any reference, even a weak one, would make
  // torch.utils.swap_tensors refuse to swap the parameter. A different tensor at a reused address
  // would also need the same version counter and data pointer to go unnoticed.
  std::vector<const c10::TensorImpl*> seen;
  std::vector<int64_t> versions;
  std::vector<const void*> pointers;
  Tensor w, b, w2, b2;                   // derived: W^T (K, n), summed bias; second matrix and bias
};

class Stepper {
 public:
  void add_layer(int kind, std::vector<int64_t> flags, std::vector<int64_t> sizes, double zoneout, double eps,
                 py::dict source, std::vector<std::string> names) {
    Layer L;
    L.kind = kind, L.act = flags[0], L.out_act = flags[1], L.reset_after = flags[2], L.peephole = flags[3];
    L.proj = flags[4], L.I = flags[5], L.H = flags[6], L.sizes = sizes, L.zoneout = zoneout, L.eps = eps;
    L.source = source;
    for (const auto& n : names) L.names.emplace_back(n);
    if (!layers_.empty() && layers_[0].sizes.size() != sizes.size())
      throw py::value_error("rnnkit stream: every layer of a stack must have the same state structure");
    layers_.push_back(std::move(L));
  }

  py::tuple step(Tensor x, py::object state) {
    const bool single = x.dim() == 1;
    const Layer& first = layers_.front();
    if ((x.dim() != 1 && x.dim() != 2) || x.size(-1) != first.I)
      throw py::value_error("expected x_t of shape (batch, " + std::to_string(first.I) + ") or (" +
                            std::to_string(first.I) + ",) for one sample, got " + shape(x));
    const int64_t B = single ? 1 : x.size(0), N = layers_.size();
    for (auto& L : layers_) refresh(L);
    if (x.scalar_type() != first.w.scalar_type() || !x.device().is_cpu())
      throw py::value_error("x_t is " + std::string(c10::toString(x.scalar_type())) + " on " + x.device().str() +
                            " but the layer's parameters are " + c10::toString(first.w.scalar_type()) +
                            " on cpu; convert one to match");
    x = x.contiguous();
    std::vector<Tensor> old, out;
    for (size_t k = 0; k < first.sizes.size(); ++k) {
      std::vector<int64_t> dims = single ? std::vector<int64_t>{N, first.sizes[k]}
                                         : std::vector<int64_t>{N, B, first.sizes[k]};
      if (state.is_none()) {
        old.push_back(at::zeros(dims, x.options()));
      } else {
        Tensor s = check_state(state, k, dims, x);
        old.push_back(s.contiguous());
      }
      out.push_back(at::empty(dims, x.options()));
    }
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnnkit_stream_step", [&] {
      const scalar_t* in = x.data_ptr<scalar_t>();
      std::vector<scalar_t> scratch;
      for (int64_t l = 0; l < N; ++l) {
        const Layer& L = layers_[l];
        std::vector<const scalar_t*> s0;
        std::vector<scalar_t*> s1;
        for (size_t k = 0; k < old.size(); ++k) {
          s0.push_back(old[k].data_ptr<scalar_t>() + l * B * L.sizes[k]);
          s1.push_back(out[k].data_ptr<scalar_t>() + l * B * L.sizes[k]);
        }
        one_layer<scalar_t>(L, in, B, s0, s1, scratch);
        in = s1[0];
      }
    });
    const Tensor& last = out[0][N - 1];
    py::tuple new_state(out.size());
    for (size_t k = 0; k < out.size(); ++k) new_state[k] = out[k];
    return py::make_tuple(last.clone(), new_state);
  }

 private:
  std::vector<Layer> layers_;

  static std::string shape(const Tensor& t) {
    std::string s = "(";
    for (int64_t d = 0; d < t.dim(); ++d) s += std::to_string(t.size(d)) + (d + 1 < t.dim() ? ", " : "");
    return s + (t.dim() == 1 ? ",)" : ")");
  }

  Tensor check_state(py::object state, size_t k, const std::vector<int64_t>& dims, const Tensor& x) {
    const size_t n = layers_[0].sizes.size();
    std::string expected = "a tuple of " + std::to_string(n) + " tensors, the first of shape (";
    for (size_t d = 0; d < dims.size(); ++d) expected += std::to_string(dims[d]) + (d + 1 < dims.size() ? ", " : ")");
    if (!py::isinstance<py::tuple>(state) && !py::isinstance<py::list>(state))
      throw py::value_error("expected the state as " + expected);
    py::sequence seq = state;
    if (seq.size() != n) throw py::value_error("expected the state as " + expected);
    Tensor s = seq[k].cast<Tensor>();
    if (s.sizes() != at::IntArrayRef(dims))
      throw py::value_error("expected state tensor " + std::to_string(k) + " of shape " +
                            shape(at::empty(dims, at::TensorOptions().device(at::kMeta))) + ", got " + shape(s));
    if (s.scalar_type() != x.scalar_type() || !s.device().is_cpu())
      throw py::value_error("the state's dtype or device differs from x_t's");
    return s;
  }

  // The tensor the cell holds now under L.names[i].
  static const Tensor& current(const Layer& L, size_t i) {
    PyObject* o = PyDict_GetItem(L.source.ptr(), L.names[i].ptr());  // borrowed; the dict keeps it alive
    if (o == nullptr || !THPVariable_Check(o))
      throw py::value_error("rnnkit stream: the cell's parameter " + std::string(py::str(L.names[i])) +
                            " is no longer a tensor; call the layer's forward instead");
    return THPVariable_Unpack(o);
  }

  // Rebuild the derived copies of L when a parameter changed or was replaced since the last call.
  static void refresh(Layer& L) {
    bool stale = L.seen.size() != L.names.size();
    for (size_t i = 0; !stale && i < L.names.size(); ++i) {
      const Tensor& t = current(L, i);
      stale = t.unsafeGetTensorImpl() != L.seen[i] || t._version() != L.versions[i] ||
              t.data_ptr() != L.pointers[i];
    }
    if (!stale) return;
    at::NoGradGuard no_grad;
    L.seen.clear(), L.versions.clear(), L.pointers.clear();
    std::vector<Tensor> p;
    for (size_t i = 0; i < L.names.size(); ++i) {
      const Tensor& t = current(L, i);
      if (!t.device().is_cpu()) throw py::value_error("rnnkit stream: native steps run on the CPU");
      L.seen.push_back(t.unsafeGetTensorImpl()), L.versions.push_back(t._version()), L.pointers.push_back(t.data_ptr());
      p.push_back(t.detach());
    }
    L.params = p;
    auto T = [](const Tensor& m) { return m.t().contiguous(); };
    switch (L.kind) {
      case ELMAN: L.w = T(at::cat({p[0], p[1]}, 1)), L.b = p[2] + p[3]; break;
      case JORDAN: L.w = T(at::cat({p[0], p[1]}, 1)), L.b = p[2].contiguous(), L.w2 = T(p[3]), L.b2 = p[4].contiguous(); break;
      case LSTM:
        L.w = T(at::cat({p[0], p[1]}, 1)), L.b = p[2] + p[3];
        L.b2 = L.peephole ? p[4].contiguous() : Tensor();  // weight_c (3, H): rows i, f, o
        L.w2 = L.proj ? T(p.back()) : Tensor();           // weight_hr^T (H, R)
        break;
      case GRU: L.w = T(p[0]), L.b = p[2].contiguous(), L.w2 = T(p[1]), L.b2 = p[3].contiguous(); break;
      case LNLSTM: L.w = T(p[0]), L.w2 = T(p[1]), L.b = p[2].contiguous(); break;
      default: L.w = T(p[0]), L.b = p[1].contiguous();  // minGRU, minLSTM
    }
  }

  template <typename T>
  static void one_layer(const Layer& L, const T* x, int64_t B, const std::vector<const T*>& s0,
                        const std::vector<T*>& s1, std::vector<T>& scratch) {
    const int64_t I = L.I, H = L.H, S = L.sizes[0];
    const T* w = L.w.data_ptr<T>();
    const T* b = L.b.defined() ? L.b.data_ptr<T>() : nullptr;
    const T* w2 = L.w2.defined() ? L.w2.data_ptr<T>() : nullptr;
    const T* b2 = L.b2.defined() ? L.b2.data_ptr<T>() : nullptr;
    const int64_t G = L.kind == ELMAN || L.kind == JORDAN ? H : L.kind == GRU ? 3 * H
                    : L.kind == MINGRU ? 2 * H : L.kind == MINLSTM ? 3 * H : 4 * H;
    scratch.assign(2 * B * G + B * H, T(0));
    T *g = scratch.data(), *g2 = g + B * G, *hid = g2 + B * G;  // (B, G), (B, G), (B, H)
    const T *h = s0[0], *c = s0.size() > 1 ? s0[1] : nullptr;
    T *h1 = s1[0], *c1 = s1.size() > 1 ? s1[1] : nullptr;
    switch (L.kind) {
      case ELMAN:  // h = act(b + [x; h] W)
        fill(h1, H, B, H, b), accumulate(h1, H, x, I, B, I, w, H, H), accumulate(h1, H, h, H, B, H, w + I * H, H, H);
        activate(L.act, h1, B * H);
        break;
      case JORDAN:  // hid = act(b_h + [x; y] W); y = out_act(b_y + hid W_hy^T)
        fill(hid, H, B, H, b), accumulate(hid, H, x, I, B, I, w, H, H), accumulate(hid, H, h, S, B, S, w + I * H, H, H);
        activate(L.act, hid, B * H);
        fill(h1, S, B, S, b2), accumulate(h1, S, hid, H, B, H, w2, S, S);
        activate(L.out_act, h1, B * S);
        break;
      case LSTM: {
        fill(g, G, B, G, b), accumulate(g, G, x, I, B, I, w, G, G), accumulate(g, G, h, S, B, S, w + I * G, G, G);
        const T* pc = L.peephole ? b2 : nullptr;  // weight_c (3, H)
        T* out = L.proj ? hid : h1;
        for (int64_t r = 0; r < B; ++r) {  // simple loops over contiguous blocks, so that each vectorises
          T *i = g + r * G, *f = i + H, *gg = f + H, *o = gg + H, *cn = c1 + r * H, *hn = out + r * H;
          const T* cp = c + r * H;
          if (pc) for (int64_t j = 0; j < H; ++j) i[j] += pc[j] * cp[j], f[j] += pc[H + j] * cp[j];
          for (int64_t j = 0; j < 2 * H; ++j) i[j] = sg(i[j]);  // i and f
          for (int64_t j = 0; j < H; ++j) gg[j] = th(gg[j]);
          for (int64_t j = 0; j < H; ++j) cn[j] = f[j] * cp[j] + i[j] * gg[j];
          if (pc) for (int64_t j = 0; j < H; ++j) o[j] += pc[2 * H + j] * cn[j];
          for (int64_t j = 0; j < H; ++j) hn[j] = sg(o[j]) * th(cn[j]);
        }
        if (L.proj) fill(h1, S, B, S, (const T*)nullptr), accumulate(h1, S, hid, H, B, H, w2, S, S);
        break;
      }
      case GRU: {  // g = b_ih + x W_ih^T; g2 = b_hh + h W_hh^T (r, z blocks; n too when reset_after)
        fill(g, G, B, G, b), accumulate(g, G, x, I, B, I, w, G, G);
        const int64_t n2 = L.reset_after ? G : 2 * H;
        fill(g2, G, B, n2, b2), accumulate(g2, G, h, H, B, H, w2, G, n2);
        for (int64_t r = 0; r < B; ++r)
          for (int64_t j = 0; j < 2 * H; ++j) g[r * G + j] = sg(g[r * G + j] + g2[r * G + j]);  // r, z
        if (!L.reset_after) {  // Cho et al. 2014: g2_n = b_hn + (r ⊙ h) W_hn^T
          for (int64_t r = 0; r < B; ++r)
            for (int64_t j = 0; j < H; ++j) hid[r * H + j] = g[r * G + j] * h[r * H + j];
          fill(g2 + 2 * H, G, B, H, b2 + 2 * H), accumulate(g2 + 2 * H, G, hid, H, B, H, w2 + 2 * H, G, H);
        }
        for (int64_t r = 0; r < B; ++r) {
          const T *rg = g + r * G, *z = rg + H, *hp = h + r * H, *hn = g2 + r * G + 2 * H;
          T* n = g + r * G + 2 * H;
          if (L.reset_after) for (int64_t j = 0; j < H; ++j) n[j] = th(n[j] + rg[j] * hn[j]);
          else for (int64_t j = 0; j < H; ++j) n[j] = th(n[j] + hn[j]);
          for (int64_t j = 0; j < H; ++j) h1[r * H + j] = (T(1) - z[j]) * n[j] + z[j] * hp[j];
        }
        break;
      }
      case LNLSTM: {  // gates = LN(x W_ih^T) γ_ih + LN(h W_hh^T) γ_hh + b
        const T *gi = L.params[3].data_ptr<T>(), *gh = L.params[4].data_ptr<T>();
        const T *gc = L.params[5].data_ptr<T>(), *bc = L.params[6].data_ptr<T>();
        fill(g, G, B, G, (const T*)nullptr), accumulate(g, G, x, I, B, I, w, G, G);
        fill(g2, G, B, G, (const T*)nullptr), accumulate(g2, G, h, H, B, H, w2, G, G);
        for (int64_t r = 0; r < B; ++r) {
          T *gr = g + r * G, *hr = g2 + r * G;
          layer_norm(gr, G, gi, (const T*)nullptr, L.eps), layer_norm(hr, G, gh, (const T*)nullptr, L.eps);
          const T* cp = c + r * H;
          T *cn = c1 + r * H, *o = h1 + r * H;
          for (int64_t j = 0; j < H; ++j) {
            auto a = [&](int64_t q) { return gr[q * H + j] + hr[q * H + j] + b[q * H + j]; };
            cn[j] = sg(a(1)) * cp[j] + sg(a(0)) * th(a(2));
            o[j] = cn[j];
          }
          layer_norm(o, H, gc, bc, L.eps);
          for (int64_t j = 0; j < H; ++j) o[j] = sg(gr[3 * H + j] + hr[3 * H + j] + b[3 * H + j]) * th(o[j]);
        }
        break;
      }
      default: {  // minGRU: h = (1 - z) h + z g(k_h); minLSTM: h = f/(f+i) h + i/(f+i) g(k_h)
        fill(g, G, B, G, b), accumulate(g, G, x, I, B, I, w, G, G);
        for (int64_t r = 0; r < B; ++r) {
          const T *gr = g + r * G, *hp = h + r * H;
          for (int64_t j = 0; j < H; ++j) {
            T keep, take;
            if (L.kind == MINGRU) {
              take = sg(gr[j]), keep = T(1) - take;
            } else {
              const T f = sg(gr[j]), i = sg(gr[H + j]);
              keep = f / (f + i), take = i / (f + i);
            }
            h1[r * H + j] = keep * hp[j] + take * min_g(gr[G - H + j]);
          }
        }
      }
    }
    if (L.zoneout != 0)  // expectation of zoneout: s = p s_prev + (1 - p) s_new
      for (size_t k = 0; k < s0.size(); ++k)
        for (int64_t j = 0; j < B * L.sizes[k]; ++j)
          s1[k][j] = T(L.zoneout) * s0[k][j] + T(1 - L.zoneout) * s1[k][j];
  }
};

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  py::class_<Stepper>(m, "Stepper")
      .def(py::init<>())
      .def("add_layer", &Stepper::add_layer)
      .def("step", &Stepper::step, "(x_t, state or None) -> (y_t, state)");
}
