#include "workers/encoder/bio.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slm::workers {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;

const std::vector<std::string> kLabels = {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"};

// One row of probabilities with `probability` on `label` and the rest spread evenly.
std::vector<float> Row(int label, float probability) {
  std::vector<float> row(kLabels.size(), (1.0f - probability) / (kLabels.size() - 1));
  row[label] = probability;
  return row;
}

struct Case {
  std::vector<float> probabilities;
  std::vector<BioToken> tokens;
  void Add(int32_t begin, int32_t end, bool word_initial, int label, float probability = 0.9f) {
    std::vector<float> row = Row(label, probability);
    probabilities.insert(probabilities.end(), row.begin(), row.end());
    tokens.push_back({{begin, end}, word_initial});
  }
  void AddSpecial() { Add(-1, -1, true, /*label=*/1); }  // a special's label never matters
};

MATCHER_P4(IsEntity, label, begin, end, score, "") {
  return arg.label == label && arg.begin == begin && arg.end == end &&
         std::abs(arg.score - score) < 1e-5f;
}

TEST(BioTest, BeginThenInsideMakesOneEntity) {
  // "Ada Lovelace lived in London": [CLS] ada love ##lace lived in london [SEP]
  Case c;
  c.AddSpecial();
  c.Add(0, 3, true, 1, 0.9f);    // ada: B-PER
  c.Add(4, 8, true, 2, 0.8f);    // love: I-PER
  c.Add(8, 12, false, 0, 0.6f);  // ##lace: its own argmax (O) is ignored: word label is I-PER
  c.Add(13, 18, true, 0);        // lived: O
  c.Add(19, 21, true, 0);        // in: O
  c.Add(22, 28, true, 3, 0.7f);  // london: B-LOC
  c.AddSpecial();
  std::vector<EntitySpan> entities = DecodeBioEntities(c.probabilities, kLabels, c.tokens);
  // PER score: mean of p(B-PER|ada)=0.9, p(I-PER|love)=0.8, p(I-PER|##lace)=0.1.
  EXPECT_THAT(entities, ElementsAre(IsEntity("PER", 0, 12, (0.9f + 0.8f + 0.1f) / 3),
                                    IsEntity("LOC", 22, 28, 0.7f)));
}

TEST(BioTest, BeginAfterBeginStartsANewEntity) {
  Case c;
  c.Add(0, 3, true, 1);
  c.Add(4, 7, true, 1);
  std::vector<EntitySpan> entities = DecodeBioEntities(c.probabilities, kLabels, c.tokens);
  EXPECT_THAT(entities, ElementsAre(IsEntity("PER", 0, 3, 0.9f), IsEntity("PER", 4, 7, 0.9f)));
}

TEST(BioTest, InsideWithoutBeginOrOfOtherTypeStartsAnEntity) {
  Case c;
  c.Add(0, 3, true, 2);  // I-PER with no B-PER before: starts PER
  c.Add(4, 7, true, 4);  // I-LOC after PER: starts LOC
  c.Add(8, 9, true, 0);  // O
  c.Add(10, 12, true, 4);
  std::vector<EntitySpan> entities = DecodeBioEntities(c.probabilities, kLabels, c.tokens);
  EXPECT_THAT(entities, ElementsAre(IsEntity("PER", 0, 3, 0.9f), IsEntity("LOC", 4, 7, 0.9f),
                                    IsEntity("LOC", 10, 12, 0.9f)));
}

TEST(BioTest, AdjacentWordInitialTokenIsANewWord) {
  // "Paris," : paris is B-LOC, "," (word initial, adjacent) is O and ends the entity.
  Case c;
  c.Add(0, 5, true, 3);
  c.Add(5, 6, true, 0);
  std::vector<EntitySpan> entities = DecodeBioEntities(c.probabilities, kLabels, c.tokens);
  EXPECT_THAT(entities, ElementsAre(IsEntity("LOC", 0, 5, 0.9f)));
}

TEST(BioTest, ContinuationAfterAGapIsANewWord) {
  // A non-initial piece that does not touch the previous token cannot continue its word.
  Case c;
  c.Add(0, 3, true, 0);
  c.Add(4, 6, false, 1);
  std::vector<EntitySpan> entities = DecodeBioEntities(c.probabilities, kLabels, c.tokens);
  EXPECT_THAT(entities, ElementsAre(IsEntity("PER", 4, 6, 0.9f)));
}

TEST(BioTest, LabelsWithoutPrefixActAsInside) {
  const std::vector<std::string> labels = {"O", "PER"};
  std::vector<float> probabilities = {0.2f, 0.8f, 0.4f, 0.6f, 0.9f, 0.1f};
  std::vector<BioToken> tokens = {{{0, 3}, true}, {{4, 7}, true}, {{8, 9}, true}};
  std::vector<EntitySpan> entities = DecodeBioEntities(probabilities, labels, tokens);
  ASSERT_EQ(entities.size(), 1u);
  EXPECT_EQ(entities[0].label, "PER");
  EXPECT_EQ(entities[0].begin, 0);
  EXPECT_EQ(entities[0].end, 7);
  EXPECT_THAT(entities[0].score, FloatNear(0.7f, 1e-6f));
}

TEST(BioTest, AllOutsideOrOnlySpecialsGiveNothing) {
  Case c;
  c.AddSpecial();
  c.Add(0, 2, true, 0);
  c.AddSpecial();
  EXPECT_TRUE(DecodeBioEntities(c.probabilities, kLabels, c.tokens).empty());
  Case specials;
  specials.AddSpecial();
  specials.AddSpecial();
  EXPECT_TRUE(DecodeBioEntities(specials.probabilities, kLabels, specials.tokens).empty());
}

}  // namespace
}  // namespace slm::workers
