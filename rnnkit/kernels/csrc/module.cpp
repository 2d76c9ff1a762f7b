// The Python module: <family>_forward and <family>_backward for every cell family (see common.h).
#include <torch/extension.h>

#include <mutex>
#include <set>
#include <thread>

#include "common.h"

namespace {

// How many distinct threads run the shares of a row split over B rows (common.h run_shares), for the
// tests: a build whose at::parallel_for runs serially (no OpenMP, build.thread_flags) answers 1.
int64_t row_split_threads(int64_t B) {
  std::mutex guard;
  std::set<std::thread::id> seen;
  rnnkit::run_shares(rnnkit::make_plan("small", B, 1, 1), B, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(guard);
    seen.insert(std::this_thread::get_id());
  });
  return static_cast<int64_t>(seen.size());
}

}  // namespace

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
  m.def("row_split_threads", &row_split_threads, "threads that ran a row split over B rows (tests)");
}
