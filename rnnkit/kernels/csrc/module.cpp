// The Python module: <family>_forward and <family>_backward for every cell family (see common.h).
#include <torch/extension.h>

#include "common.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "rnnkit native sequence kernels";
#define RNNKIT_BIND(name)                                                                    \
  m.def(#name "_forward", &rnnkit::name##_forward, "forward over a sequence (" #name ")");    \
  m.def(#name "_backward", &rnnkit::name##_backward, "backward over a sequence (" #name ")");
  RNNKIT_BIND(elman)
  RNNKIT_BIND(jordan)
  RNNKIT_BIND(lstm)
  RNNKIT_BIND(gru)
  RNNKIT_BIND(lnlstm)
#undef RNNKIT_BIND
}
