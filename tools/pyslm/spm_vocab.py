"""Reads a SentencePiece vocabulary as spm_train writes it (PREFIX.vocab: `piece<TAB>score` per
line, in id order) into what llama.cpp's SPM ("llama") tokenizer metadata holds.

    pieces, scores, types = read_spm_vocab("spm.vocab")
    llama.to_gguf(config, state, "model.gguf", tokens=pieces, scores=scores, token_types=types)

Token types follow llama.cpp: 1 normal, 2 unknown (<unk>), 3 control (<s>, </s>, <pad>),
6 byte (<0xNN>, byte fallback). The file must start with <unk> <s> </s> (ids 0, 1, 2), which
is what spm_train writes with --unk_id=0 --bos_id=1 --eos_id=2.
"""

import re

NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6


def read_spm_vocab(path):
    """(pieces, scores, types) from an spm_train .vocab file; ValueError naming the line."""
    pieces, scores, types = [], [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            fields = line.split("\t")
            if len(fields) != 2:
                raise ValueError(f"{path}:{number}: expected piece<TAB>score, got {line!r}")
            piece, score = fields
            try:
                scores.append(float(score))
            except ValueError:
                raise ValueError(f"{path}:{number}: score {score!r} is not a number") from None
            if not piece:
                raise ValueError(f"{path}:{number}: empty piece")
            pieces.append(piece)
            if piece == "<unk>":
                types.append(UNKNOWN)
            elif piece in ("<s>", "</s>", "<pad>"):
                types.append(CONTROL)
            elif re.fullmatch(r"<0x[0-9A-F]{2}>", piece):
                types.append(BYTE)
            else:
                types.append(NORMAL)
    if pieces[:3] != ["<unk>", "<s>", "</s>"]:
        raise ValueError(f"{path}: expected the first pieces to be <unk> <s> </s> "
                         f"(spm_train --unk_id=0 --bos_id=1 --eos_id=2), got {pieces[:3]}")
    if len(set(pieces)) != len(pieces):
        raise ValueError(f"{path}: duplicate pieces")
    return pieces, scores, types
