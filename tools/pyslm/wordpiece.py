"""WordPiece tokenization as BERT's (uncased) tokenizer does it, over a llama.cpp-style vocabulary.

Steps (Hugging Face BasicTokenizer + WordpieceTokenizer): drop control characters and map
whitespace to spaces; put spaces around CJK ideographs; lowercase and strip accents (uncased
vocabularies; a cased one, lowercase=False, keeps both as HF's do_lower_case=False); split on
whitespace and punctuation; then split each word greedily into the longest vocabulary pieces.

Vocabulary convention (llama.cpp "phantom space"): a word-initial piece "the" is stored as
"\u2581the", a continuation piece "##ing" as "ing"; bracketed specials ("[CLS]") unchanged.

Usage:
    tokenizer = WordPieceTokenizer(tokens)            # tokens: list, index = id
    ids = tokenizer.encode("Hello, world!")           # [CLS] ... [SEP]
"""

import unicodedata

WORD_START = "\u2581"
MAX_WORD_CHARS = 100  # longer words become [UNK], as in BERT


def _is_control(char):
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_whitespace(char):
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_punctuation(char):
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(code):
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
            or 0x2A700 <= code <= 0x2B73F or 0x2B740 <= code <= 0x2B81F
            or 0x2B820 <= code <= 0x2CEAF or 0xF900 <= code <= 0xFAFF
            or 0x2F800 <= code <= 0x2FA1F)


def basic_tokenize(text, lowercase=True):
    """Text -> words and punctuation marks; lowercased and accent-stripped when lowercase (BERT
    uncased), unchanged otherwise (BERT cased: do_lower_case=False also keeps accents)."""
    cleaned = []
    for char in text:
        if ord(char) == 0 or ord(char) == 0xFFFD or _is_control(char):
            continue
        if _is_whitespace(char):
            cleaned.append(" ")
        elif _is_cjk(ord(char)):
            cleaned.append(f" {char} ")
        else:
            cleaned.append(char)
    words = []
    for word in "".join(cleaned).split():
        if lowercase:
            word = unicodedata.normalize("NFD", word.lower())
            word = "".join(char for char in word if unicodedata.category(char) != "Mn")
        current = []
        for char in word:
            if _is_punctuation(char):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(char)
            else:
                current.append(char)
        if current:
            words.append("".join(current))
    return words


LOWERCASE_KEY = "slmgw.tokenizer.lowercase"  # GGUF bool; absent = true (BERT uncased)


def tokenizer_from_metadata(metadata):
    """The tokenizer a BERT GGUF's metadata describes (tokens and the lowercase flag)."""
    return WordPieceTokenizer(metadata["tokenizer.ggml.tokens"],
                              lowercase=bool(metadata.get(LOWERCASE_KEY, True)))


class WordPieceTokenizer:
    """Greedy longest-match WordPiece over a phantom-space vocabulary. Immutable after
    construction; safe to share."""

    def __init__(self, tokens, unknown="[UNK]", cls="[CLS]", separator="[SEP]", lowercase=True):
        self.tokens = list(tokens)
        self.lowercase = lowercase
        self.ids = {token: i for i, token in enumerate(self.tokens)}
        for special in (unknown, cls, separator):
            if special not in self.ids:
                raise ValueError(f"vocabulary has no {special} token")
        self.unknown_id = self.ids[unknown]
        self.cls_id = self.ids[cls]
        self.separator_id = self.ids[separator]
        self.longest = max(len(token) for token in self.tokens)

    def word_pieces(self, word):
        """One basic-tokenized word -> piece ids; [UNK] alone when it cannot be covered."""
        if len(word) > MAX_WORD_CHARS:
            return [self.unknown_id]
        pieces = []
        start = 0
        while start < len(word):
            prefix = WORD_START if start == 0 else ""
            end = min(len(word), start + self.longest)
            while end > start and prefix + word[start:end] not in self.ids:
                end -= 1
            if end == start:
                return [self.unknown_id]
            pieces.append(self.ids[prefix + word[start:end]])
            start = end
        return pieces

    def tokenize(self, text):
        """Piece ids without [CLS]/[SEP]."""
        ids = []
        for word in basic_tokenize(text, self.lowercase):
            ids.extend(self.word_pieces(word))
        return ids

    def encode(self, text, max_length=None):
        """[CLS] pieces [SEP], truncated so the whole stays within max_length."""
        ids = self.tokenize(text)
        if max_length is not None:
            ids = ids[:max_length - 2]
        return [self.cls_id] + ids + [self.separator_id]
