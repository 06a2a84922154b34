// LoadTokenizerFromHfJson: Hugging Face tokenizer.json (BPE model, byte-level pre-tokenizer).
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "workers/tokenizer/bpe_tokenizer.h"
#include "workers/tokenizer/tokenizer.h"
#include "workers/tokenizer/vocabulary.h"

namespace slm::workers {
namespace {

using Json = nlohmann::json;

absl::Status Invalid(const std::string& name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(name, ": ", what));
}

absl::StatusOr<Json> Parse(absl::string_view text, const std::string& name) {
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return Invalid(name, "not valid JSON");
  if (!json.is_object()) return Invalid(name, "the top level is not a JSON object");
  return json;
}

bool BoolOr(const Json& object, const char* key, bool fallback) {
  auto it = object.find(key);
  return it != object.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

// The pre-tokenizer: ByteLevel(use_regex) alone, or Sequence[Split(regex, Isolated),
// ByteLevel(use_regex=false)].
absl::StatusOr<PreTokenizer> ReadPreTokenizer(const Json& json, const std::string& name) {
  auto it = json.find("pre_tokenizer");
  if (it == json.end() || !it->is_object()) return Invalid(name, "pre_tokenizer missing");
  const Json& pre = *it;
  const auto type_of = [](const Json& object) -> std::string {
    auto type = object.find("type");
    return type != object.end() && type->is_string() ? type->get<std::string>() : "";
  };
  const auto check_byte_level = [&](const Json& object) -> absl::Status {
    if (BoolOr(object, "add_prefix_space", false)) {
      return absl::UnimplementedError(
          absl::StrCat(name, ": pre_tokenizer ByteLevel add_prefix_space=true is not supported"));
    }
    return absl::OkStatus();
  };
  if (type_of(pre) == "ByteLevel") {
    SLM_RETURN_IF_ERROR(check_byte_level(pre));
    return PreTokenizer::kGpt2;
  }
  if (type_of(pre) != "Sequence") {
    return absl::UnimplementedError(absl::StrCat(name, ": pre_tokenizer type '", type_of(pre),
                                                 "' is not supported (ByteLevel or Sequence)"));
  }
  auto list = pre.find("pretokenizers");
  if (list == pre.end() || !list->is_array() || list->size() != 2 || !(*list)[0].is_object() ||
      !(*list)[1].is_object() || type_of((*list)[0]) != "Split" ||
      type_of((*list)[1]) != "ByteLevel") {
    return absl::UnimplementedError(absl::StrCat(
        name, ": pre_tokenizer Sequence must be [Split, ByteLevel]"));
  }
  const Json& split = (*list)[0];
  SLM_RETURN_IF_ERROR(check_byte_level((*list)[1]));
  if (BoolOr((*list)[1], "use_regex", true)) {
    return absl::UnimplementedError(
        absl::StrCat(name, ": pre_tokenizer ByteLevel after Split must have use_regex=false"));
  }
  auto behavior = split.find("behavior");
  if (behavior == split.end() || *behavior != "Isolated" || BoolOr(split, "invert", false)) {
    return absl::UnimplementedError(
        absl::StrCat(name, ": pre_tokenizer Split must be behavior=Isolated, invert=false"));
  }
  auto pattern = split.find("pattern");
  if (pattern == split.end() || !pattern->is_object() || !pattern->contains("Regex") ||
      !(*pattern)["Regex"].is_string()) {
    return Invalid(name, "pre_tokenizer Split needs pattern.Regex");
  }
  auto pre_tokenizer = PreTokenizerFromRegex((*pattern)["Regex"].get<std::string>());
  if (!pre_tokenizer.ok()) {
    return absl::Status(pre_tokenizer.status().code(),
                        absl::StrCat(name, ": ", pre_tokenizer.status().message()));
  }
  return *pre_tokenizer;
}

// A tokenizer_config.json token entry: "text" or {"content": "text"}.
std::string ConfigTokenText(const Json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerFromHfJsonText(
    absl::string_view json_text, absl::string_view config_text, const std::string& name) {
  SLM_ASSIGN_OR_RETURN(Json json, Parse(json_text, name));
  auto model_it = json.find("model");
  if (model_it == json.end() || !model_it->is_object()) return Invalid(name, "model missing");
  const Json& model = *model_it;
  if (model.contains("type") && model["type"] != "BPE") {
    return absl::UnimplementedError(absl::StrCat(name, ": model.type ", model["type"].dump(),
                                                 " is not supported (BPE only)"));
  }
  if (BoolOr(model, "byte_fallback", false)) {
    return absl::UnimplementedError(absl::StrCat(name, ": model.byte_fallback is not supported"));
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = model.find(key);
    if (it != model.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty())) {
      return absl::UnimplementedError(absl::StrCat(name, ": model.", key, " is not supported"));
    }
  }
  SLM_ASSIGN_OR_RETURN(PreTokenizer pre_tokenizer, ReadPreTokenizer(json, name));
  if (json.contains("normalizer") && !json["normalizer"].is_null()) {
    const Json& normalizer = json["normalizer"];
    if (!normalizer.is_object() || normalizer.value("type", "") != "NFC") {
      return absl::UnimplementedError(absl::StrCat(name, ": normalizer ", normalizer.dump(),
                                                   " is not supported (null or NFC)"));
    }
  }

  auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object()) return Invalid(name, "model.vocab missing");
  std::vector<Vocabulary::Entry> entries;
  std::vector<bool> assigned;
  const auto assign = [&](int64_t id, const std::string& text, TokenType type) -> absl::Status {
    if (id < 0 || id >= (int64_t{1} << 24)) {
      return Invalid(name, absl::StrCat("token id ", id, " of '", text, "' is out of range"));
    }
    if (static_cast<size_t>(id) >= entries.size()) {
      entries.resize(id + 1, Vocabulary::Entry{"", TokenType::kUnused, 0.0f, false, false});
      assigned.resize(id + 1, false);
    }
    entries[id].text = text;
    entries[id].type = type;
    assigned[id] = true;
    return absl::OkStatus();
  };
  for (const auto& [text, id] : vocab_it->items()) {
    if (!id.is_number_integer()) return Invalid(name, absl::StrCat("model.vocab['", text, "'] is not an integer"));
    const int64_t value = id.get<int64_t>();
    if (value >= 0 && static_cast<size_t>(value) < assigned.size() && assigned[value]) {
      return Invalid(name, absl::StrCat("model.vocab id ", value, " is used twice"));
    }
    SLM_RETURN_IF_ERROR(assign(value, text, TokenType::kNormal));
  }
  if (json.contains("added_tokens")) {
    if (!json["added_tokens"].is_array()) return Invalid(name, "added_tokens is not an array");
    for (const Json& added : json["added_tokens"]) {
      if (!added.is_object() || !added.contains("id") || !added["id"].is_number_integer() ||
          !added.contains("content") || !added["content"].is_string()) {
        return Invalid(name, "added_tokens entries need an integer id and a string content");
      }
      const int64_t id = added["id"].get<int64_t>();
      SLM_RETURN_IF_ERROR(assign(id, added["content"].get<std::string>(),
                                 BoolOr(added, "special", false) ? TokenType::kControl
                                                                 : TokenType::kUserDefined));
      entries[id].lstrip = BoolOr(added, "lstrip", false);
      entries[id].rstrip = BoolOr(added, "rstrip", false);
    }
  }

  auto merges_it = model.find("merges");
  if (merges_it == model.end() || !merges_it->is_array()) return Invalid(name, "model.merges missing");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(merges_it->size());
  for (const Json& merge : *merges_it) {
    if (merge.is_string()) {
      const std::string text = merge.get<std::string>();
      const size_t space = text.find(' ', 1);
      if (space == std::string::npos) {
        return Invalid(name, absl::StrCat("model.merges entry '", text, "' is not 'left right'"));
      }
      merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
    } else {
      return Invalid(name, absl::StrCat("model.merges entry ", merge.dump(),
                                        " is neither 'left right' nor [left, right]"));
    }
  }

  // Special ids from tokenizer_config.json, when given.
  SpecialTokenIds special;
  bool add_bos = false, add_eos = false;
  if (!config_text.empty()) {
    SLM_ASSIGN_OR_RETURN(Json config, Parse(config_text, absl::StrCat(name, " (tokenizer_config)")));
    const auto find_id = [&](const char* key) -> int32_t {
      const std::string text = ConfigTokenText(config, key);
      if (text.empty()) return -1;
      for (size_t id = 0; id < entries.size(); ++id) {
        if (assigned[id] && entries[id].text == text) return static_cast<int32_t>(id);
      }
      return -1;
    };
    special.bos = find_id("bos_token");
    special.eos = find_id("eos_token");
    special.unknown = find_id("unk_token");
    special.padding = find_id("pad_token");
    add_bos = BoolOr(config, "add_bos_token", false) && special.bos >= 0;
    add_eos = BoolOr(config, "add_eos_token", false) && special.eos >= 0;
  }
  SLM_ASSIGN_OR_RETURN(Vocabulary vocab, Vocabulary::Build(std::move(entries), std::move(special),
                                                           add_bos, add_eos, name));
  SLM_ASSIGN_OR_RETURN(std::unique_ptr<BpeTokenizer> tokenizer,
                       BpeTokenizer::Create(std::move(vocab), merges, pre_tokenizer,
                                            BoolOr(model, "ignore_merges", false), name));
  return std::unique_ptr<Tokenizer>(std::move(tokenizer));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerFromHfJson(const std::string& path) {
  const auto read = [](const std::string& file, std::string* contents) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return false;
    std::ostringstream buffer;
    buffer << in.rdbuf();
    *contents = buffer.str();
    return true;
  };
  std::string json, config;
  if (!read(path, &json)) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  read(dir + "tokenizer_config.json", &config);  // optional
  return LoadTokenizerFromHfJsonText(json, config, path);
}

}  // namespace slm::workers
