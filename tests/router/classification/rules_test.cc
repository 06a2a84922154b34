#include "router/classification/rules.h"

#include "gtest/gtest.h"

namespace slm::router {
namespace {

using slmgw::config::v1::RuleConfig;

TEST(ContainsKeywordTest, WholeWordsIgnoringAsciiCase) {
  EXPECT_TRUE(ContainsKeyword("My Credit Card was declined", "credit card"));
  EXPECT_TRUE(ContainsKeyword("iban?", "iban"));
  EXPECT_TRUE(ContainsKeyword("IBAN", "iban"));
  EXPECT_FALSE(ContainsKeyword("libanese food", "iban"));   // inside a word
  EXPECT_FALSE(ContainsKeyword("ibans", "iban"));
  EXPECT_FALSE(ContainsKeyword("ibanx iban2", "iban"));
  EXPECT_TRUE(ContainsKeyword("ibanx iban", "iban"));       // a later occurrence counts
  EXPECT_FALSE(ContainsKeyword("ib", "iban"));              // shorter than the keyword
  EXPECT_FALSE(ContainsKeyword("", "iban"));
  EXPECT_FALSE(ContainsKeyword("anything", ""));
  EXPECT_FALSE(ContainsKeyword("caf\xc3\xa9iban", "iban"));  // a UTF-8 letter joins the word
}

google::protobuf::RepeatedPtrField<RuleConfig> Rules(std::initializer_list<RuleConfig> list) {
  google::protobuf::RepeatedPtrField<RuleConfig> rules;
  for (const RuleConfig& rule : list) *rules.Add() = rule;
  return rules;
}

RuleConfig Rule(const std::string& name, const std::string& route) {
  RuleConfig rule;
  rule.set_name(name);
  rule.set_route(route);
  return rule;
}

TEST(RuleSetTest, EveryConditionMustHoldAndTheFirstMatchingRuleWins) {
  RuleConfig cards = Rule("cards", "banking");
  cards.add_keywords("Credit Card");  // configured case does not matter
  cards.add_tenants("bank-app");
  RuleConfig digits = Rule("digits", "fraud");
  digits.add_patterns("\\b[0-9]{4}-[0-9]{4}\\b");
  RuleConfig vip = Rule("vip", "premium");
  (*vip.mutable_metadata())["tier"] = "gold";
  RuleConfig long_text = Rule("long", "summarize");
  long_text.set_min_length(20);
  long_text.set_max_length(30);
  auto rules = RuleSet::Create(Rules({cards, digits, vip, long_text}));
  ASSERT_TRUE(rules.ok()) << rules.status();

  slmgw::v1::RequestOptions bank;
  bank.set_tenant("bank-app");
  slmgw::v1::RequestOptions other;
  other.set_tenant("shop");
  slmgw::v1::RequestOptions gold;
  (*gold.mutable_metadata())["tier"] = "gold";
  slmgw::v1::RequestOptions silver;
  (*silver.mutable_metadata())["tier"] = "silver";

  auto matched = [&](absl::string_view text, const slmgw::v1::RequestOptions& options) {
    const RuleSet::Rule* rule = (*rules)->Match(text, options);
    return rule == nullptr ? std::string("none") : rule->name;
  };
  EXPECT_EQ(matched("my CREDIT CARD", bank), "cards");
  EXPECT_EQ(matched("my credit card", other), "none");  // keyword without the tenant
  EXPECT_EQ(matched("card 1234-5678 lost", other), "digits");
  EXPECT_EQ(matched("card 1234-56789", other), "none");
  EXPECT_EQ(matched("hello", gold), "vip");
  EXPECT_EQ(matched("hello", silver), "none");
  EXPECT_EQ(matched("exactly twenty chars", other), "long");          // 20 bytes
  EXPECT_EQ(matched("exactly thirty one bytes long!!", other), "none");  // 31 bytes
  EXPECT_EQ(matched("nineteen bytes here", other), "none");          // 19 bytes
  // Both cards and digits hold: the earlier rule wins.
  EXPECT_EQ(matched("credit card 1234-5678", bank), "cards");
}

TEST(RuleSetTest, BadPatternIsAnErrorNamingTheRule) {
  RuleConfig bad = Rule("broken", "x");
  bad.add_patterns("a(b");
  auto rules = RuleSet::Create(Rules({bad}));
  ASSERT_FALSE(rules.ok());
  EXPECT_NE(rules.status().message().find("'broken'"), std::string::npos) << rules.status();
  EXPECT_NE(rules.status().message().find("a(b"), std::string::npos);
}

}  // namespace
}  // namespace slm::router
