#include "common/config/endpoint.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slm::config {
namespace {

using ::testing::HasSubstr;

TEST(ParseHostPortTest, AcceptsIpv4Ipv6AndNames) {
  struct Case {
    std::string text;
    std::string host;
    int port;
  };
  for (const Case& c : std::vector<Case>{
           {"127.0.0.1:50051", "127.0.0.1", 50051},
           {"0.0.0.0:0", "0.0.0.0", 0},
           {"[::]:65535", "[::]", 65535},
           {"[::1]:1", "[::1]", 1},
           {"[fe80::1:2]:80", "[fe80::1:2]", 80},
           {"localhost:9464", "localhost", 9464},
           {"worker-0.slm.svc.cluster.local:50052", "worker-0.slm.svc.cluster.local", 50052},
           {"slm_worker:7", "slm_worker", 7}}) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(c.text);
    ASSERT_TRUE(parsed.ok()) << c.text << ": " << parsed.status();
    EXPECT_EQ(parsed->host, c.host);
    EXPECT_EQ(parsed->port, c.port);
  }
}

TEST(ParseHostPortTest, RejectsMalformed) {
  for (const char* text : {"",
                           ":",
                           "host",
                           "host:",
                           ":80",
                           "host:65536",
                           "host:99999999",
                           "host:8o",
                           "host: 80",
                           "::1:80",
                           "[::1]",
                           "[::1]80",
                           "[::1:80",
                           "[zz]:80",
                           "1.2.3.256:80",
                           "1.2.3:80",
                           "-bad.example:80",
                           "bad-.example:80",
                           "a..b:80",
                           "a b:80",
                           "host:+80",
                           "host:-1"}) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(text);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << "\"" << text << "\"";
    EXPECT_THAT(parsed.status().message(), HasSubstr("expected host:port")) << text;
  }
}

TEST(ParseEndpointTest, Kinds) {
  absl::StatusOr<Endpoint> direct = ParseEndpoint("10.0.0.7:50052");
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(direct->kind, EndpointKind::kHostPort);
  EXPECT_EQ(direct->address.host, "10.0.0.7");
  EXPECT_EQ(direct->address.port, 50052);

  absl::StatusOr<Endpoint> dns = ParseEndpoint("dns:///worker.slm:50052");
  ASSERT_TRUE(dns.ok()) << dns.status();
  EXPECT_EQ(dns->kind, EndpointKind::kDns);
  EXPECT_EQ(dns->address.host, "worker.slm");

  absl::StatusOr<Endpoint> local = ParseEndpoint("inprocess:sentiment-v2.1");
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(local->kind, EndpointKind::kInProcess);
  EXPECT_EQ(local->worker, "sentiment-v2.1");
}

TEST(ParseEndpointTest, RejectsMalformed) {
  for (const char* text : {"", "inprocess:", "inprocess:a b", "dns:///", "dns://auth/host:80",
                           "dns:host:80", "http://host:80", "host:0", "dns:///host:0", "host"}) {
    EXPECT_EQ(ParseEndpoint(text).status().code(), absl::StatusCode::kInvalidArgument)
        << "\"" << text << "\"";
  }
}

TEST(IsValidNameTest, Charset) {
  EXPECT_TRUE(IsValidName("sentiment"));
  EXPECT_TRUE(IsValidName("Model_1.2-b"));
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName("a b"));
  EXPECT_FALSE(IsValidName("a/b"));
  EXPECT_FALSE(IsValidName("a:b"));
  EXPECT_FALSE(IsValidName("caf\xc3\xa9"));
}

}  // namespace
}  // namespace slm::config
