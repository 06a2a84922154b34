#include "common/config/yaml_proto.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config/string_view_compat.h"
#include "common/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/yaml.h"

namespace slm::config {

// ---------------------------------------------------------------------------------------------
// YamlSourceMap

void YamlSourceMap::Record(std::string path, Position position, bool null_value) {
  entries_[std::move(path)] = Entry{position, null_value};
}

bool YamlSourceMap::HasValue(std::string_view path) const {
  auto it = entries_.find(ToAbsl(path));
  return it != entries_.end() && !it->second.null_value;
}

namespace {

// `routes[0].pool` -> `routes[0]` -> `routes` -> ``; `labels["a.b"]` -> `labels`.
std::string_view ParentPath(std::string_view path) {
  if (path.size() >= 2 && path.substr(path.size() - 2) == "\"]") {
    size_t open = path.rfind("[\"");
    if (open != std::string_view::npos) return path.substr(0, open);
  }
  size_t cut = path.find_last_of(".[");
  if (cut == std::string_view::npos) return std::string_view();
  return path.substr(0, cut);
}

}  // namespace

std::optional<YamlSourceMap::Position> YamlSourceMap::Locate(std::string_view path) const {
  while (true) {
    auto it = entries_.find(ToAbsl(path));
    if (it != entries_.end()) return it->second.position;
    if (path.empty()) return std::nullopt;
    path = ParentPath(path);
  }
}

absl::Status YamlSourceMap::Error(std::string_view path, std::string_view message) const {
  std::string text = source_name_;
  if (std::optional<Position> position = Locate(path)) {
    absl::StrAppend(&text, text.empty() ? "" : ":", position->line, ":", position->column);
  }
  if (!text.empty()) text += ": ";
  if (!path.empty()) absl::StrAppend(&text, ToAbsl(path), ": ");
  text += message;
  return absl::InvalidArgumentError(text);
}

// ---------------------------------------------------------------------------------------------
// YAML -> protobuf

namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Proto schemas may be recursive (google.protobuf.Struct); a document nested deeper than this is
// rejected rather than recursed into. yaml-cpp guards its own parser depth.
constexpr int kMaxMessageDepth = 64;
// Scalars quoted in error messages are cut to this many characters.
constexpr size_t kMaxQuotedScalar = 60;

std::string JoinPath(absl::string_view parent, absl::string_view name) {
  return parent.empty() ? std::string(name) : absl::StrCat(parent, ".", name);
}

std::string Quote(absl::string_view text) {
  bool cut = text.size() > kMaxQuotedScalar;
  if (cut) text = text.substr(0, kMaxQuotedScalar);
  return absl::StrCat("\"", absl::CHexEscape(text), cut ? "...\"" : "\"");
}

// What a node is, for "got ..." in error messages.
std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return Quote(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

YamlSourceMap::Position ToPosition(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

// The node's own mark, or `fallback` when the node has none (yaml-cpp gives an implicit null
// value the position of whatever follows it, so callers pass the key's mark for nulls).
YAML::Mark MarkOr(const YAML::Node& node, const YAML::Mark& fallback) {
  if (node.IsNull()) return fallback;
  YAML::Mark mark = node.Mark();
  return mark.is_null() ? fallback : mark;
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string UnknownKeyMessage(absl::string_view key, const Descriptor& descriptor) {
  std::vector<absl::string_view> known;
  absl::string_view closest;
  size_t closest_distance = std::max<size_t>(2, key.size() / 3) + 1;
  for (int i = 0; i < descriptor.field_count(); ++i) {
    absl::string_view name = descriptor.field(i)->name();
    known.push_back(name);
    size_t distance = EditDistance(key, name);
    if (distance < closest_distance) {
      closest_distance = distance;
      closest = name;
    }
  }
  std::string message = absl::StrCat("unknown key (known keys: ", absl::StrJoin(known, ", "), ")");
  if (!closest.empty()) absl::StrAppend(&message, "; did you mean \"", closest, "\"?");
  return message;
}

// Strict integer text: optional sign, then decimal digits only (no spaces, no "0x", no "1e3").
template <typename T>
bool ParseInteger(std::string_view text, T* value) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty() || text.front() == '+') return false;
  auto result = std::from_chars(text.data(), text.data() + text.size(), *value);
  return result.ec == std::errc() && result.ptr == text.data() + text.size();
}

bool ParseDouble(std::string_view text, double* value) {
  // YAML's spellings of the special values.
  static constexpr std::pair<std::string_view, double> kSpecial[] = {
      {".inf", INFINITY},   {".Inf", INFINITY},  {".INF", INFINITY},   {"+.inf", INFINITY},
      {"+.Inf", INFINITY},  {"+.INF", INFINITY}, {"-.inf", -INFINITY}, {"-.Inf", -INFINITY},
      {"-.INF", -INFINITY}, {".nan", NAN},       {".NaN", NAN},        {".NAN", NAN}};
  for (const auto& [spelling, special] : kSpecial) {
    if (text == spelling) {
      *value = special;
      return true;
    }
  }
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty() || text.front() == '+') return false;
  auto result = std::from_chars(text.data(), text.data() + text.size(), *value);
  return result.ec == std::errc() && result.ptr == text.data() + text.size();
}

bool ParseBool(std::string_view text, bool* value) {
  if (text == "true" || text == "True" || text == "TRUE") {
    *value = true;
    return true;
  }
  if (text == "false" || text == "False" || text == "FALSE") {
    *value = false;
    return true;
  }
  return false;
}

// Walks one document. Holds no state beyond the call; one instance per ParseYamlIntoMessage.
class YamlToProto {
 public:
  explicit YamlToProto(YamlSourceMap* positions) : positions_(positions) {}

  absl::Status ParseDocument(const YAML::Node& root, Message* message) {
    positions_->Record("", ToPosition(root.Mark()), root.IsNull());
    if (root.IsNull()) return absl::OkStatus();
    if (!root.IsMap()) {
      return ErrorAt(root.Mark(), "",
                     absl::StrCat("expected a map of top-level keys, got ", Describe(root)));
    }
    return ParseMessage(root, "", message, 0);
  }

 private:
  absl::Status ErrorAt(const YAML::Mark& mark, absl::string_view path,
                       absl::string_view message) const {
    YamlSourceMap::Position position = ToPosition(mark);
    std::string text = positions_->source_name();
    absl::StrAppend(&text, text.empty() ? "" : ":", position.line, ":", position.column, ": ");
    if (!path.empty()) absl::StrAppend(&text, path, ": ");
    absl::StrAppend(&text, message);
    return absl::InvalidArgumentError(text);
  }

  absl::Status ParseMessage(const YAML::Node& node, const std::string& path, Message* message,
                            int depth) {
    if (depth > kMaxMessageDepth) {
      return ErrorAt(node.Mark(), path,
                     absl::StrCat("nested deeper than ", kMaxMessageDepth, " messages"));
    }
    const Descriptor& descriptor = *message->GetDescriptor();
    absl::flat_hash_map<std::string, YAML::Mark> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // A copy: `it->` yields a temporary.
      const YAML::Node value = it->second;
      if (!key.IsScalar()) {
        return ErrorAt(MarkOr(key, node.Mark()), path,
                       absl::StrCat("expected a field name as key, got ", Describe(key)));
      }
      const std::string& name = key.Scalar();
      std::string field_path = JoinPath(path, name);
      auto [previous, inserted] = seen.emplace(name, key.Mark());
      if (!inserted) {
        return ErrorAt(key.Mark(), field_path,
                       absl::StrCat("duplicate key (first given at line ",
                                    ToPosition(previous->second).line, ")"));
      }
      const FieldDescriptor* field = descriptor.FindFieldByName(name);
      if (field == nullptr) {
        return ErrorAt(key.Mark(), field_path, UnknownKeyMessage(name, descriptor));
      }
      // A field is located by its key: that is the line a reader looks for, and for a block
      // sequence or map the value starts on a later line.
      YAML::Mark field_mark = key.Mark();
      positions_->Record(field_path, ToPosition(field_mark), value.IsNull());
      if (value.IsNull()) continue;  // `key:` or `key: ~` leaves the field unset.
      SLM_RETURN_IF_ERROR(CheckOneof(*message, *field, field_mark, field_path));
      SLM_RETURN_IF_ERROR(ParseField(value, field_mark, field_path, message, *field, depth));
    }
    return absl::OkStatus();
  }

  absl::Status CheckOneof(const Message& message, const FieldDescriptor& field,
                          const YAML::Mark& mark, const std::string& path) {
    const google::protobuf::OneofDescriptor* oneof = field.real_containing_oneof();
    if (oneof == nullptr) return absl::OkStatus();
    const FieldDescriptor* set = message.GetReflection()->GetOneofFieldDescriptor(message, oneof);
    if (set == nullptr || set == &field) return absl::OkStatus();
    return ErrorAt(mark, path,
                   absl::StrCat("conflicts with \"", set->name(), "\" (only one of oneof \"",
                                oneof->name(), "\" may be set)"));
  }

  absl::Status ParseField(const YAML::Node& value, const YAML::Mark& mark, const std::string& path,
                          Message* message, const FieldDescriptor& field, int depth) {
    if (field.is_map()) return ParseMapField(value, mark, path, message, field, depth);
    if (!field.is_repeated()) return ParseValue(value, mark, path, message, field, false, depth);
    if (!value.IsSequence()) {
      return ErrorAt(mark, path, absl::StrCat("expected a sequence, got ", Describe(value)));
    }
    size_t index = 0;
    for (auto it = value.begin(); it != value.end(); ++it, ++index) {
      const YAML::Node element = *it;
      std::string element_path = absl::StrCat(path, "[", index, "]");
      YAML::Mark element_mark = MarkOr(element, mark);
      positions_->Record(element_path, ToPosition(element_mark), element.IsNull());
      SLM_RETURN_IF_ERROR(
          ParseValue(element, element_mark, element_path, message, field, true, depth));
    }
    return absl::OkStatus();
  }

  absl::Status ParseMapField(const YAML::Node& value, const YAML::Mark& mark,
                             const std::string& path, Message* message,
                             const FieldDescriptor& field, int depth) {
    if (!value.IsMap()) {
      return ErrorAt(mark, path, absl::StrCat("expected a map, got ", Describe(value)));
    }
    const Descriptor& entry_descriptor = *field.message_type();
    const FieldDescriptor& key_field = *entry_descriptor.map_key();
    const FieldDescriptor& value_field = *entry_descriptor.map_value();
    absl::flat_hash_map<std::string, YAML::Mark> seen;
    for (auto it = value.begin(); it != value.end(); ++it) {
      const YAML::Node key = it->first;  // A copy: `it->` yields a temporary.
      const YAML::Node item = it->second;
      YAML::Mark key_mark = MarkOr(key, mark);
      if (!key.IsScalar()) {
        return ErrorAt(key_mark, path, absl::StrCat("expected a scalar key, got ", Describe(key)));
      }
      std::string item_path = absl::StrCat(path, "[\"", absl::CHexEscape(key.Scalar()), "\"]");
      auto [previous, inserted] = seen.emplace(key.Scalar(), key_mark);
      if (!inserted) {
        return ErrorAt(key_mark, item_path,
                       absl::StrCat("duplicate key (first given at line ",
                                    ToPosition(previous->second).line, ")"));
      }
      positions_->Record(item_path, ToPosition(key_mark), item.IsNull());
      Message* entry = message->GetReflection()->AddMessage(message, &field);
      SLM_RETURN_IF_ERROR(ParseValue(key, key_mark, item_path, entry, key_field, false, depth + 1));
      if (item.IsNull()) continue;  // The entry keeps the value type's default.
      SLM_RETURN_IF_ERROR(
          ParseValue(item, key_mark, item_path, entry, value_field, false, depth + 1));
    }
    return absl::OkStatus();
  }

  // Parses one value into `field` of `message`: sets it, or appends to it when `add`.
  absl::Status ParseValue(const YAML::Node& node, const YAML::Mark& mark, const std::string& path,
                          Message* message, const FieldDescriptor& field, bool add, int depth) {
    const Reflection& reflection = *message->GetReflection();
    if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!node.IsMap() && !node.IsNull()) {
        return ErrorAt(mark, path, absl::StrCat("expected a map, got ", Describe(node)));
      }
      Message* child =
          add ? reflection.AddMessage(message, &field) : reflection.MutableMessage(message, &field);
      if (node.IsNull()) return absl::OkStatus();  // `- ~` in a sequence: an empty message.
      return ParseMessage(node, path, child, depth + 1);
    }
    if (!node.IsScalar()) {
      return ErrorAt(mark, path,
                     absl::StrCat("expected ", ExpectedScalar(field), ", got ", Describe(node)));
    }
    const std::string& text = node.Scalar();
    auto mismatch = [&](absl::string_view expected) {
      return ErrorAt(mark, path, absl::StrCat("expected ", expected, ", got ", Quote(text)));
    };
    switch (field.cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        add ? reflection.AddString(message, &field, text)
            : reflection.SetString(message, &field, text);
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_BOOL: {
        bool value = false;
        if (!ParseBool(text, &value)) return mismatch("true or false");
        add ? reflection.AddBool(message, &field, value)
            : reflection.SetBool(message, &field, value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64: {
        bool is32 = field.cpp_type() == FieldDescriptor::CPPTYPE_INT32;
        int64_t value = 0;
        if (!ParseInteger(text, &value) ||
            (is32 && (value < std::numeric_limits<int32_t>::min() ||
                      value > std::numeric_limits<int32_t>::max()))) {
          return mismatch(ExpectedScalar(field));
        }
        if (is32) {
          add ? reflection.AddInt32(message, &field, static_cast<int32_t>(value))
              : reflection.SetInt32(message, &field, static_cast<int32_t>(value));
        } else {
          add ? reflection.AddInt64(message, &field, value)
              : reflection.SetInt64(message, &field, value);
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64: {
        bool is32 = field.cpp_type() == FieldDescriptor::CPPTYPE_UINT32;
        uint64_t value = 0;
        if (!text.empty() && text.front() == '-') return mismatch("an unsigned integer");
        if (!ParseInteger(text, &value) || (is32 && value > std::numeric_limits<uint32_t>::max())) {
          return mismatch(ExpectedScalar(field));
        }
        if (is32) {
          add ? reflection.AddUInt32(message, &field, static_cast<uint32_t>(value))
              : reflection.SetUInt32(message, &field, static_cast<uint32_t>(value));
        } else {
          add ? reflection.AddUInt64(message, &field, value)
              : reflection.SetUInt64(message, &field, value);
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_FLOAT:
      case FieldDescriptor::CPPTYPE_DOUBLE: {
        double value = 0;
        if (!ParseDouble(text, &value)) return mismatch("a number");
        if (field.cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
          add ? reflection.AddDouble(message, &field, value)
              : reflection.SetDouble(message, &field, value);
          return absl::OkStatus();
        }
        if (std::isfinite(value) && std::fabs(value) > std::numeric_limits<float>::max()) {
          return mismatch("a number within float range");
        }
        add ? reflection.AddFloat(message, &field, static_cast<float>(value))
            : reflection.SetFloat(message, &field, static_cast<float>(value));
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const EnumValueDescriptor* value = field.enum_type()->FindValueByName(text);
        if (value == nullptr) return mismatch(ExpectedScalar(field));
        add ? reflection.AddEnum(message, &field, value)
            : reflection.SetEnum(message, &field, value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;  // Handled above.
    }
    return ErrorAt(mark, path, "unsupported field type");
  }

  static std::string ExpectedScalar(const FieldDescriptor& field) {
    switch (field.cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        return "a string";
      case FieldDescriptor::CPPTYPE_BOOL:
        return "true or false";
      case FieldDescriptor::CPPTYPE_INT32:
        return "an integer in [-2147483648, 2147483647]";
      case FieldDescriptor::CPPTYPE_INT64:
        return "an integer in [-9223372036854775808, 9223372036854775807]";
      case FieldDescriptor::CPPTYPE_UINT32:
        return "an unsigned integer in [0, 4294967295]";
      case FieldDescriptor::CPPTYPE_UINT64:
        return "an unsigned integer in [0, 18446744073709551615]";
      case FieldDescriptor::CPPTYPE_FLOAT:
      case FieldDescriptor::CPPTYPE_DOUBLE:
        return "a number";
      case FieldDescriptor::CPPTYPE_ENUM: {
        std::vector<absl::string_view> names;
        for (int i = 0; i < field.enum_type()->value_count(); ++i) {
          names.push_back(field.enum_type()->value(i)->name());
        }
        return absl::StrCat("one of ", absl::StrJoin(names, ", "));
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        return "a map";
    }
    return "a value";
  }

  YamlSourceMap* positions_;  // Not owned.
};

// An InvalidArgument `SOURCE:LINE:COLUMN: what`.
absl::Status SourceError(absl::string_view source_name, const YAML::Mark& mark,
                         absl::string_view what) {
  YamlSourceMap::Position position = ToPosition(mark);
  return absl::InvalidArgumentError(absl::StrCat(source_name, source_name.empty() ? "" : ":",
                                                 position.line, ":", position.column, ": ", what));
}

// Receives parser events for one document at a time; remembers where it starts and whether it
// holds anything.
class DocumentScanner final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    events_ = 0;
    empty_ = true;
    first_mark_ = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Event(mark, true); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Event(mark, false); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Event(mark, false);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Event(mark, false);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Event(mark, false);
  }
  void OnMapEnd() override {}

  bool empty() const { return empty_; }
  const YAML::Mark& first_mark() const { return first_mark_; }

 private:
  void Event(const YAML::Mark& mark, bool is_null) {
    if (events_++ == 0) first_mark_ = mark;
    empty_ = empty_ && is_null;
  }

  int events_ = 0;
  bool empty_ = true;
  YAML::Mark first_mark_ = YAML::Mark::null_mark();
};

// Checks that `text` holds at most one document with content (empty documents after it, as
// from a trailing `---`, are fine). yaml-cpp 0.7's LoadAll loops forever, allocating, on some
// malformed streams such as a lone `,` (jbeder/yaml-cpp#1040, fixed upstream by PR #1319): its
// parser keeps reporting an empty document without consuming input. This walks the documents
// with the event parser instead and stops when it stalls. Throws what yaml-cpp throws.
absl::Status CheckSingleDocument(const std::string& text, absl::string_view source_name) {
  std::istringstream stream(text);
  YAML::Parser parser(stream);
  DocumentScanner scanner;
  size_t documents = 0;
  bool previous_was_empty = false;
  int previous_empty_at = 0;
  while (parser.HandleNextDocument(scanner)) {
    ++documents;
    if (scanner.empty()) {
      int at = scanner.first_mark().pos;
      // A document needs at least a `---` of its own: more than that is a stalled parser.
      if ((previous_was_empty && previous_empty_at == at) || documents > text.size() / 3 + 2) {
        return SourceError(source_name, scanner.first_mark(), "invalid YAML: unexpected token");
      }
      previous_was_empty = true;
      previous_empty_at = at;
      continue;
    }
    previous_was_empty = false;
    if (documents > 1) {
      return SourceError(source_name, scanner.first_mark(),
                         "expected one YAML document, found another");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseYamlIntoMessage(std::string_view yaml_text, std::string_view source,
                                  google::protobuf::Message* message, YamlSourceMap* positions) {
  absl::string_view source_name = ToAbsl(source);
  YamlSourceMap local_positions;
  if (positions == nullptr) positions = &local_positions;
  *positions = YamlSourceMap(std::string(source_name));
  // yaml-cpp reports malformed input (and a few internal conditions) by throwing; nothing
  // may escape this boundary.
  try {
    const std::string text(yaml_text);
    SLM_RETURN_IF_ERROR(CheckSingleDocument(text, source_name));
    YAML::Node document = YAML::Load(text);  // The first document; null when there is none.
    std::unique_ptr<Message> parsed(message->New());
    YamlToProto walker(positions);
    absl::Status status = walker.ParseDocument(document, parsed.get());
    if (!status.ok()) return status;
    message->CopyFrom(*parsed);
    return absl::OkStatus();
  } catch (const YAML::Exception& e) {
    return SourceError(source_name, e.mark, absl::StrCat("invalid YAML: ", e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": cannot read YAML: ", e.what()));
  } catch (...) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": cannot read YAML"));
  }
}

}  // namespace slm::config
