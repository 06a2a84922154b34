"""A minimal GGUF v3 writer: typed metadata plus F32/F16 tensors.

GGUF layout (little-endian): header (magic, version, tensor count, metadata count), metadata
key/value pairs, tensor infos (name, dims, type, data offset), padding to the alignment, then the
tensor data, each tensor starting at a multiple of the alignment.

Usage:
    writer = GGUFWriter()
    writer.add_string("general.architecture", "bert")
    writer.add_u32("bert.block_count", 2)
    writer.add_tensor("token_embd.weight", embeddings)      # numpy [vocab, hidden]
    writer.write("model.gguf")

Dims: GGUF lists dims fastest-varying first, so a numpy array of shape [out, in] is stored with
dims [in, out]; the bytes are the array's row-major bytes unchanged.
"""

import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGNMENT = 32

# Metadata value types (gguf.h: enum gguf_type).
TYPE_UINT8 = 0
TYPE_INT8 = 1
TYPE_UINT16 = 2
TYPE_INT16 = 3
TYPE_UINT32 = 4
TYPE_INT32 = 5
TYPE_FLOAT32 = 6
TYPE_BOOL = 7
TYPE_STRING = 8
TYPE_ARRAY = 9
TYPE_UINT64 = 10
TYPE_INT64 = 11
TYPE_FLOAT64 = 12

_SCALAR_FORMATS = {
    TYPE_UINT8: "<B",
    TYPE_INT8: "<b",
    TYPE_UINT16: "<H",
    TYPE_INT16: "<h",
    TYPE_UINT32: "<I",
    TYPE_INT32: "<i",
    TYPE_FLOAT32: "<f",
    TYPE_BOOL: "<?",
    TYPE_UINT64: "<Q",
    TYPE_INT64: "<q",
    TYPE_FLOAT64: "<d",
}

# Tensor element types (ggml.h: enum ggml_type) and the numpy dtype of their bytes.
GGML_TYPE_F32 = 0
GGML_TYPE_F16 = 1
_TENSOR_TYPES = {"f32": (GGML_TYPE_F32, np.float32), "f16": (GGML_TYPE_F16, np.float16)}


def _encode_string(text):
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def _encode_value(value_type, value):
    if value_type == TYPE_STRING:
        return _encode_string(value)
    return struct.pack(_SCALAR_FORMATS[value_type], value)


def _padding(size):
    return (-size) % ALIGNMENT


class GGUFWriter:
    """Collects metadata and tensors in memory, then writes one GGUF file.

    Keys and tensor names must be unique; the order of calls is the order in the file.
    """

    def __init__(self):
        self._metadata = []  # (key, encoded type + value)
        self._tensors = []  # (name, dims, ggml type, bytes)
        self._names = set()
        self.add_u32("general.alignment", ALIGNMENT)

    def _add(self, key, payload):
        if key in self._names:
            raise ValueError(f"duplicate GGUF key or tensor name: {key!r}")
        self._names.add(key)
        self._metadata.append((key, payload))

    def _add_scalar(self, key, value_type, value):
        self._add(key, struct.pack("<I", value_type) + _encode_value(value_type, value))

    def add_string(self, key, value):
        self._add_scalar(key, TYPE_STRING, value)

    def add_u32(self, key, value):
        self._add_scalar(key, TYPE_UINT32, int(value))

    def add_i32(self, key, value):
        self._add_scalar(key, TYPE_INT32, int(value))

    def add_f32(self, key, value):
        self._add_scalar(key, TYPE_FLOAT32, float(value))

    def add_bool(self, key, value):
        self._add_scalar(key, TYPE_BOOL, bool(value))

    def add_array(self, key, element_type, values):
        """An array of one scalar type or of strings (element_type is a TYPE_* constant)."""
        if element_type == TYPE_ARRAY:
            raise ValueError(f"{key}: nested arrays are not supported")
        parts = [struct.pack("<IIQ", TYPE_ARRAY, element_type, len(values))]
        parts.extend(_encode_value(element_type, value) for value in values)
        self._add(key, b"".join(parts))

    def add_string_array(self, key, values):
        self.add_array(key, TYPE_STRING, list(values))

    def add_i32_array(self, key, values):
        self.add_array(key, TYPE_INT32, [int(v) for v in values])

    def add_u32_array(self, key, values):
        self.add_array(key, TYPE_UINT32, [int(v) for v in values])

    def add_tensor(self, name, array, dtype="f32"):
        """Adds a tensor; array is any numpy array (or array-like), dtype "f32" or "f16"."""
        if dtype not in _TENSOR_TYPES:
            raise ValueError(f"tensor {name}: dtype must be one of {sorted(_TENSOR_TYPES)}")
        if any(existing == name for existing, _, _, _ in self._tensors):
            raise ValueError(f"duplicate tensor name: {name!r}")
        ggml_type, numpy_type = _TENSOR_TYPES[dtype]
        data = np.ascontiguousarray(np.asarray(array), dtype=numpy_type)
        if data.ndim < 1 or data.ndim > 4:
            raise ValueError(f"tensor {name}: expected 1 to 4 dims, got shape {data.shape}")
        dims = tuple(reversed(data.shape))
        self._tensors.append((name, dims, ggml_type, data.astype("<" + data.dtype.str[1:]).tobytes()))

    def add_tensor_bytes(self, name, dims, ggml_type, data):
        """Adds a tensor already encoded in ggml type `ggml_type` (e.g. quantized blocks).

        dims: GGUF order (fastest-varying first); data: the tensor's bytes.
        """
        if any(existing == name for existing, _, _, _ in self._tensors):
            raise ValueError(f"duplicate tensor name: {name!r}")
        if not 1 <= len(dims) <= 4:
            raise ValueError(f"tensor {name}: expected 1 to 4 dims, got {dims}")
        self._tensors.append((name, tuple(int(d) for d in dims), int(ggml_type), bytes(data)))

    def to_bytes(self):
        out = bytearray()
        out += GGUF_MAGIC
        out += struct.pack("<IQQ", GGUF_VERSION, len(self._tensors), len(self._metadata))
        for key, payload in self._metadata:
            out += _encode_string(key) + payload
        offset = 0
        for name, dims, ggml_type, data in self._tensors:
            out += _encode_string(name)
            out += struct.pack("<I", len(dims))
            out += b"".join(struct.pack("<Q", d) for d in dims)
            out += struct.pack("<IQ", ggml_type, offset)
            offset += len(data) + _padding(len(data))
        out += bytes(_padding(len(out)))
        for _, _, _, data in self._tensors:
            out += data + bytes(_padding(len(data)))
        return bytes(out)

    def write(self, path):
        with open(path, "wb") as f:
            f.write(self.to_bytes())
