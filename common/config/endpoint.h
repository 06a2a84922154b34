// Parsing of the addresses a configuration names: listen addresses (`host:port`) and worker
// endpoints (`host:port`, `dns:///host:port`, `inprocess:WORKER`).
//
//   absl::StatusOr<Endpoint> endpoint = ParseEndpoint("dns:///worker-0.slm:50052");
//   // endpoint->kind == EndpointKind::kDns, host "worker-0.slm", port 50052
//
// A host is an IPv4 address (`10.0.0.7`), a bracketed IPv6 address (`[::1]`) or a DNS name
// (letters, digits, '-', '_' in dot-separated labels). Port 0 is accepted (an ephemeral port).
// Errors are InvalidArgument with a message that says what was expected and what was given; the
// caller prefixes the field path. Functions are pure and reentrant.
#ifndef SLM_COMMON_CONFIG_ENDPOINT_H_
#define SLM_COMMON_CONFIG_ENDPOINT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace slm::config {

struct HostPort {
  std::string host;  // As written, brackets included for IPv6 ("[::1]").
  uint16_t port = 0;
};

// Parses `host:port`.
absl::StatusOr<HostPort> ParseHostPort(std::string_view text);

enum class EndpointKind {
  kHostPort,   // "host:port": a gRPC target resolved by gRPC's default resolver.
  kDns,        // "dns:///host:port": gRPC's DNS resolver (several addresses per name).
  kInProcess,  // "inprocess:WORKER": a worker in this process (slm-gateway only).
};

struct Endpoint {
  EndpointKind kind = EndpointKind::kHostPort;
  HostPort address;    // kHostPort and kDns.
  std::string worker;  // kInProcess: the worker's name.
};

inline constexpr std::string_view kInProcessPrefix = "inprocess:";
inline constexpr std::string_view kDnsPrefix = "dns:///";

// Parses one pool endpoint; its port must be 1..65535 (it is dialed). The worker name of
// `inprocess:` is checked for its characters only; whether such a worker exists is the
// configuration's business.
absl::StatusOr<Endpoint> ParseEndpoint(std::string_view text);

// True for names of workers, pools, routes and tasks: non-empty, [A-Za-z0-9_.-]+.
bool IsValidName(std::string_view name);

}  // namespace slm::config

#endif  // SLM_COMMON_CONFIG_ENDPOINT_H_
