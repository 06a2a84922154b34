#include "router/route_table.h"

#include "gtest/gtest.h"

namespace slm::router {
namespace {

slmgw::config::v1::GatewayConfig TwoRoutes() {
  slmgw::config::v1::GatewayConfig config;
  auto* sentiment = config.add_routes();
  sentiment->set_name("sentiment");
  sentiment->add_tasks("sentiment");
  sentiment->add_tasks("polarity");
  sentiment->set_pool("sentiment-pool");
  auto* entities = config.add_routes();
  entities->set_name("entities");
  entities->add_tasks("ner");
  entities->set_pool("entities-pool");
  return config;
}

TEST(RouteTable, RouteHintWinsOverTask) {
  auto table = RouteTable::Create(TwoRoutes());
  ASSERT_TRUE(table.ok()) << table.status();
  slmgw::v1::RequestOptions options;
  options.set_route_hint("entities");
  options.set_task("sentiment");
  auto decision = (*table)->Decide(options);
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_EQ(decision->route(), "entities");
  EXPECT_EQ(decision->pool(), "entities-pool");
  ASSERT_EQ(decision->signals_size(), 1);
  EXPECT_EQ(decision->signals(0).name(), "route_hint");
  EXPECT_NE(decision->reason().find("entities"), std::string::npos);
}

TEST(RouteTable, TaskMapsToItsRoute) {
  auto table = RouteTable::Create(TwoRoutes());
  ASSERT_TRUE(table.ok());
  slmgw::v1::RequestOptions options;
  options.set_task("polarity");
  auto decision = (*table)->Decide(options);
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_EQ(decision->route(), "sentiment");
  EXPECT_EQ(decision->signals(0).name(), "task");
}

TEST(RouteTable, UnknownTaskAndRouteAreNotFoundAndListAlternatives) {
  auto table = RouteTable::Create(TwoRoutes());
  ASSERT_TRUE(table.ok());
  slmgw::v1::RequestOptions options;
  options.set_task("translation");
  auto by_task = (*table)->Decide(options);
  EXPECT_EQ(by_task.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(by_task.status().message().find("ner, polarity, sentiment"), std::string::npos)
      << by_task.status();
  options.Clear();
  options.set_route_hint("nope");
  auto by_hint = (*table)->Decide(options);
  EXPECT_EQ(by_hint.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(by_hint.status().message().find("'nope'"), std::string::npos);
}

TEST(RouteTable, EmptyRequestUsesDefaultRouteOrFails) {
  auto config = TwoRoutes();
  auto without_default = RouteTable::Create(config);
  ASSERT_TRUE(without_default.ok());
  EXPECT_EQ((*without_default)->Decide({}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  config.set_default_route("sentiment");
  auto with_default = RouteTable::Create(config);
  ASSERT_TRUE(with_default.ok());
  auto decision = (*with_default)->Decide({});
  ASSERT_TRUE(decision.ok());
  EXPECT_EQ(decision->route(), "sentiment");
  EXPECT_EQ(decision->signals(0).name(), "default");
}

TEST(RouteTable, RejectsTaskOnTwoRoutesAndDanglingDefault) {
  auto config = TwoRoutes();
  config.mutable_routes(1)->add_tasks("sentiment");
  EXPECT_EQ(RouteTable::Create(config).status().code(), absl::StatusCode::kInvalidArgument);
  auto dangling = TwoRoutes();
  dangling.set_default_route("missing");
  EXPECT_EQ(RouteTable::Create(dangling).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace slm::router
