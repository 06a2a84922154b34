// A fixed set of threads that run one model's requests, with a bounded wait queue.
//
//   Executor executor({.threads = 2, .max_queue_depth = 64, .compute_threads = 1});
//   if (!executor.TrySubmit([=] { RunModel(...); })) { /* RESOURCE_EXHAUSTED */ }
//
// gRPC reactors only enqueue here and return (CONVENTIONS 7); the task finishes the reactor.
// Each executor thread runs its OpenMP kernels with `compute_threads` threads, so several models
// in one process share the cores by configuration instead of oversubscribing them.
// Thread-safety: TrySubmit and the accessors may be called from any thread. The destructor
// runs every queued task, then joins the threads.
#ifndef SLM_WORKERS_SERVICE_EXECUTOR_H_
#define SLM_WORKERS_SERVICE_EXECUTOR_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace slm::workers {

class Executor {
 public:
  struct Options {
    int threads = 1;              // tasks run at once
    int max_queue_depth = 64;     // tasks that may wait
    int compute_threads = 1;      // OpenMP threads per executor thread
  };

  explicit Executor(Options options);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues `task`; false (task dropped) when the queue is full or the executor is stopping.
  bool TrySubmit(std::function<void()> task);

  int queue_depth() const;
  int running() const;
  const Options& options() const { return options_; }

 private:
  void Loop();

  const Options options_;
  mutable absl::Mutex mutex_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mutex_);
  int running_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace slm::workers

#endif  // SLM_WORKERS_SERVICE_EXECUTOR_H_
