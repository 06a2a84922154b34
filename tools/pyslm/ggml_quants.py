"""ggml tensor encodings in numpy: quantize rows to Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K,
Q6_K (llama.cpp block
layouts, ggml-common.h) and BF16/F16/F32, and dequantize them back.

The quantizers are simple (round to nearest with each block's own scale), not llama.cpp's
error-minimizing search, but the bytes follow llama.cpp's layout exactly, so any GGUF reader
decodes them. Tests export a model with these, load the GGUF in C++, and compare with a PyTorch
reference that uses `dequantize(quantize(w))`, so only the decoding is under test.

Usage:
    data = quantize(weights, "q4_k")          # bytes; weights [rows, cols], cols % 256 == 0
    restored = dequantize(data, "q4_k", weights.shape)
"""

import numpy as np

# ggml.h enum ggml_type codes, elements per block, bytes per block.
TYPES = {
    "f32": (0, 1, 4),
    "f16": (1, 1, 2),
    "q4_0": (2, 32, 18),
    "q4_1": (3, 32, 20),
    "q5_0": (6, 32, 22),
    "q5_1": (7, 32, 24),
    "q8_0": (8, 32, 34),
    "q4_k": (12, 256, 144),
    "q5_k": (13, 256, 176),
    "q6_k": (14, 256, 210),
    "bf16": (30, 1, 2),
}


def ggml_type(name):
    return TYPES[name][0]


def block_size(name):
    return TYPES[name][1]


def _f16(values):
    return np.asarray(values, dtype=np.float32).astype(np.float16)


def _blocks(weights, size):
    flat = np.ascontiguousarray(weights, dtype=np.float32).reshape(-1)
    if flat.size % size:
        raise ValueError(f"{flat.size} elements is not a multiple of the block size {size}")
    return flat.reshape(-1, size)


def _bf16_bits(values):
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16  # round to nearest even
    return rounded.astype(np.uint16)


def quantize(weights, name):
    """Encodes `weights` (any shape; the last dim must be a multiple of the block) as bytes."""
    weights = np.asarray(weights, dtype=np.float32)
    if weights.shape[-1] % block_size(name):
        raise ValueError(f"{name}: row length {weights.shape[-1]} is not a multiple of "
                         f"{block_size(name)}")
    if name == "f32":
        return weights.astype("<f4").tobytes()
    if name == "f16":
        return weights.astype("<f2").tobytes()
    if name == "bf16":
        return _bf16_bits(weights).astype("<u2").tobytes()
    if name == "q8_0":
        return _quantize_q8_0(_blocks(weights, 32))
    if name == "q4_0":
        return _quantize_q4_0(_blocks(weights, 32))
    if name == "q4_1":
        return _quantize_affine(_blocks(weights, 32), 4)
    if name == "q5_0":
        return _quantize_q5_0(_blocks(weights, 32))
    if name == "q5_1":
        return _quantize_affine(_blocks(weights, 32), 5)
    if name == "q4_k":
        return _quantize_q4_k(_blocks(weights, 256))
    if name == "q5_k":
        return _quantize_q4_k(_blocks(weights, 256), bits=5)
    if name == "q6_k":
        return _quantize_q6_k(_blocks(weights, 256))
    raise ValueError(f"unknown ggml type {name!r}")


def dequantize(data, name, shape):
    """Decodes bytes from quantize() back to float32 of `shape`."""
    count = int(np.prod(shape))
    raw = np.frombuffer(data, dtype=np.uint8)
    if name == "f32":
        out = raw.view("<f4").astype(np.float32)
    elif name == "f16":
        out = raw.view("<f2").astype(np.float32)
    elif name == "bf16":
        out = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    elif name == "q8_0":
        out = _dequantize_q8_0(raw.reshape(-1, 34))
    elif name == "q4_0":
        out = _dequantize_q4_0(raw.reshape(-1, 18))
    elif name == "q4_1":
        out = _dequantize_affine(raw.reshape(-1, 20), 4)
    elif name == "q5_0":
        out = _dequantize_q5_0(raw.reshape(-1, 22))
    elif name == "q5_1":
        out = _dequantize_affine(raw.reshape(-1, 24), 5)
    elif name == "q4_k":
        out = _dequantize_q4_k(raw.reshape(-1, 144))
    elif name == "q5_k":
        out = _dequantize_q4_k(raw.reshape(-1, 176), bits=5)
    elif name == "q6_k":
        out = _dequantize_q6_k(raw.reshape(-1, 210))
    else:
        raise ValueError(f"unknown ggml type {name!r}")
    if out.size != count:
        raise ValueError(f"{name}: {out.size} elements decoded, expected {count}")
    return out.reshape(shape).astype(np.float32)


# Q8_0: { f16 d; int8 qs[32] }, x = d * q, d = max|x| / 127.
def _quantize_q8_0(blocks):
    amax = np.abs(blocks).max(axis=1)
    d = amax / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0)
    q = np.clip(np.round(blocks * inv[:, None]), -127, 127).astype(np.int8)
    out = np.zeros((blocks.shape[0], 34), dtype=np.uint8)
    out[:, 0:2] = _f16(d).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def _dequantize_q8_0(raw):
    d = raw[:, 0:2].copy().view("<f2").astype(np.float32)
    q = raw[:, 2:].view(np.int8).astype(np.float32)
    return (d * q).reshape(-1)


# Q4_0: { f16 d; uint8 qs[16] }: element j low nibble of qs[j], element j+16 the high nibble;
# x = d * (q - 8) with d = (signed value of largest magnitude) / -8.
def _quantize_q4_0(blocks):
    index = np.abs(blocks).argmax(axis=1)
    extreme = blocks[np.arange(blocks.shape[0]), index]
    d = extreme / -8.0
    inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0.0)
    q = np.clip(np.floor(blocks * inv[:, None] + 8.5), 0, 15).astype(np.uint8)
    out = np.zeros((blocks.shape[0], 18), dtype=np.uint8)
    out[:, 0:2] = _f16(d).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def _dequantize_q4_0(raw):
    d = raw[:, 0:2].copy().view("<f2").astype(np.float32)
    qs = raw[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (d * q).reshape(-1)


def _pack_nibbles_and_high_bits(q):
    """q [n, 32] in 0..31 -> (qs [n, 16]: element j low nibble, j + 16 high nibble; qh [n, 4]:
    bit j of the little-endian word = 5th bit of element j)."""
    qs = (q[:, :16] & 0xF) | ((q[:, 16:] & 0xF) << 4)
    bits = ((q >> 4) & 1).astype(np.uint64) << np.arange(32, dtype=np.uint64)
    word = bits.sum(axis=1).astype("<u4")
    return qs.astype(np.uint8), word.view(np.uint8).reshape(-1, 4)


def _unpack_nibbles_and_high_bits(qs, qh):
    word = qh.copy().view("<u4")[:, 0].astype(np.uint64)
    high = (word[:, None] >> np.arange(32, dtype=np.uint64)) & 1
    low = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.uint64)
    return (low | (high << 4)).astype(np.float32)


# Q4_1 / Q5_1: { f16 d; f16 m; [uint8 qh[4];] uint8 qs[16] }, x = d * q + m, m = min.
def _quantize_affine(blocks, bits):
    levels = (1 << bits) - 1
    low, high = blocks.min(axis=1), blocks.max(axis=1)
    d = (high - low) / levels
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0)
    q = np.clip(np.floor((blocks - low[:, None]) * inv[:, None] + 0.5), 0, levels).astype(np.int64)
    n = blocks.shape[0]
    header = np.zeros((n, 4), dtype=np.uint8)
    header[:, 0:2] = _f16(d).view(np.uint8).reshape(-1, 2)
    header[:, 2:4] = _f16(low).view(np.uint8).reshape(-1, 2)
    if bits == 4:
        qs = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
        return np.concatenate([header, qs], axis=1).tobytes()
    qs, qh = _pack_nibbles_and_high_bits(q)
    return np.concatenate([header, qh, qs], axis=1).tobytes()


def _dequantize_affine(raw, bits):
    d = raw[:, 0:2].copy().view("<f2").astype(np.float32)
    m = raw[:, 2:4].copy().view("<f2").astype(np.float32)
    if bits == 4:
        qs = raw[:, 4:]
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)
    else:
        q = _unpack_nibbles_and_high_bits(raw[:, 8:], raw[:, 4:8])
    return (q * d + m).reshape(-1)


# Q5_0: { f16 d; uint8 qh[4]; uint8 qs[16] }, x = d * (q - 16), d = extreme / -16.
def _quantize_q5_0(blocks):
    index = np.abs(blocks).argmax(axis=1)
    extreme = blocks[np.arange(blocks.shape[0]), index]
    d = extreme / -16.0
    inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0.0)
    q = np.clip(np.floor(blocks * inv[:, None] + 16.5), 0, 31).astype(np.int64)
    qs, qh = _pack_nibbles_and_high_bits(q)
    header = _f16(d).view(np.uint8).reshape(-1, 2)
    return np.concatenate([header, qh, qs], axis=1).tobytes()


def _dequantize_q5_0(raw):
    d = raw[:, 0:2].copy().view("<f2").astype(np.float32)
    q = _unpack_nibbles_and_high_bits(raw[:, 6:], raw[:, 2:6])
    return ((q - 16.0) * d).reshape(-1)


# Q4_K: { f16 d; f16 dmin; uint8 scales[12]; uint8 qs[128] }, 8 sub-blocks of 32 with 6-bit
# scale s_j and min m_j: x = d * s_j * q - dmin * m_j, q in 0..15.
def _quantize_q4_k(blocks, bits=4):
    """Q4_K, or Q5_K with bits=5: { f16 d; f16 dmin; uint8 scales[12]; [uint8 qh[32];]
    uint8 qs[128] }; Q5_K's 5th bit of element l of sub-block j is bit j of qh[l]."""
    levels = (1 << bits) - 1
    n = blocks.shape[0]
    sub = blocks.reshape(n, 8, 32)
    mins = np.minimum(sub.min(axis=2), 0.0)  # <= 0
    scales = (sub.max(axis=2) - mins) / levels
    d = _f16(scales.max(axis=1) / 63.0).astype(np.float32)
    dmin = _f16((-mins).max(axis=1) / 63.0).astype(np.float32)
    safe_d = np.where(d > 0, d, 1.0)
    safe_dmin = np.where(dmin > 0, dmin, 1.0)
    sc = np.clip(np.round(scales / safe_d[:, None]), 0, 63).astype(np.int64)
    mn = np.clip(np.round(-mins / safe_dmin[:, None]), 0, 63).astype(np.int64)
    step = d[:, None] * sc
    offset = dmin[:, None] * mn
    safe_step = np.where(step > 0, step, 1.0)
    q = np.clip(np.round((sub + offset[:, :, None]) / safe_step[:, :, None]), 0, levels)
    q = q.astype(np.int64).reshape(n, 256)
    packed_scales = np.zeros((n, 12), dtype=np.int64)
    for j in range(8):
        if j < 4:
            packed_scales[:, j] |= sc[:, j]
            packed_scales[:, j + 4] |= mn[:, j]
        else:
            packed_scales[:, j + 4] = (sc[:, j] & 0xF) | ((mn[:, j] & 0xF) << 4)
            packed_scales[:, j - 4] |= (sc[:, j] >> 4) << 6
            packed_scales[:, j] |= (mn[:, j] >> 4) << 6
    qs = np.zeros((n, 128), dtype=np.int64)
    qh = np.zeros((n, 32), dtype=np.int64)
    for pair in range(4):
        low = q[:, 64 * pair:64 * pair + 32]
        high = q[:, 64 * pair + 32:64 * pair + 64]
        qs[:, 32 * pair:32 * pair + 32] = (low & 0xF) | ((high & 0xF) << 4)
        qh |= ((low >> 4) << (2 * pair)) | ((high >> 4) << (2 * pair + 1))
    out = np.zeros((n, 144 if bits == 4 else 176), dtype=np.uint8)
    out[:, 0:2] = _f16(d).view(np.uint8).reshape(-1, 2)
    out[:, 2:4] = _f16(dmin).view(np.uint8).reshape(-1, 2)
    out[:, 4:16] = packed_scales.astype(np.uint8)
    if bits == 5:
        out[:, 16:48] = qh.astype(np.uint8)
    out[:, -128:] = qs.astype(np.uint8)
    return out.tobytes()


def _dequantize_q4_k(raw, bits=4):
    n = raw.shape[0]
    d = raw[:, 0:2].copy().view("<f2").astype(np.float32)[:, 0]
    dmin = raw[:, 2:4].copy().view("<f2").astype(np.float32)[:, 0]
    s = raw[:, 4:16].astype(np.int64)
    sc = np.zeros((n, 8), dtype=np.int64)
    mn = np.zeros((n, 8), dtype=np.int64)
    for j in range(8):
        if j < 4:
            sc[:, j] = s[:, j] & 63
            mn[:, j] = s[:, j + 4] & 63
        else:
            sc[:, j] = (s[:, j + 4] & 0xF) | ((s[:, j - 4] >> 6) << 4)
            mn[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    qs = raw[:, -128:]
    qh = raw[:, 16:48].astype(np.int64) if bits == 5 else np.zeros((n, 32), dtype=np.int64)
    q = np.zeros((n, 8, 32), dtype=np.float32)
    for pair in range(4):
        chunk = qs[:, 32 * pair:32 * pair + 32].astype(np.int64)
        q[:, 2 * pair] = (chunk & 0x0F) | (((qh >> (2 * pair)) & 1) << 4)
        q[:, 2 * pair + 1] = (chunk >> 4) | (((qh >> (2 * pair + 1)) & 1) << 4)
    step = (d[:, None] * sc).astype(np.float32)
    offset = (dmin[:, None] * mn).astype(np.float32)
    return (step[:, :, None] * q - offset[:, :, None]).reshape(-1)


# Q6_K: { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d }, 16 sub-blocks of 16 with int8
# scales: x = d * scale * (q - 32), q in 0..63 (see the C++ decoder for the bit positions).
def _quantize_q6_k(blocks):
    n = blocks.shape[0]
    sub = blocks.reshape(n, 16, 16)
    scales = np.abs(sub).max(axis=2) / 31.0
    d = _f16(scales.max(axis=1) / 127.0).astype(np.float32)
    safe_d = np.where(d > 0, d, 1.0)
    sc = np.clip(np.round(scales / safe_d[:, None]), -128, 127).astype(np.int64)
    step = d[:, None] * sc
    safe_step = np.where(step != 0, step, 1.0)
    q = np.clip(np.round(sub / safe_step[:, :, None]), -32, 31).astype(np.int64) + 32
    q = q.reshape(n, 256)
    ql = np.zeros((n, 128), dtype=np.int64)
    qh = np.zeros((n, 64), dtype=np.int64)
    for half in range(2):
        base = 128 * half
        a = q[:, base:base + 32]
        b = q[:, base + 32:base + 64]
        c = q[:, base + 64:base + 96]
        e = q[:, base + 96:base + 128]
        ql[:, 64 * half:64 * half + 32] = (a & 0xF) | ((c & 0xF) << 4)
        ql[:, 64 * half + 32:64 * half + 64] = (b & 0xF) | ((e & 0xF) << 4)
        qh[:, 32 * half:32 * half + 32] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | \
            ((e >> 4) << 6)
    out = np.zeros((n, 210), dtype=np.uint8)
    out[:, 0:128] = ql.astype(np.uint8)
    out[:, 128:192] = qh.astype(np.uint8)
    out[:, 192:208] = sc.astype(np.int8).view(np.uint8)
    out[:, 208:210] = _f16(d).view(np.uint8).reshape(-1, 2)
    return out.tobytes()


def _dequantize_q6_k(raw):
    n = raw.shape[0]
    ql = raw[:, 0:128].astype(np.int64)
    qh = raw[:, 128:192].astype(np.int64)
    sc = raw[:, 192:208].copy().view(np.int8).astype(np.float32)
    d = raw[:, 208:210].copy().view("<f2").astype(np.float32)[:, 0]
    q = np.zeros((n, 256), dtype=np.int64)
    for half in range(2):
        low = ql[:, 64 * half:64 * half + 64]
        high = qh[:, 32 * half:32 * half + 32]
        base = 128 * half
        q[:, base:base + 32] = (low[:, :32] & 0xF) | ((high & 3) << 4)
        q[:, base + 32:base + 64] = (low[:, 32:] & 0xF) | (((high >> 2) & 3) << 4)
        q[:, base + 64:base + 96] = (low[:, :32] >> 4) | (((high >> 4) & 3) << 4)
        q[:, base + 96:base + 128] = (low[:, 32:] >> 4) | (((high >> 6) & 3) << 4)
    scale = np.repeat((d[:, None] * sc).astype(np.float32), 16, axis=1)
    return (scale * (q - 32).astype(np.float32)).reshape(-1)
