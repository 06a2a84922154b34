#include "workers/tokenizer/unicode_tables.h"

#include <algorithm>
#include <iterator>

namespace slm::workers::unicode {
namespace {

struct ClassRange {
  char32_t first;
  char32_t last;
  CharClass char_class;
};

struct Mapping {
  char32_t code_point;
  int count;
  char32_t code_points[3];
};

#include "workers/tokenizer/unicode_tables.inc"

template <size_t N>
const Mapping* FindMapping(const Mapping (&table)[N], char32_t code_point) {
  const Mapping* end = table + N;
  const Mapping* it =
      std::lower_bound(table, end, code_point,
                       [](const Mapping& mapping, char32_t cp) { return mapping.code_point < cp; });
  return it != end && it->code_point == code_point ? it : nullptr;
}

MappedCodePoints Identity(char32_t code_point) {
  MappedCodePoints result;
  result.count = 1;
  result.code_points[0] = code_point;
  return result;
}

MappedCodePoints FromMapping(const Mapping& mapping) {
  MappedCodePoints result;
  result.count = mapping.count;
  std::copy(mapping.code_points, mapping.code_points + 3, result.code_points);
  return result;
}

}  // namespace

CharClass Classify(char32_t code_point) {
  const ClassRange* end = std::end(kClassRanges);
  // First range whose `last` is >= code_point.
  const ClassRange* it =
      std::lower_bound(std::begin(kClassRanges), end, code_point,
                       [](const ClassRange& range, char32_t cp) { return range.last < cp; });
  if (it != end && it->first <= code_point) return it->char_class;
  return CharClass::kOther;
}

MappedCodePoints ToLower(char32_t code_point) {
  const Mapping* mapping = FindMapping(kLowercase, code_point);
  return mapping != nullptr ? FromMapping(*mapping) : Identity(code_point);
}

MappedCodePoints DecomposeStripMarks(char32_t code_point) {
  // Hangul syllables (Unicode 3.12): S = SBase + (L * VCount + V) * TCount + T; the jamo are Lo.
  constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
  constexpr char32_t kTCount = 28, kNCount = 21 * 28, kSCount = 19 * 21 * 28;
  if (code_point >= kSBase && code_point < kSBase + kSCount) {
    const char32_t index = code_point - kSBase;
    MappedCodePoints result;
    result.code_points[0] = kLBase + index / kNCount;
    result.code_points[1] = kVBase + (index % kNCount) / kTCount;
    result.count = 2;
    if (index % kTCount != 0) result.code_points[result.count++] = kTBase + index % kTCount;
    return result;
  }
  if (Classify(code_point) == CharClass::kNonspacingMark) return MappedCodePoints();
  const Mapping* mapping = FindMapping(kDecomposition, code_point);
  return mapping != nullptr ? FromMapping(*mapping) : Identity(code_point);
}

}  // namespace slm::workers::unicode
