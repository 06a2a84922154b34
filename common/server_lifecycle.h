// Process lifecycle helpers shared by slm-gateway, slm-router and slm-worker.
//
//   int main(int argc, char** argv) {
//     slm::BlockTerminationSignals();   // first, before any thread starts
//     ... start servers ...
//     slm::WaitForTerminationSignal();  // SIGTERM or SIGINT
//     server->Shutdown(drain_deadline); // stop accepting, finish in-flight work
//   }
#ifndef SLM_COMMON_SERVER_LIFECYCLE_H_
#define SLM_COMMON_SERVER_LIFECYCLE_H_

#include <string>

#include "absl/status/status.h"

namespace slm {

// Blocks SIGTERM and SIGINT in the calling thread and every thread it starts later, so that
// WaitForTerminationSignal() receives them.
void BlockTerminationSignals();

// Waits until SIGTERM or SIGINT arrives; returns the signal number.
int WaitForTerminationSignal();

// Writes `content` to `path` through a temporary file and a rename, so readers never see a
// partial file (used for --ready_file, which tests poll).
absl::Status WriteFileAtomically(const std::string& path, const std::string& content);

}  // namespace slm

#endif  // SLM_COMMON_SERVER_LIFECYCLE_H_
