// The one place statuses cross between absl and gRPC (CONVENTIONS 3). Codes map one to one.
#ifndef SLM_COMMON_GRPC_STATUS_H_
#define SLM_COMMON_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace slm {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace slm

#endif  // SLM_COMMON_GRPC_STATUS_H_
