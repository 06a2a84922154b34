// BIO decoding: turns per-token label probabilities of a token-classification model into entity
// spans over the original text.
//
//   std::vector<EntitySpan> entities =
//       DecodeBioEntities(probabilities, labels, tokens);  // "B-PER" "I-PER" "O" ...
//
// Rules (HF pipeline's "first" aggregation, lenient BIO):
//  * Tokens are grouped into words: a token continues the previous word when it is not word
//    initial and its span starts where the previous token's span ended. Special tokens (span
//    {-1,-1}) belong to no word.
//  * A word's label is the argmax label of its FIRST sub-token.
//  * "O" ends the current entity; "B-x" starts a new one; "I-x" extends a current entity of
//    type x and otherwise starts one; a label without a B-/I- prefix acts as "I-<label>".
//  * An entity spans [begin of its first word, end of its last word) in bytes; its score is the
//    mean, over all sub-tokens of its words, of the probability each gives to its word's label.
//
// Thread-safety: pure functions.
#ifndef SLM_WORKERS_ENCODER_BIO_H_
#define SLM_WORKERS_ENCODER_BIO_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "workers/encoder/encoder_model.h"

namespace slm::workers {

struct BioToken {
  std::pair<int32_t, int32_t> span;  // byte [begin, end) in the text; {-1,-1} for specials
  bool word_initial = true;          // false for a WordPiece continuation ("##ing")
};

// probabilities: [tokens.size(), labels.size()] row-major (each row sums to 1).
std::vector<EntitySpan> DecodeBioEntities(const std::vector<float>& probabilities,
                                          const std::vector<std::string>& labels,
                                          const std::vector<BioToken>& tokens);

}  // namespace slm::workers

#endif  // SLM_WORKERS_ENCODER_BIO_H_
