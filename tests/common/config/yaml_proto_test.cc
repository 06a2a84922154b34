#include "common/config/yaml_proto.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "slmgw/config/v1/config.pb.h"

namespace slm::config {
namespace {

using ::google::protobuf::Message;
using ::testing::HasSubstr;
using ::testing::Not;

// A schema with every field kind the reader supports, built at run time so the test does not
// depend on the gateway's schema. The reference for each case is protobuf's own text format.
constexpr char kTestSchema[] = R"pb(
  name: "yaml_proto_test.proto"
  package: "slmtest"
  syntax: "proto3"
  message_type {
    name: "Everything"
    field { name: "s" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "b" number: 2 label: LABEL_OPTIONAL type: TYPE_BOOL }
    field { name: "i32" number: 3 label: LABEL_OPTIONAL type: TYPE_INT32 }
    field { name: "i64" number: 4 label: LABEL_OPTIONAL type: TYPE_INT64 }
    field { name: "u32" number: 5 label: LABEL_OPTIONAL type: TYPE_UINT32 }
    field { name: "u64" number: 6 label: LABEL_OPTIONAL type: TYPE_UINT64 }
    field { name: "f" number: 7 label: LABEL_OPTIONAL type: TYPE_FLOAT }
    field { name: "d" number: 8 label: LABEL_OPTIONAL type: TYPE_DOUBLE }
    field {
      name: "color"
      number: 9
      label: LABEL_OPTIONAL
      type: TYPE_ENUM
      type_name: ".slmtest.Color"
    }
    field {
      name: "labels"
      number: 10
      label: LABEL_REPEATED
      type: TYPE_MESSAGE
      type_name: ".slmtest.Everything.LabelsEntry"
    }
    field {
      name: "child"
      number: 11
      label: LABEL_OPTIONAL
      type: TYPE_MESSAGE
      type_name: ".slmtest.Everything"
    }
    field {
      name: "children"
      number: 12
      label: LABEL_REPEATED
      type: TYPE_MESSAGE
      type_name: ".slmtest.Everything"
    }
    field { name: "numbers" number: 13 label: LABEL_REPEATED type: TYPE_INT32 }
    field {
      name: "by_id"
      number: 14
      label: LABEL_REPEATED
      type: TYPE_MESSAGE
      type_name: ".slmtest.Everything.ByIdEntry"
    }
    field { name: "one_a" number: 15 label: LABEL_OPTIONAL type: TYPE_STRING oneof_index: 0 }
    field { name: "one_b" number: 16 label: LABEL_OPTIONAL type: TYPE_INT32 oneof_index: 0 }
    field { name: "data" number: 17 label: LABEL_OPTIONAL type: TYPE_BYTES }
    field {
      name: "colors"
      number: 18
      label: LABEL_REPEATED
      type: TYPE_ENUM
      type_name: ".slmtest.Color"
    }
    oneof_decl { name: "choice" }
    nested_type {
      name: "LabelsEntry"
      field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
      field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
      options { map_entry: true }
    }
    nested_type {
      name: "ByIdEntry"
      field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
      field {
        name: "value"
        number: 2
        label: LABEL_OPTIONAL
        type: TYPE_MESSAGE
        type_name: ".slmtest.Everything"
      }
      options { map_entry: true }
    }
  }
  enum_type {
    name: "Color"
    value { name: "COLOR_UNSPECIFIED" number: 0 }
    value { name: "RED" number: 1 }
    value { name: "GREEN" number: 2 }
  }
)pb";

class YamlProtoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    google::protobuf::FileDescriptorProto file;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(kTestSchema, &file));
    ASSERT_NE(pool_.BuildFile(file), nullptr);
    descriptor_ = pool_.FindMessageTypeByName("slmtest.Everything");
    ASSERT_NE(descriptor_, nullptr);
  }

  std::unique_ptr<Message> NewMessage() {
    return std::unique_ptr<Message>(factory_.GetPrototype(descriptor_)->New());
  }

  // The message protobuf's text format parser builds from `text`.
  std::unique_ptr<Message> FromTextFormat(const std::string& text) {
    std::unique_ptr<Message> message = NewMessage();
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, message.get())) << text;
    return message;
  }

  // Parses `yaml` and expects it to equal the text-format reference.
  void ExpectParsesTo(const std::string& yaml, const std::string& reference) {
    std::unique_ptr<Message> parsed = NewMessage();
    absl::Status status = ParseYamlIntoMessage(yaml, "t.yaml", parsed.get());
    ASSERT_TRUE(status.ok()) << status << "\n" << yaml;
    std::unique_ptr<Message> expected = FromTextFormat(reference);
    std::string report;
    google::protobuf::util::MessageDifferencer differencer;
    differencer.ReportDifferencesToString(&report);
    EXPECT_TRUE(differencer.Compare(*expected, *parsed)) << report << "\nyaml:\n" << yaml;
  }

  // Parses `yaml`, expects InvalidArgument, and returns the message.
  std::string ErrorOf(const std::string& yaml) {
    std::unique_ptr<Message> parsed = NewMessage();
    absl::Status status = ParseYamlIntoMessage(yaml, "t.yaml", parsed.get());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status << "\n" << yaml;
    return std::string(status.message());
  }

  google::protobuf::DescriptorPool pool_;
  google::protobuf::DynamicMessageFactory factory_;
  const google::protobuf::Descriptor* descriptor_ = nullptr;
};

TEST_F(YamlProtoTest, ScalarsOfEveryType) {
  ExpectParsesTo(R"(
s: hello world
b: true
i32: -2147483648
i64: 9223372036854775807
u32: 4294967295
u64: 18446744073709551615
f: 1.5
d: -2.25e-3
color: GREEN
data: "raw\tbytes"
)",
                 R"(s: "hello world" b: true i32: -2147483648 i64: 9223372036854775807
                    u32: 4294967295 u64: 18446744073709551615 f: 1.5 d: -0.00225
                    color: GREEN data: "raw\tbytes")");
}

TEST_F(YamlProtoTest, ScalarSpellings) {
  ExpectParsesTo("b: False\ni32: +7\nu32: 007\nd: .inf\ns: 42\n",
                 "b: false i32: 7 u32: 7 d: inf s: \"42\"");
  ExpectParsesTo("f: -.INF\nd: 3\n", "f: -inf d: 3");
}

TEST_F(YamlProtoTest, RepeatedNestedAndMaps) {
  ExpectParsesTo(R"(
numbers: [1, 2, 3]
colors:
  - RED
  - GREEN
child:
  s: inner
  child: {u32: 5}
children:
  - {s: first}
  - s: second
    numbers: [4]
labels:
  team: inference
  "with space": "yes"
by_id:
  7: {s: seven}
  -1: {}
)",
                 R"(numbers: [1, 2, 3] colors: [RED, GREEN]
                    child { s: "inner" child { u32: 5 } }
                    children { s: "first" } children { s: "second" numbers: 4 }
                    labels { key: "team" value: "inference" }
                    labels { key: "with space" value: "yes" }
                    by_id { key: 7 value { s: "seven" } } by_id { key: -1 value {} })");
}

TEST_F(YamlProtoTest, EmptyDocumentsGiveAnEmptyMessage) {
  ExpectParsesTo("", "");
  ExpectParsesTo("# only a comment\n\n", "");
  ExpectParsesTo("---\n", "");
  ExpectParsesTo("~\n", "");
}

TEST_F(YamlProtoTest, NullValuesLeaveFieldsUnset) {
  YamlSourceMap positions;
  std::unique_ptr<Message> parsed = NewMessage();
  ASSERT_TRUE(ParseYamlIntoMessage("s:\nu32: ~\nchild:\nnumbers:\ni32: 0\n", "t.yaml", parsed.get(),
                                   &positions)
                  .ok());
  EXPECT_EQ(parsed->ByteSizeLong(), 0u) << parsed->DebugString();
  EXPECT_FALSE(positions.HasValue("s"));
  EXPECT_FALSE(positions.HasValue("child"));
  EXPECT_TRUE(positions.HasValue("i32"));  // An explicit zero is a value.
  EXPECT_FALSE(positions.HasValue("d"));
}

TEST_F(YamlProtoTest, ReplacesPreviousContents) {
  std::unique_ptr<Message> message = FromTextFormat("s: \"old\" numbers: 9");
  ASSERT_TRUE(ParseYamlIntoMessage("numbers: [1]\n", "t.yaml", message.get()).ok());
  std::unique_ptr<Message> expected = FromTextFormat("numbers: 1");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*expected, *message))
      << message->DebugString();
}

TEST_F(YamlProtoTest, LeavesMessageUnchangedOnError) {
  std::unique_ptr<Message> message = FromTextFormat("s: \"old\"");
  EXPECT_FALSE(ParseYamlIntoMessage("s: new\nu32: -1\n", "t.yaml", message.get()).ok());
  std::unique_ptr<Message> expected = FromTextFormat("s: \"old\"");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*expected, *message));
}

TEST_F(YamlProtoTest, RecordsPositions) {
  YamlSourceMap positions;
  std::unique_ptr<Message> parsed = NewMessage();
  ASSERT_TRUE(ParseYamlIntoMessage("s: a\nchildren:\n  - s: b\n    u32: 3\n", "t.yaml",
                                   parsed.get(), &positions)
                  .ok());
  auto at = [&](std::string_view path) {
    std::optional<YamlSourceMap::Position> position = positions.Locate(path);
    return position ? absl::StrCat(position->line, ":", position->column) : "none";
  };
  EXPECT_EQ(at("s"), "1:1");  // Fields are located by their key.
  EXPECT_EQ(at("children[0]"), "3:5");
  EXPECT_EQ(at("children[0].u32"), "4:5");
  EXPECT_EQ(at("children[0].color"), "3:5");  // Absent: falls back to the enclosing element.
  EXPECT_EQ(at("b"), "1:1");                  // Absent at top level: the document.
  EXPECT_EQ(std::string(positions.Error("children[0].u32", "too big").message()),
            "t.yaml:4:5: children[0].u32: too big");
}

TEST_F(YamlProtoTest, UnknownKeyListsKnownKeysAndSuggests) {
  EXPECT_EQ(ErrorOf("child:\n  s: x\n  colr: RED\n"),
            "t.yaml:3:3: child.colr: unknown key (known keys: s, b, i32, i64, u32, u64, f, d, "
            "color, labels, child, children, numbers, by_id, one_a, one_b, data, colors); did "
            "you mean \"color\"?");
  // No suggestion when nothing is close.
  EXPECT_THAT(ErrorOf("zzzzzzzz: 1\n"), Not(HasSubstr("did you mean")));
}

TEST_F(YamlProtoTest, TypeMismatchesNamePathPositionAndExpectation) {
  EXPECT_EQ(ErrorOf("children:\n  - {}\n  - s: [a, b]\n"),
            "t.yaml:3:5: children[1].s: expected a string, got a sequence");
  EXPECT_EQ(ErrorOf("u32: two\n"),
            "t.yaml:1:1: u32: expected an unsigned integer in [0, 4294967295], got \"two\"");
  EXPECT_THAT(ErrorOf("u32: -1\n"), HasSubstr("u32: expected an unsigned integer, got \"-1\""));
  EXPECT_THAT(ErrorOf("u32: 4294967296\n"), HasSubstr("got \"4294967296\""));
  EXPECT_THAT(ErrorOf("u64: 18446744073709551616\n"), HasSubstr("u64: expected an unsigned"));
  EXPECT_THAT(ErrorOf("i32: 2147483648\n"), HasSubstr("i32: expected an integer in"));
  EXPECT_THAT(ErrorOf("i64: 1.5\n"), HasSubstr("i64: expected an integer"));
  EXPECT_THAT(ErrorOf("i32: 0x10\n"), HasSubstr("i32: expected an integer"));
  EXPECT_THAT(ErrorOf("i32: ' 1'\n"), HasSubstr("i32: expected an integer"));
  EXPECT_THAT(ErrorOf("b: yes\n"), HasSubstr("b: expected true or false, got \"yes\""));
  EXPECT_THAT(ErrorOf("f: 1e39\n"), HasSubstr("f: expected a number within float range"));
  EXPECT_THAT(ErrorOf("d: fast\n"), HasSubstr("d: expected a number, got \"fast\""));
  EXPECT_THAT(ErrorOf("color: BLUE\n"),
              HasSubstr("color: expected one of COLOR_UNSPECIFIED, RED, GREEN, got \"BLUE\""));
  EXPECT_THAT(ErrorOf("child: 5\n"), HasSubstr("t.yaml:1:1: child: expected a map, got \"5\""));
  EXPECT_THAT(ErrorOf("numbers: 5\n"), HasSubstr("numbers: expected a sequence, got \"5\""));
  EXPECT_THAT(ErrorOf("numbers: [1, x]\n"), HasSubstr("t.yaml:1:14: numbers[1]: expected an"));
  EXPECT_THAT(ErrorOf("numbers: [1, ~]\n"), HasSubstr("numbers[1]: expected an integer"));
  EXPECT_THAT(ErrorOf("labels: [a]\n"), HasSubstr("labels: expected a map, got a sequence"));
  EXPECT_THAT(ErrorOf("labels: {a: {b: c}}\n"),
              HasSubstr("labels[\"a\"]: expected a string, got a map"));
  EXPECT_THAT(ErrorOf("by_id: {seven: {}}\n"), HasSubstr("by_id[\"seven\"]: expected an integer"));
  EXPECT_THAT(ErrorOf("[1, 2]\n"), HasSubstr("t.yaml:1:1: expected a map of top-level keys"));
  EXPECT_THAT(ErrorOf("just text\n"), HasSubstr("expected a map of top-level keys, got \"just"));
  EXPECT_THAT(ErrorOf("? [a]\n: 1\n"), HasSubstr("expected a field name as key, got a sequence"));
}

TEST_F(YamlProtoTest, DuplicateKeysAreRejected) {
  EXPECT_EQ(ErrorOf("s: a\nu32: 1\ns: b\n"),
            "t.yaml:3:1: s: duplicate key (first given at line 1)");
  EXPECT_THAT(ErrorOf("child:\n  s: a\n  s: a\n"), HasSubstr("t.yaml:3:3: child.s: duplicate key"));
  EXPECT_THAT(ErrorOf("labels:\n  k: a\n  k: b\n"),
              HasSubstr("t.yaml:3:3: labels[\"k\"]: duplicate key (first given at line 2)"));
}

TEST_F(YamlProtoTest, OneofMembersConflict) {
  ExpectParsesTo("one_b: 4\n", "one_b: 4");
  EXPECT_THAT(ErrorOf("one_a: x\none_b: 4\n"),
              HasSubstr("t.yaml:2:1: one_b: conflicts with \"one_a\" (only one of oneof "
                        "\"choice\" may be set)"));
}

TEST_F(YamlProtoTest, SyntaxErrorsCarryPosition) {
  EXPECT_THAT(ErrorOf("s: a\nnumbers: [1, 2\n"), HasSubstr("t.yaml:3:1: invalid YAML:"));
  EXPECT_THAT(ErrorOf("- a\nb: c\n"), HasSubstr("t.yaml:2:"));
  EXPECT_THAT(ErrorOf("s: a\n  u32: 1\n"), HasSubstr("t.yaml:2:"));
  EXPECT_THAT(ErrorOf("s: *missing\n"), HasSubstr("invalid YAML: the referenced anchor"));
  EXPECT_THAT(ErrorOf("s: a\n---\ns: b\n"), HasSubstr("t.yaml:3:1: expected one YAML document"));
}

// yaml-cpp 0.7's LoadAll never returns on these (jbeder/yaml-cpp#1040); the reader must.
TEST_F(YamlProtoTest, StreamsThatStallYamlCppAreErrors) {
  EXPECT_THAT(ErrorOf(","), HasSubstr("t.yaml:1:1: invalid YAML"));
  EXPECT_THAT(ErrorOf("#\n,"), HasSubstr("t.yaml:2:1: invalid YAML"));
  EXPECT_THAT(ErrorOf("s: a\n,\n"), HasSubstr("t.yaml:2:"));
  EXPECT_THAT(ErrorOf("---\n---\ns: a\n"), HasSubstr("expected one YAML document"));
  ExpectParsesTo("s: a\n---\n", "s: \"a\"");  // A trailing empty document is fine.
}

TEST_F(YamlProtoTest, DeepNestingIsAnErrorNotACrash) {
  std::string nested;
  for (int i = 0; i < 100; ++i) nested += "{child: ";
  nested += "{}";
  for (int i = 0; i < 100; ++i) nested += "}";
  EXPECT_THAT(ErrorOf("child: " + nested + "\n"), HasSubstr("nested deeper than 64 messages"));
  // yaml-cpp's own guard, below any message.
  EXPECT_THAT(ErrorOf("numbers: " + std::string(5000, '[') + "\n"), HasSubstr("t.yaml:"));
}

TEST_F(YamlProtoTest, AnchorsAndAliasesAreExpanded) {
  ExpectParsesTo("child: &base {s: shared, u32: 2}\nchildren: [*base, *base]\n",
                 R"(child { s: "shared" u32: 2 } children { s: "shared" u32: 2 }
                    children { s: "shared" u32: 2 })");
}

}  // namespace
}  // namespace slm::config
