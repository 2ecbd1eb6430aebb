#pragma once
// parallel_for over indices with a fixed number of threads. Results must be written by index so
// that the outcome never depends on the thread count; the error of the lowest failing index is
// rethrown after all workers stop (deterministic), and a set cancel flag stops new work.
#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kvwb {

inline int resolve_threads(int requested) {
  if (requested > 0) return requested;
  const unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

inline void parallel_for(size_t n, int threads, const std::function<void(size_t)>& fn,
                         const std::atomic<bool>* cancel = nullptr) {
  threads = std::max(1, std::min<int>(resolve_threads(threads), static_cast<int>(std::max<size_t>(n, 1))));
  std::atomic<size_t> next{0};
  std::mutex err_mu;
  size_t err_index = n;
  std::exception_ptr err;
  auto worker = [&] {
    for (;;) {
      if (cancel && cancel->load()) return;
      const size_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(err_mu);
        if (i < err_index) {
          err_index = i;
          err = std::current_exception();
        }
      }
    }
  };
  if (threads == 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
    for (auto& th : pool) th.join();
  }
  if (err) std::rethrow_exception(err);
}

}  // namespace kvwb
