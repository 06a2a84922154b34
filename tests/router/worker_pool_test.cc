#include "router/worker_pool.h"

#include <map>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace slm::router {
namespace {

using std::chrono::milliseconds;

std::unique_ptr<WorkerPool> MakePool(int endpoints, uint32_t max_in_flight = 0) {
  slmgw::config::v1::PoolConfig config;
  config.set_name("pool");
  config.set_cooldown_ms(1000);
  config.set_max_in_flight_per_endpoint(max_in_flight);
  for (int i = 0; i < endpoints; ++i) config.add_endpoints("127.0.0.1:" + std::to_string(1 + i));
  auto pool = WorkerPool::Create(config, DefaultChannelFactory());
  EXPECT_TRUE(pool.ok()) << pool.status();
  return *std::move(pool);
}

std::shared_ptr<Endpoint> PickNow(WorkerPool& pool, std::vector<const Endpoint*> exclude = {},
                                  PickFailure* failure = nullptr) {
  PickFailure ignored;
  return pool.Pick(exclude, Clock::now(), failure != nullptr ? failure : &ignored);
}

TEST(WorkerPool, EmptyPoolAndInProcessEndpointsAreRejected) {
  slmgw::config::v1::PoolConfig config;
  config.set_name("empty");
  EXPECT_EQ(WorkerPool::Create(config, DefaultChannelFactory()).status().code(),
            absl::StatusCode::kInvalidArgument);
  config.add_endpoints("inprocess:sentiment");
  auto pool = WorkerPool::Create(config, DefaultChannelFactory());
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(pool.status().message().find("pool 'empty'"), std::string::npos);
}

TEST(WorkerPool, PowerOfTwoChoicesPrefersTheLessLoadedEndpoint) {
  auto pool = MakePool(2);
  auto first = PickNow(*pool);
  auto other = PickNow(*pool, {first.get()});
  ASSERT_NE(first, nullptr);
  ASSERT_NE(other, nullptr);
  ASSERT_NE(first, other);
  first->reported_queue_depth = 10;
  std::map<Endpoint*, int> picks;
  for (int i = 0; i < 200; ++i) picks[PickNow(*pool).get()]++;
  // With two endpoints, both random choices land on the busy one a quarter of the time.
  EXPECT_GT(picks[other.get()], 120);
  EXPECT_LT(picks[first.get()], 80);
}

TEST(WorkerPool, AnEndpointWithAnOpenCircuitIsNotPickedUntilItsCooldownEnds) {
  auto pool = MakePool(3);
  auto failing = PickNow(*pool);
  const auto t0 = Clock::now();
  EXPECT_FALSE(pool->RecordOutcome(*failing, CallOutcome::kFailure, t0));
  EXPECT_FALSE(pool->RecordOutcome(*failing, CallOutcome::kFailure, t0));
  EXPECT_TRUE(pool->RecordOutcome(*failing, CallOutcome::kFailure, t0));  // opened
  PickFailure failure;
  for (int i = 0; i < 100; ++i) EXPECT_NE(pool->Pick({}, t0, &failure), failing);
  // After the cooldown it is probed (once) again.
  bool probed = false;
  for (int i = 0; i < 200 && !probed; ++i) {
    probed = pool->Pick({}, t0 + milliseconds(1000), &failure) == failing;
  }
  EXPECT_TRUE(probed);
}

TEST(WorkerPool, EveryCircuitOpenIsCoolingDownAndAllExcludedIsAllTried) {
  auto pool = MakePool(2);
  const auto t0 = Clock::now();
  for (const auto& endpoint : pool->Endpoints()) {
    for (int i = 0; i < 3; ++i) pool->RecordOutcome(*endpoint, CallOutcome::kFailure, t0);
  }
  PickFailure failure;
  EXPECT_EQ(pool->Pick({}, t0, &failure), nullptr);
  EXPECT_EQ(failure, PickFailure::kCoolingDown);
  auto fresh = MakePool(1);
  auto only = PickNow(*fresh);
  ASSERT_NE(only, nullptr);
  EXPECT_EQ(PickNow(*fresh, {only.get()}, &failure), nullptr);
  EXPECT_EQ(failure, PickFailure::kAllTried);
}

TEST(WorkerPool, FullEndpointsAreSkippedAndAllFullIsReported) {
  auto pool = MakePool(2, /*max_in_flight=*/1);
  auto first = PickNow(*pool);
  ScopedCall first_call(first.get());
  for (int i = 0; i < 20; ++i) EXPECT_NE(PickNow(*pool), first);
  auto second = PickNow(*pool);
  ScopedCall second_call(second.get());
  PickFailure failure;
  EXPECT_EQ(PickNow(*pool, {}, &failure), nullptr);
  EXPECT_EQ(failure, PickFailure::kFull);
}

TEST(WorkerPool, UnhealthyEndpointsAreUsedOnlyWhenNoHealthyOneIsLeft) {
  auto pool = MakePool(2);
  auto sick = pool->Endpoints()[0];
  sick->healthy = false;
  for (int i = 0; i < 50; ++i) EXPECT_NE(PickNow(*pool), sick);
  pool->Endpoints()[1]->healthy = false;
  bool used = false;
  for (int i = 0; i < 100 && !used; ++i) used = PickNow(*pool) == sick;
  EXPECT_TRUE(used);
}

TEST(WorkerPool, ScopedCallCountsInFlight) {
  auto pool = MakePool(1);
  auto endpoint = PickNow(*pool);
  {
    ScopedCall call(endpoint.get());
    EXPECT_EQ(endpoint->in_flight.load(), 1);
    EXPECT_EQ(endpoint->Score(), 1);
  }
  EXPECT_EQ(endpoint->in_flight.load(), 0);
}

// A resolver whose answers the test sets.
struct FakeDns {
  absl::Mutex mutex;
  std::map<std::string, absl::StatusOr<std::vector<std::string>>> answers;
  int lookups = 0;
  Resolver resolver() {
    return
        [this](const std::string& host, uint16_t port) -> absl::StatusOr<std::vector<std::string>> {
          absl::MutexLock lock(&mutex);
          ++lookups;
          auto it = answers.find(host);
          if (it == answers.end()) return absl::UnavailableError("no such host " + host);
          if (!it->second.ok()) return it->second.status();
          std::vector<std::string> addresses;
          for (const auto& ip : *it->second) addresses.push_back(ip + ":" + std::to_string(port));
          return addresses;
        };
  }
};

std::vector<std::string> Addresses(const WorkerPool& pool) {
  std::vector<std::string> addresses;
  for (const auto& endpoint : pool.Endpoints()) addresses.push_back(endpoint->address);
  std::sort(addresses.begin(), addresses.end());
  return addresses;
}

TEST(WorkerPool, DnsEndpointsFollowTheResolverWithoutDroppingCallsInFlight) {
  FakeDns dns;
  dns.answers["workers.slm"] = std::vector<std::string>{"10.0.0.1", "10.0.0.2"};
  slmgw::config::v1::PoolConfig config;
  config.set_name("dns-pool");
  config.add_endpoints("dns:///workers.slm:50052");
  config.add_endpoints("127.0.0.1:7");
  config.set_resolve_interval_ms(1000);
  PoolOptions options;
  options.resolver = dns.resolver();
  auto created = WorkerPool::Create(config, DefaultChannelFactory(), options);
  ASSERT_TRUE(created.ok()) << created.status();
  WorkerPool& pool = **created;
  EXPECT_EQ(Addresses(pool),
            (std::vector<std::string>{"10.0.0.1:50052", "10.0.0.2:50052", "127.0.0.1:7"}));

  // A call in flight on 10.0.0.1 when it leaves the Service.
  std::shared_ptr<Endpoint> leaving;
  for (const auto& endpoint : pool.Endpoints()) {
    if (endpoint->address == "10.0.0.1:50052") leaving = endpoint;
  }
  std::shared_ptr<Endpoint> staying = pool.Endpoints()[1];
  ASSERT_EQ(staying->address, "10.0.0.2:50052");
  // What a call in flight holds: the endpoint (shared) and its in-flight count.
  std::shared_ptr<Endpoint> call_holds = leaving;
  auto call = std::make_unique<ScopedCall>(call_holds.get());
  std::weak_ptr<Endpoint> leaving_weak = leaving;
  leaving.reset();

  dns.answers["workers.slm"] = std::vector<std::string>{"10.0.0.2", "10.0.0.3"};
  const auto t0 = Clock::now();
  const int lookups = dns.lookups;
  ASSERT_TRUE(pool.Refresh(t0 + milliseconds(10)).ok());  // not due yet
  EXPECT_EQ(dns.lookups, lookups);
  ASSERT_TRUE(pool.Refresh(t0 + milliseconds(2000)).ok());
  EXPECT_EQ(Addresses(pool),
            (std::vector<std::string>{"10.0.0.2:50052", "10.0.0.3:50052", "127.0.0.1:7"}));
  // The endpoint that stayed is the same object (its load and circuit state carry over).
  EXPECT_EQ(pool.Endpoints()[0].get(), staying.get());
  // The removed one lives while its call does.
  ASSERT_FALSE(leaving_weak.expired());
  EXPECT_EQ(leaving_weak.lock()->in_flight.load(), 1);
  call.reset();
  call_holds.reset();
  EXPECT_TRUE(leaving_weak.expired());

  // A failed resolution keeps the last addresses and is reported.
  dns.answers["workers.slm"] = absl::UnavailableError("SERVFAIL");
  absl::Status failed = pool.Refresh(t0, /*force=*/true);
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(failed.message().find("dns:///workers.slm:50052"), std::string::npos);
  EXPECT_EQ(Addresses(pool).size(), 3u);
  // Scaled to zero: the name's endpoints go, the static one stays.
  dns.answers["workers.slm"] = std::vector<std::string>{};
  ASSERT_TRUE(pool.Refresh(t0, /*force=*/true).ok());
  EXPECT_EQ(Addresses(pool), (std::vector<std::string>{"127.0.0.1:7"}));
}

TEST(WorkerPool, ANameThatDoesNotResolveYetLeavesThePoolEmptyUntilItDoes) {
  FakeDns dns;
  slmgw::config::v1::PoolConfig config;
  config.set_name("later");
  config.add_endpoints("dns:///not-yet.slm:50052");
  PoolOptions options;
  options.resolver = dns.resolver();
  auto created = WorkerPool::Create(config, DefaultChannelFactory(), options);
  ASSERT_TRUE(created.ok()) << created.status();
  PickFailure failure;
  EXPECT_EQ(PickNow(**created, {}, &failure), nullptr);
  EXPECT_EQ(failure, PickFailure::kNoEndpoints);
  EXPECT_NE((*created)->ResolutionError().find("not-yet.slm"), std::string::npos);
  dns.answers["not-yet.slm"] = std::vector<std::string>{"10.1.1.1"};
  ASSERT_TRUE((*created)->Refresh(Clock::now(), /*force=*/true).ok());
  EXPECT_NE(PickNow(**created), nullptr);
  EXPECT_EQ((*created)->ResolutionError(), "");
}

TEST(WorkerPool, SystemResolverFindsLocalhost) {
  absl::StatusOr<std::vector<std::string>> addresses = SystemResolver()("localhost", 50052);
  ASSERT_TRUE(addresses.ok()) << addresses.status();
  ASSERT_FALSE(addresses->empty());
  bool loopback = false;
  for (const auto& address : *addresses) {
    loopback |= address == "127.0.0.1:50052" || address == "[::1]:50052";
  }
  EXPECT_TRUE(loopback);
  EXPECT_FALSE(SystemResolver()("no-such-host.invalid", 1).ok());
}

}  // namespace
}  // namespace slm::router
