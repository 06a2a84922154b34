#include "workers/tokenizer/unicode_tables.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slm::workers::unicode {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<char32_t> Codes(const MappedCodePoints& mapped) {
  return std::vector<char32_t>(mapped.code_points, mapped.code_points + mapped.count);
}

TEST(UnicodeTablesTest, ClassifiesLikeBertBasicTokenizer) {
  for (char32_t cp : {U' ', U'\t', U'\n', U'\r', U'\v', U'\f', U'\u00A0', U'\u3000', U'\u2028'}) {
    EXPECT_EQ(Classify(cp), CharClass::kWhitespace) << std::hex << static_cast<uint32_t>(cp);
  }
  for (char32_t cp : {U'\u0000', U'\u0001', U'\u007F', U'\u200D', U'\uE000', U'\U000E0001'}) {
    EXPECT_EQ(Classify(cp), CharClass::kControl) << std::hex << static_cast<uint32_t>(cp);
  }
  // ASCII symbols count as punctuation for BERT; non-ASCII symbols do not.
  for (char32_t cp : {U'!', U'$', U'+', U'<', U'^', U'`', U'|', U'~', U'\u00BF', U'\u2014',
                      U'\u3002', U'\u055D'}) {
    EXPECT_EQ(Classify(cp), CharClass::kPunctuation) << std::hex << static_cast<uint32_t>(cp);
  }
  for (char32_t cp :
       {U'a', U'Z', U'0', U'\u00BD', U'\uFF5E', U'\u20AC', U'\u3042', U'\U0001F999', U'\u00E9'}) {
    EXPECT_EQ(Classify(cp), CharClass::kOther) << std::hex << static_cast<uint32_t>(cp);
  }
  for (char32_t cp : {U'\u4E00', U'\u4E2D', U'\u9FFF', U'\u3400', U'\uF900', U'\U00020000'}) {
    EXPECT_EQ(Classify(cp), CharClass::kCjk) << std::hex << static_cast<uint32_t>(cp);
  }
  for (char32_t cp : {U'\u0301', U'\u0308', U'\uFE0F', U'\u17B7'}) {
    EXPECT_EQ(Classify(cp), CharClass::kNonspacingMark) << std::hex << static_cast<uint32_t>(cp);
  }
}

TEST(UnicodeTablesTest, LowercasesLatinGreekCyrillic) {
  EXPECT_THAT(Codes(ToLower(U'A')), ElementsAre(U'a'));
  EXPECT_THAT(Codes(ToLower(U'a')), ElementsAre(U'a'));
  EXPECT_THAT(Codes(ToLower(U'\u00C9')), ElementsAre(U'\u00E9'));        // É
  EXPECT_THAT(Codes(ToLower(U'\u0178')), ElementsAre(U'\u00FF'));        // Ÿ (Latin Extended-A)
  EXPECT_THAT(Codes(ToLower(U'\u01C5')), ElementsAre(U'\u01C6'));        // ǅ (Latin Extended-B)
  EXPECT_THAT(Codes(ToLower(U'\u03A9')), ElementsAre(U'\u03C9'));        // Ω
  EXPECT_THAT(Codes(ToLower(U'\u0416')), ElementsAre(U'\u0436'));        // Ж
  EXPECT_THAT(Codes(ToLower(U'\u212A')), ElementsAre(U'k'));             // Kelvin sign
  EXPECT_THAT(Codes(ToLower(U'\u0130')), ElementsAre(U'i', U'\u0307'));  // full mapping
  EXPECT_THAT(Codes(ToLower(U'\u4E2D')), ElementsAre(U'\u4E2D'));
}

TEST(UnicodeTablesTest, DecomposesAndStripsMarks) {
  EXPECT_THAT(Codes(DecomposeStripMarks(U'\u00E9')), ElementsAre(U'e'));       // é
  EXPECT_THAT(Codes(DecomposeStripMarks(U'\u00C5')), ElementsAre(U'A'));       // Å
  EXPECT_THAT(Codes(DecomposeStripMarks(U'\u1EED')), ElementsAre(U'u'));       // ử (two marks)
  EXPECT_THAT(Codes(DecomposeStripMarks(U'\u1F82')), ElementsAre(U'\u03B1'));  // ᾂ
  EXPECT_THAT(Codes(DecomposeStripMarks(U'\u0419')), ElementsAre(U'\u0418'));  // Й -> И
  EXPECT_THAT(Codes(DecomposeStripMarks(U'\u037E')), ElementsAre(U';'));       // Greek question
  EXPECT_THAT(Codes(DecomposeStripMarks(U'\u0301')), IsEmpty());
  EXPECT_THAT(Codes(DecomposeStripMarks(U'\u00BD')), ElementsAre(U'\u00BD'));  // NFD, not NFKD
  EXPECT_THAT(Codes(DecomposeStripMarks(U'\u00DF')), ElementsAre(U'\u00DF'));  // ß
  EXPECT_THAT(Codes(DecomposeStripMarks(U'\uAC00')), ElementsAre(U'\u1100', U'\u1161'));
  EXPECT_THAT(Codes(DecomposeStripMarks(U'\uAC01')), ElementsAre(U'\u1100', U'\u1161', U'\u11A8'));
  EXPECT_THAT(Codes(DecomposeStripMarks(U'\uD7A3')), ElementsAre(U'\u1112', U'\u1175', U'\u11C2'));
}

}  // namespace
}  // namespace slm::workers::unicode
