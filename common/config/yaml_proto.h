// Reads YAML text into any protobuf message, strictly, through the message's descriptor.
//
// The mapping is the obvious one: a YAML map is a message (keys are proto field names), a
// sequence is a repeated field, a scalar is parsed by the field's type (string, bytes, bool as
// true/false, 32/64-bit signed and unsigned integers with range checks, float/double, enums by
// value name), and a YAML map fills a proto map field. A null value (`key:`, `key: ~`) leaves the
// field unset. Unknown and duplicate keys are errors; so is setting two members of one oneof.
//
//   slmgw::config::v1::GatewayConfig config;
//   YamlSourceMap positions;
//   absl::Status status = ParseYamlIntoMessage(text, "gateway.yaml", &config, &positions);
//   // status: "gateway.yaml:3:1: server.listen_adress: unknown key (known keys: ...)"
//   // positions.Locate("routes[0].pool") == {line, column} of that value in the file.
//
// Errors are absl::InvalidArgumentError and read `SOURCE:LINE:COLUMN: FIELD.PATH: what was
// expected, got what` with 1-based lines and columns. YAML syntax errors carry their position too.
// Paths look like `routes[1].pool` (repeated fields take an index) and `labels["key"]` (map
// fields take the key).
//
// Thread-safety: the functions are reentrant; a YamlSourceMap is an ordinary value (const methods
// may be called concurrently, mutation needs exclusive access).
#ifndef SLM_COMMON_CONFIG_YAML_PROTO_H_
#define SLM_COMMON_CONFIG_YAML_PROTO_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace slm::config {

// Where the values of a parsed document came from, keyed by field path ("" is the document,
// "workers[0]" a sequence element, "workers[0].threads" a field). Used to point validation errors
// that are found after parsing (a duplicate name, a dangling reference) at the offending line.
class YamlSourceMap {
 public:
  // A 1-based position in the source text.
  struct Position {
    int line = 1;
    int column = 1;
  };

  YamlSourceMap() = default;
  explicit YamlSourceMap(std::string source_name) : source_name_(std::move(source_name)) {}

  // The name errors start with (usually the file path).
  const std::string& source_name() const { return source_name_; }
  void set_source_name(std::string name) { source_name_ = std::move(name); }

  // Records that `path` appeared in the document at `position`; `null_value` when it was written
  // with no value (`key:` or `key: ~`), which leaves the field unset.
  void Record(std::string path, Position position, bool null_value);

  // True when `path` appeared in the document with a non-null value. Callers use it to tell
  // "absent, apply the default" from "explicitly zero" for proto3 scalars.
  bool HasValue(std::string_view path) const;

  // The position of `path`, or of its nearest recorded ancestor (`routes[0].pool` falls back to
  // `routes[0]`, then `routes`, then the document). nullopt only when nothing at all is recorded.
  std::optional<Position> Locate(std::string_view path) const;

  // An InvalidArgument status `SOURCE:LINE:COLUMN: PATH: message` for the field at `path`
  // (position from Locate; `SOURCE: PATH: message` when there is none).
  absl::Status Error(std::string_view path, std::string_view message) const;

 private:
  struct Entry {
    Position position;
    bool null_value = false;
  };
  std::string source_name_;
  absl::flat_hash_map<std::string, Entry> entries_;
};

// Replaces the contents of `*message` with the document in `yaml_text` (an empty document, or
// one holding only comments, gives an empty message). `source_name` prefixes every error. When
// `positions` is not null it is reset and then filled with the position of every field present.
// On error `*message` is left unchanged. Never throws; any input, however malformed, yields a
// status. `message` is borrowed for the duration of the call and must not be null.
absl::Status ParseYamlIntoMessage(std::string_view yaml_text, std::string_view source_name,
                                  google::protobuf::Message* message,
                                  YamlSourceMap* positions = nullptr);

}  // namespace slm::config

#endif  // SLM_COMMON_CONFIG_YAML_PROTO_H_
