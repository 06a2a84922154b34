#include "common/config/endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/config/string_view_compat.h"

namespace slm::config {
namespace {

constexpr size_t kMaxHostLength = 253;
constexpr size_t kMaxLabelLength = 63;

std::string Quote(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

bool IsIpv4Like(absl::string_view host) {
  for (char c : host) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '.') return false;
  }
  return true;
}

bool IsValidIpv4(absl::string_view host) {
  in_addr address;
  return inet_pton(AF_INET, std::string(host).c_str(), &address) == 1;
}

bool IsValidIpv6(absl::string_view host) {
  in6_addr address;
  return inet_pton(AF_INET6, std::string(host).c_str(), &address) == 1;
}

bool IsValidDnsName(absl::string_view host) {
  if (host.empty() || host.size() > kMaxHostLength) return false;
  for (absl::string_view label : absl::StrSplit(host, '.')) {
    if (label.empty() || label.size() > kMaxLabelLength) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
        return false;
      }
    }
  }
  return true;
}

// Checks `host:port` and fills `*result`; the error says only what is wrong, so that callers
// can phrase what they expected.
absl::Status CheckHostPort(absl::string_view text, HostPort* result) {
  auto wrong = [](absl::string_view why) { return absl::InvalidArgumentError(why); };
  absl::string_view host;
  absl::string_view port_text;
  if (absl::StrContains(text, "://")) return wrong("a URL scheme is not an address");
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == absl::string_view::npos) return wrong("missing ']'");
    if (!IsValidIpv6(text.substr(1, close - 1))) return wrong("invalid IPv6 address");
    host = text.substr(0, close + 1);
    absl::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return wrong("missing :port");
    port_text = rest.substr(1);
  } else {
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return wrong("missing :port");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.empty()) return wrong("missing host");
    if (absl::StrContains(host, ':')) {
      return wrong("an IPv6 host must be in brackets, as in [::1]:50051");
    }
    if (IsIpv4Like(host) ? !IsValidIpv4(host) : !IsValidDnsName(host)) {
      return wrong("invalid host name or IPv4 address");
    }
  }
  uint32_t port = 0;
  bool digits_only = !port_text.empty() && port_text.size() <= 5;
  for (char c : port_text) {
    digits_only = digits_only && absl::ascii_isdigit(static_cast<unsigned char>(c));
    if (digits_only) port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (!digits_only || port > 65535) return wrong("port must be 0..65535");
  result->host = std::string(host);
  result->port = static_cast<uint16_t>(port);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<HostPort> ParseHostPort(std::string_view input) {
  absl::string_view text = ToAbsl(input);
  HostPort result;
  absl::Status status = CheckHostPort(text, &result);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected host:port (", status.message(), "), got ", Quote(text)));
  }
  return result;
}

absl::StatusOr<Endpoint> ParseEndpoint(std::string_view input) {
  absl::string_view text = ToAbsl(input);
  Endpoint endpoint;
  if (absl::StartsWith(text, ToAbsl(kInProcessPrefix))) {
    endpoint.kind = EndpointKind::kInProcess;
    endpoint.worker = std::string(text.substr(kInProcessPrefix.size()));
    if (!IsValidName(endpoint.worker)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "expected inprocess:WORKER with a worker name of [A-Za-z0-9_.-]+, got ", Quote(text)));
    }
    return endpoint;
  }
  absl::string_view address = text;
  if (absl::StartsWith(text, ToAbsl(kDnsPrefix))) {
    endpoint.kind = EndpointKind::kDns;
    address = text.substr(kDnsPrefix.size());
  }
  absl::Status status = CheckHostPort(address, &endpoint.address);
  if (status.ok() && endpoint.address.port == 0) status = absl::InvalidArgumentError("port 0");
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected host:port, dns:///host:port or inprocess:WORKER with a port in "
                     "1..65535, got ",
                     Quote(text), " (", status.message(), ")"));
  }
  return endpoint;
}

bool IsValidName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace slm::config
