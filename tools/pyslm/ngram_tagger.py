"""Hashed-feature token tagger (GGUF general.architecture = "ngram_tagger"): the reference that
workers/ngram/ngram_tagger.cc must match bit for bit (feature hashes) and to float rounding
(probabilities).

Tokens: maximal runs of bytes that are not ASCII whitespace (space, \\t, \\n, \\v, \\f, \\r), with
their byte spans; text is handled as UTF-8 bytes, never decoded, so any input is accepted.
Features of token i (each a byte string, hashed as H(feature) = 64-bit FNV-1a over the hash
seed's 4 little-endian bytes then the feature's bytes; its row is H % buckets):
  b                         bias
  w=<token>  l=<lower>      the token as is and ASCII-lowercased
  s=<shape>                 A-Z -> X, a-z -> x, 0-9 -> d, bytes >= 0x80 -> u, others kept;
                            runs of one character longer than 2 cut to 2 ("Xxxxx" -> "Xxx")
  p1..p4=, x1..x4=          the lowercased token's first / last 1..4 bytes
  c=<A><F>                  A: first byte is A-Z ("1"/"0"); F: token is the first ("1"/"0")
  a=<U>                     U: has an A-Z byte and no a-z byte
  l-2= l-1= l1= l2=         lowercased neighbours (or "<pad>" outside the text)
  s-2= s-1= s1= s2=         neighbours' shapes (left out outside the text)
  sl=<prev shape or ^>|<shape>   sr=<shape>|<next shape or $>
  lw=<prev lower or ^>|<lower>
  r=<q>|<A>                 q = (4 * tokens whose first byte is A-Z) // tokens (0..4)
Model: h = sum of the features' embedding rows [dim] + hidden_bias; relu(h) when
ngram_tagger.activation = "relu" ("none": linear); logits = output.weight [labels, dim] h +
output.bias; softmax. Labels are BIO tags ("O", "B-x", "I-x"), decoded into entities as
workers/encoder/bio.h does (every token is a word).

GGUF keys: general.architecture "ngram_tagger", general.name, slmgw.task "token_classification",
slmgw.labels, ngram_tagger.buckets, .dim, .hash_seed (u32), .activation (string); tensors
token_embd.weight [buckets, dim] (f16 or f32), hidden.bias [dim], output.weight [labels, dim],
output.bias [labels].
"""

import numpy as np

from pyslm.gguf_writer import GGUFWriter

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = 0xFFFFFFFFFFFFFFFF
WHITESPACE = b" \t\n\v\f\r"
ARCHITECTURE = "ngram_tagger"


def fnv1a(data, state=FNV_OFFSET):
    for byte in data:
        state = ((state ^ byte) * FNV_PRIME) & MASK64
    return state


def tokens(data):
    """bytes -> [(begin, end)] byte spans of the non-whitespace runs."""
    spans, start = [], None
    for i, byte in enumerate(data):
        if byte in WHITESPACE:
            if start is not None:
                spans.append((start, i))
                start = None
        elif start is None:
            start = i
    if start is not None:
        spans.append((start, len(data)))
    return spans


def lower(token):
    return bytes(b + 32 if 65 <= b <= 90 else b for b in token)


def shape(token):
    out = bytearray()
    for b in token:
        if 65 <= b <= 90:
            c = ord("X")
        elif 97 <= b <= 122:
            c = ord("x")
        elif 48 <= b <= 57:
            c = ord("d")
        elif b >= 0x80:
            c = ord("u")
        else:
            c = b
        if len(out) >= 2 and out[-1] == c and out[-2] == c:
            continue
        out.append(c)
    return bytes(out)


def _capital(token):
    return b"1" if token and 65 <= token[0] <= 90 else b"0"


def token_features(words, i):
    """Feature byte strings of token i of words (a list of bytes), in generation order."""
    w = words[i]
    low = lower(w)
    sh = shape(w)
    out = [b"b", b"w=" + w, b"l=" + low, b"s=" + sh]
    for k in (1, 2, 3, 4):
        out += [b"p%d=" % k + low[:k], b"x%d=" % k + low[-k:]]
    out.append(b"c=" + _capital(w) + (b"1" if i == 0 else b"0"))
    upper = any(65 <= b <= 90 for b in w) and not any(97 <= b <= 122 for b in w)
    out.append(b"a=" + (b"1" if upper else b"0"))
    for d in (-2, -1, 1, 2):
        j = i + d
        if 0 <= j < len(words):
            out += [b"l%d=" % d + lower(words[j]), b"s%d=" % d + shape(words[j])]
        else:
            out.append(b"l%d=<pad>" % d)
    prev_shape = shape(words[i - 1]) if i > 0 else b"^"
    next_shape = shape(words[i + 1]) if i + 1 < len(words) else b"$"
    out += [b"sl=" + prev_shape + b"|" + sh, b"sr=" + sh + b"|" + next_shape]
    out.append(b"lw=" + (lower(words[i - 1]) if i > 0 else b"^") + b"|" + low)
    capitals = sum(1 for word in words if word and 65 <= word[0] <= 90)
    out.append(b"r=%d|" % (4 * capitals // len(words)) + _capital(w))
    return out


class Featurizer:
    def __init__(self, buckets, seed):
        self.buckets = buckets
        self.base = fnv1a(int(seed).to_bytes(4, "little"))

    def hashes(self, words):
        """[[u64 per feature] per token] for words (list of bytes)."""
        return [[fnv1a(f, self.base) for f in token_features(words, i)]
                for i in range(len(words))]

    def rows(self, words):
        return [[h % self.buckets for h in token] for token in self.hashes(words)]


def split(text):
    """str or bytes -> (data bytes, spans, words)."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    spans = tokens(data)
    return data, spans, [data[b:e] for b, e in spans]


def probabilities(featurizer, tensors, activation, words):
    """[tokens, labels] softmax probabilities (float64) of the reference forward pass."""
    embeddings = tensors["token_embd.weight"].astype(np.float32)
    out = np.zeros((len(words), tensors["output.bias"].shape[0]))
    for t, rows in enumerate(featurizer.rows(words)):
        h = embeddings[rows].astype(np.float64).sum(0) + tensors["hidden.bias"]
        if activation == "relu":
            h = np.maximum(h, 0)
        logits = tensors["output.weight"].astype(np.float64) @ h + tensors["output.bias"]
        logits -= logits.max()
        e = np.exp(logits)
        out[t] = e / e.sum()
    return out


def write_gguf(path, name, labels, buckets, seed, activation, embeddings, hidden_bias, weight,
               bias, embeddings_f16=True):
    writer = GGUFWriter()
    writer.add_string("general.architecture", ARCHITECTURE)
    writer.add_string("general.name", name)
    writer.add_string("slmgw.task", "token_classification")
    writer.add_string_array("slmgw.labels", list(labels))
    writer.add_u32("ngram_tagger.buckets", buckets)
    writer.add_u32("ngram_tagger.dim", embeddings.shape[1])
    writer.add_u32("ngram_tagger.hash_seed", seed)
    writer.add_string("ngram_tagger.activation", activation)
    writer.add_tensor("token_embd.weight", np.asarray(embeddings, np.float32),
                      "f16" if embeddings_f16 else "f32")
    writer.add_tensor("hidden.bias", np.asarray(hidden_bias, np.float32))
    writer.add_tensor("output.weight", np.asarray(weight, np.float32))
    writer.add_tensor("output.bias", np.asarray(bias, np.float32))
    writer.write(path)
