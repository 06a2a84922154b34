"""A small GGUF reader: metadata as Python values, tensors as numpy arrays.

Reads the whole file into memory (our files are a few MB). Tensors come back in numpy order,
i.e. with GGUF dims reversed, so what GGUFWriter.add_tensor took is what read_gguf returns.

Usage:
    gguf = read_gguf("vocab.gguf")
    tokens = gguf.metadata["tokenizer.ggml.tokens"]
"""

import struct

import numpy as np

from pyslm import ggml_quants
from pyslm import gguf_writer as w

_TENSOR_DTYPES = {w.GGML_TYPE_F32: np.float32, w.GGML_TYPE_F16: np.float16}


class GGUFFile:
    def __init__(self, version, metadata, tensors):
        self.version = version
        self.metadata = metadata  # key -> int | float | bool | str | list
        self.tensors = tensors  # name -> numpy array (F32/F16; quantized ones with dequantize)


class _Cursor:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, fmt):
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string(self):
        length = self.take("<Q")
        text = self.data[self.pos:self.pos + length].decode("utf-8")
        self.pos += length
        return text

    def value(self, value_type):
        if value_type == w.TYPE_STRING:
            return self.string()
        if value_type == w.TYPE_ARRAY:
            element_type, count = self.take("<IQ")
            return [self.value(element_type) for _ in range(count)]
        return self.take(w._SCALAR_FORMATS[value_type])


def read_gguf(path, load_tensors=True, dequantize=False):
    """dequantize: decode every ggml type tools/pyslm/ggml_quants knows (Q8_0, Q4_K, ...) to
    float32; without it only F32 and F16 tensors load."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != w.GGUF_MAGIC:
        raise ValueError(f"{path}: not a GGUF file (magic {data[:4]!r})")
    cursor = _Cursor(data)
    cursor.pos = 4
    version, tensor_count, metadata_count = cursor.take("<IQQ")
    if version not in (2, 3):
        raise ValueError(f"{path}: GGUF version {version}, expected 2 or 3")
    metadata = {}
    for _ in range(metadata_count):
        key = cursor.string()
        metadata[key] = cursor.value(cursor.take("<I"))
    infos = []
    for _ in range(tensor_count):
        name = cursor.string()
        n_dims = cursor.take("<I")
        dims = [cursor.take("<Q") for _ in range(n_dims)]
        ggml_type, offset = cursor.take("<IQ")
        infos.append((name, dims, ggml_type, offset))
    alignment = metadata.get("general.alignment", w.ALIGNMENT)
    data_start = cursor.pos + (-cursor.pos) % alignment
    tensors = {}
    if load_tensors:
        quant_names = {code: name for name, (code, _, _) in ggml_quants.TYPES.items()}
        for name, dims, ggml_type, offset in infos:
            if dequantize and ggml_type not in _TENSOR_DTYPES and ggml_type in quant_names:
                kind = quant_names[ggml_type]
                _, per_block, block_bytes = ggml_quants.TYPES[kind]
                size = int(np.prod(dims)) // per_block * block_bytes
                start = data_start + offset
                tensors[name] = ggml_quants.dequantize(data[start:start + size], kind,
                                                       list(reversed(dims)))
                continue
            if ggml_type not in _TENSOR_DTYPES:
                raise ValueError(f"{path}: tensor {name} has ggml type {ggml_type}, "
                                 "only F32 and F16 are supported")
            dtype = np.dtype(_TENSOR_DTYPES[ggml_type]).newbyteorder("<")
            count = int(np.prod(dims))
            array = np.frombuffer(data, dtype=dtype, count=count, offset=data_start + offset)
            tensors[name] = array.reshape(list(reversed(dims)))
    return GGUFFile(version, metadata, tensors)
