"""fastText-style hashed n-gram features: the Python twin of workers/ngram (C++).

Both sides must agree bit for bit; tests/workers/ngram compares them on sample texts.

Tokenization (bytes of the UTF-8 text): ASCII letters and digits, lowercased, and every byte
>= 0x80 are word bytes (so a multi-byte UTF-8 character is never split); every other byte
separates words.

Features of a text with words w1..wn (each hashed into `buckets` rows):
  - word unigrams:  H(seed, 0x00, w)
  - word bigrams:   H(seed, 0x01, w_i, 0x20, w_{i+1})          (when word_ngrams >= 2)
  - char n-grams:   H(seed, 0x02, g) for every g of char_min..char_max code points of "<w>"
where H is 64-bit FNV-1a over the bytes: the seed's 4 little-endian bytes, the type byte, then
the content. The feature's row is H % buckets. The model averages the rows' embeddings, then
applies a linear layer and softmax.
"""

import numpy as np

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1

TYPE_WORD = 0
TYPE_BIGRAM = 1
TYPE_CHAR = 2


def fnv1a(data, state=FNV_OFFSET):
    for byte in data:
        state = ((state ^ byte) * FNV_PRIME) & MASK64
    return state


def seed_state(seed):
    return fnv1a(int(seed).to_bytes(4, "little"))


def _is_word_byte(byte):
    return byte >= 0x80 or 48 <= byte <= 57 or 65 <= byte <= 90 or 97 <= byte <= 122


def words(text):
    """The lowercased words of `text` (str or bytes), as bytes."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    out = []
    current = bytearray()
    for byte in data:
        if _is_word_byte(byte):
            current.append(byte + 32 if 65 <= byte <= 90 else byte)
        elif current:
            out.append(bytes(current))
            current = bytearray()
    if current:
        out.append(bytes(current))
    return out


def char_ngrams(word, char_min, char_max):
    """Byte strings of every char_min..char_max code-point n-gram of b"<" + word + b">"."""
    wrapped = b"<" + word + b">"
    starts = [i for i, byte in enumerate(wrapped) if (byte & 0xC0) != 0x80] + [len(wrapped)]
    code_points = len(starts) - 1
    grams = []
    for n in range(char_min, char_max + 1):
        for k in range(0, code_points - n + 1):
            grams.append(wrapped[starts[k]:starts[k + n]])
    return grams


class Featurizer:
    """Text -> list of bucket ids, with a per-word cache (training featurizes many texts)."""

    def __init__(self, buckets, seed, word_ngrams=2, char_min=3, char_max=5):
        self.buckets = buckets
        self.word_ngrams = word_ngrams
        self.char_min = char_min
        self.char_max = char_max
        self.base = seed_state(seed)
        self._word_cache = {}

    def hashes(self, text):
        """Full 64-bit hashes, in feature order (unigram, its char n-grams per word; bigrams)."""
        ws = words(text)
        out = []
        for w in ws:
            cached = self._word_cache.get(w)
            if cached is None:
                cached = [fnv1a(w, fnv1a([TYPE_WORD], self.base))]
                if self.char_max >= self.char_min > 0:
                    char_base = fnv1a([TYPE_CHAR], self.base)
                    cached += [fnv1a(g, char_base)
                               for g in char_ngrams(w, self.char_min, self.char_max)]
                self._word_cache[w] = cached
            out.extend(cached)
        if self.word_ngrams >= 2:
            bigram_base = fnv1a([TYPE_BIGRAM], self.base)
            for a, b in zip(ws, ws[1:]):
                out.append(fnv1a(b, fnv1a([0x20], fnv1a(a, bigram_base))))
        return out

    def features(self, text):
        return [h % self.buckets for h in self.hashes(text)]


def probabilities(featurizer, embeddings, weight, bias, text):
    """Numpy reference forward pass: softmax(W mean(E[features]) + b), in float64."""
    ids = featurizer.features(text)
    if ids:
        hidden = embeddings[ids].astype(np.float64).mean(axis=0)
    else:
        hidden = np.zeros(embeddings.shape[1])
    logits = weight.astype(np.float64) @ hidden + bias.astype(np.float64)
    logits -= logits.max()
    e = np.exp(logits)
    return e / e.sum()
