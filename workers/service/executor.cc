#include "workers/service/executor.h"

#include <omp.h>

#include <utility>

namespace slm::workers {

Executor::Executor(Options options) : options_(options) {
  const int count = options_.threads < 1 ? 1 : options_.threads;
  threads_.reserve(count);
  for (int i = 0; i < count; ++i) threads_.emplace_back([this] { Loop(); });
}

Executor::~Executor() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  for (std::thread& thread : threads_) thread.join();
}

bool Executor::TrySubmit(std::function<void()> task) {
  absl::MutexLock lock(&mutex_);
  if (stopping_ || static_cast<int>(queue_.size()) >= options_.max_queue_depth) return false;
  queue_.push_back(std::move(task));
  return true;
}

int Executor::queue_depth() const {
  absl::MutexLock lock(&mutex_);
  return static_cast<int>(queue_.size());
}

int Executor::running() const {
  absl::MutexLock lock(&mutex_);
  return running_;
}

void Executor::Loop() {
  // nthreads-var is per thread in OpenMP: this sets the budget of this executor thread only.
  omp_set_num_threads(options_.compute_threads < 1 ? 1 : options_.compute_threads);
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mutex_);
      mutex_.Await(absl::Condition(
          +[](Executor* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mutex_) {
            return self->stopping_ || !self->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    task();
    absl::MutexLock lock(&mutex_);
    --running_;
  }
}

}  // namespace slm::workers
