// Process-wide settings for the server binaries (slm-router, slm-gateway, slm-worker), applied
// first thing in main().
//
//   int main(int argc, char** argv) {
//     slm::TuneServerProcess();
//     ...
//
// Debian 12 builds Abseil without NDEBUG, so absl::Mutex runs its deadlock detector by default:
// every lock and unlock records edges in a process-wide lock-order graph guarded by one global
// lock. gRPC 1.51's own mutexes are absl::Mutex, so on a server's request path this serializes
// threads on that global lock (callgrind of slm-router: GraphCycles and the spinning it causes
// were the largest items outside gRPC proper). Servers turn it off; tests, which do not call
// this, keep it.
// Thread-safety: call before starting threads.
#ifndef SLM_COMMON_SERVER_TUNING_H_
#define SLM_COMMON_SERVER_TUNING_H_

#include "absl/synchronization/mutex.h"

namespace slm {

inline void TuneServerProcess() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace slm

#endif  // SLM_COMMON_SERVER_TUNING_H_
