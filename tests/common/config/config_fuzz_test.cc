// Robustness: mutated and truncated configurations must produce a status, never a crash, an
// exception or a hang. Deterministic (fixed seed) so a failure reproduces.
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/config/gateway_config.h"
#include "common/config/yaml_proto.h"
#include "google/protobuf/struct.pb.h"
#include "gtest/gtest.h"

namespace slm::config {
namespace {

constexpr char kSource[] = "fuzz.yaml";

// Characters that change YAML structure, plus a few that upset naive parsers.
constexpr char kInteresting[] = ":-[]{},&*!|>'\"%@`#?~\n\t \\0123456789abz.";

std::string Mutate(const std::string& text, std::mt19937& random) {
  std::string out = text;
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(random); };
  int edits = 1 + static_cast<int>(pick(4));
  for (int e = 0; e < edits && !out.empty(); ++e) {
    size_t at = pick(out.size());
    switch (pick(7)) {
      case 0:  // Truncate.
        out.resize(at);
        break;
      case 1:  // Delete a character.
        out.erase(at, 1);
        break;
      case 2:  // Insert a structural character.
        out.insert(at, 1, kInteresting[pick(sizeof(kInteresting) - 1)]);
        break;
      case 3:  // Replace with any byte.
        out[at] = static_cast<char>(pick(256));
        break;
      case 4: {  // Duplicate a line.
        std::vector<std::string> lines = absl::StrSplit(out, '\n');
        size_t line = pick(lines.size());
        lines.insert(lines.begin() + line, lines[line]);
        out = absl::StrJoin(lines, "\n");
        break;
      }
      case 5: {  // Swap two lines.
        std::vector<std::string> lines = absl::StrSplit(out, '\n');
        std::swap(lines[pick(lines.size())], lines[pick(lines.size())]);
        out = absl::StrJoin(lines, "\n");
        break;
      }
      case 6:  // Change indentation.
        out.insert(at, std::string(1 + pick(3), ' '));
        break;
    }
  }
  return out;
}

// Every outcome is OK or an InvalidArgument that names the source.
void ExpectWellFormedOutcome(const std::string& yaml) {
  for (ConfigRole role : {ConfigRole::kAllInOne, ConfigRole::kRouter, ConfigRole::kWorker}) {
    absl::StatusOr<std::shared_ptr<const slmgw::config::v1::GatewayConfig>> config;
    EXPECT_NO_THROW(config = ParseGatewayConfig(yaml, kSource, role));
    if (config.ok()) {
      EXPECT_NE(*config, nullptr);
      continue;
    }
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << yaml;
    EXPECT_TRUE(absl::StartsWith(config.status().message(), kSource)) << config.status() << "\n"
                                                                      << yaml;
  }
}

TEST(ConfigFuzzTest, MutatedConfigsNeverCrashOrThrow) {
  const std::string seeds[] = {
      std::string(DefaultConfigYaml()),
      "server: {listen_address: \"[::]:0\"}\nworkers:\n  - {name: a, model_path: a.gguf}\n"
      "pools: [{name: p, endpoints: [\"inprocess:a\", \"dns:///w:1\"]}]\n"
      "routes: [{name: r, tasks: [x, y], pool: p, deadline_ms: 5}]\ndefault_route: r\n",
  };
  std::mt19937 random(20261128);
  int accepted = 0;
  int rejected = 0;
  for (const std::string& seed : seeds) {
    ExpectWellFormedOutcome(seed);
    for (int i = 0; i < 300; ++i) {
      std::string mutated = Mutate(seed, random);
      ExpectWellFormedOutcome(mutated);
      (ParseGatewayConfig(mutated, kSource, ConfigRole::kAllInOne).ok() ? accepted : rejected)++;
    }
    for (size_t cut = 0; cut <= seed.size(); cut += 7) {
      ExpectWellFormedOutcome(seed.substr(0, cut));
    }
  }
  // The mutations must exercise both outcomes, or the loop tests nothing.
  EXPECT_GT(rejected, 100);
  EXPECT_GT(accepted, 0);
}

TEST(ConfigFuzzTest, HostileInputs) {
  std::string alias_bomb = "a: &a [x, x, x, x, x, x, x, x]\n";
  for (char name = 'b'; name <= 'k'; ++name) {
    absl::StrAppend(
        &alias_bomb, std::string(1, name), ": &", std::string(1, name), " [",
        absl::StrJoin(std::vector<std::string>(8, std::string("*") + static_cast<char>(name - 1)),
                      ", "),
        "]\n");
  }
  const std::vector<std::string> inputs = {
      std::string(20000, '['),
      std::string(20000, '{'),
      std::string(5000, '-') + " x",
      std::string("\0\0\0", 3),
      "\xff\xfe\xfd",
      "%YAML 9.9\n---\na: 1\n",
      "!!binary aGVsbG8=\n",
      "server: !!map {listen_address: 1}\n",
      "workers: [*undefined]\n",
      "? ? ? ? a\n",
      "server:\n\tlisten_address: x\n",
      "routes:\n  - &r {name: r, pool: p}\n  - *r\n",
      "workers:\n  - name: w\n    model_path: \"" + std::string(100000, 'm') + "\"\n",
      alias_bomb,
      "---\n---\n---\n",
      "\"unterminated",
      ",",
      "#\n,",
      "a: 1\n,\n",
      "[:",
      "{:",
      "[:]",
      "{:]",
      "key: |\n  literal\n   more\nfolded: >\n  x\n",
  };
  for (const std::string& input : inputs) ExpectWellFormedOutcome(input);

  // A recursive schema (Struct -> Value -> Struct): nesting is bounded by the reader, not by
  // the stack.
  std::string nested;
  for (int i = 0; i < 40; ++i) nested += "{fields: {a: {struct_value: ";
  nested += "{}";
  for (int i = 0; i < 40; ++i) nested += "}}}";
  google::protobuf::Struct message;
  absl::Status status;
  EXPECT_NO_THROW(
      status = ParseYamlIntoMessage(absl::StrCat("fields: {a: {struct_value: ", nested, "}}"),
                                    kSource, &message));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "nested deeper than")) << status;
}

}  // namespace
}  // namespace slm::config
