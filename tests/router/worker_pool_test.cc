#include "router/worker_pool.h"

#include <map>

#include "gtest/gtest.h"

namespace slm::router {
namespace {

std::unique_ptr<WorkerPool> MakePool(int endpoints) {
  slmgw::config::v1::PoolConfig config;
  config.set_name("pool");
  for (int i = 0; i < endpoints; ++i) config.add_endpoints("127.0.0.1:" + std::to_string(1 + i));
  auto pool = WorkerPool::Create(config, DefaultChannelFactory());
  EXPECT_TRUE(pool.ok()) << pool.status();
  return *std::move(pool);
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
  Endpoint* first = pool->Pick(nullptr);
  Endpoint* other = pool->Pick(first);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(other, nullptr);
  ASSERT_NE(first, other);
  first->reported_queue_depth = 10;
  std::map<Endpoint*, int> picks;
  for (int i = 0; i < 200; ++i) picks[pool->Pick(nullptr)]++;
  // With two endpoints, both random choices land on the busy one a quarter of the time.
  EXPECT_GT(picks[other], 120);
  EXPECT_LT(picks[first], 80);
}

TEST(WorkerPool, FailingEndpointIsSkippedWhileAnotherIsHealthy) {
  auto pool = MakePool(3);
  Endpoint* failing = pool->Pick(nullptr);
  for (int i = 0; i < 3; ++i) WorkerPool::RecordOutcome(*failing, /*reachable=*/false);
  for (int i = 0; i < 100; ++i) EXPECT_NE(pool->Pick(nullptr), failing);
  WorkerPool::RecordOutcome(*failing, /*reachable=*/true);
  bool picked_again = false;
  for (int i = 0; i < 200 && !picked_again; ++i) picked_again = pool->Pick(nullptr) == failing;
  EXPECT_TRUE(picked_again);
}

TEST(WorkerPool, ExcludeLeavesNothingInASingleEndpointPool) {
  auto pool = MakePool(1);
  Endpoint* only = pool->Pick(nullptr);
  ASSERT_NE(only, nullptr);
  EXPECT_EQ(pool->Pick(only), nullptr);
}

TEST(WorkerPool, ScopedCallCountsInFlight) {
  auto pool = MakePool(1);
  Endpoint* endpoint = pool->Pick(nullptr);
  {
    ScopedCall call(endpoint);
    EXPECT_EQ(endpoint->in_flight.load(), 1);
    EXPECT_EQ(endpoint->Score(), 1);
  }
  EXPECT_EQ(endpoint->in_flight.load(), 0);
}

}  // namespace
}  // namespace slm::router
