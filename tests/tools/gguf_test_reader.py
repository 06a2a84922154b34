"""An independent GGUF v3 parser for tests: written from the spec, shares no code with pyslm."""

import struct

import numpy as np

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
            11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def parse(data):
    """Returns dict(version, metadata={key: (type, value)}, tensors={name: (dims, type, offset,
    array)}, data_start) and checks alignment of every tensor."""
    pos = 0

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return values[0]

    def string():
        nonlocal pos
        length = take("<Q")
        text = data[pos:pos + length].decode("utf-8")
        pos += length
        return text

    def value(value_type):
        if value_type == _STRING:
            return string()
        if value_type == _ARRAY:
            element_type = take("<I")
            count = take("<Q")
            return (element_type, [value(element_type) for _ in range(count)])
        return take(_SCALARS[value_type])

    assert data[:4] == b"GGUF", data[:4]
    pos = 4
    version = take("<I")
    tensor_count = take("<Q")
    metadata_count = take("<Q")
    metadata = {}
    for _ in range(metadata_count):
        key = string()
        value_type = take("<I")
        metadata[key] = (value_type, value(value_type))
    infos = []
    for _ in range(tensor_count):
        name = string()
        dims = [take("<Q") for _ in range(take("<I"))]
        tensor_type = take("<I")
        offset = take("<Q")
        infos.append((name, dims, tensor_type, offset))
    alignment = metadata["general.alignment"][1]
    data_start = pos + (-pos) % alignment
    tensors = {}
    for name, dims, tensor_type, offset in infos:
        assert offset % alignment == 0, (name, offset)
        dtype = {0: "<f4", 1: "<f2"}[tensor_type]
        count = int(np.prod(dims))
        array = np.frombuffer(data, dtype=dtype, count=count, offset=data_start + offset)
        tensors[name] = (dims, tensor_type, offset, array.reshape(dims[::-1]))
    return {"version": version, "metadata": metadata, "tensors": tensors,
            "data_start": data_start, "size": len(data)}


def parse_file(path):
    with open(path, "rb") as f:
        return parse(f.read())
