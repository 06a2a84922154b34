"""Round trip: pyslm.gguf_writer output parsed back by an independent reader."""

import os
import tempfile
import unittest

import numpy as np

import gguf_test_reader
from pyslm import gguf_reader
from pyslm.gguf_writer import GGUFWriter


class GGUFWriterTest(unittest.TestCase):
    def write_sample(self, path):
        writer = GGUFWriter()
        writer.add_string("general.architecture", "bert")
        writer.add_string("general.name", "caf\u00e9 \u2581test")
        writer.add_u32("bert.block_count", 7)
        writer.add_i32("some.negative", -5)
        writer.add_f32("bert.attention.layer_norm_epsilon", 1e-12)
        writer.add_bool("flag", True)
        writer.add_string_array("slmgw.labels", ["negative", "positive", ""])
        writer.add_i32_array("tokenizer.ggml.token_type", [3, 1, 1, -1])
        writer.add_u32_array("some.u32s", [0, 4294967295])
        self.matrix = np.arange(3 * 5, dtype=np.float32).reshape(3, 5) / 7
        self.vector = np.array([1.5, -2.0, 3.25], dtype=np.float32)  # 12 bytes: forces padding
        self.half = np.linspace(-1, 1, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
        writer.add_tensor("odd.vector", self.vector)
        writer.add_tensor("matrix", self.matrix)
        writer.add_tensor("half", self.half, "f16")
        writer.write(path)

    def test_round_trip(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "sample.gguf")
            self.write_sample(path)
            parsed = gguf_test_reader.parse_file(path)
        self.assertEqual(parsed["version"], 3)
        metadata = parsed["metadata"]
        self.assertEqual(metadata["general.alignment"], (4, 32))
        self.assertEqual(metadata["general.architecture"], (8, "bert"))
        self.assertEqual(metadata["general.name"], (8, "caf\u00e9 \u2581test"))
        self.assertEqual(metadata["bert.block_count"], (4, 7))
        self.assertEqual(metadata["some.negative"], (5, -5))
        self.assertEqual(metadata["bert.attention.layer_norm_epsilon"][0], 6)
        self.assertAlmostEqual(metadata["bert.attention.layer_norm_epsilon"][1], 1e-12,
                               delta=1e-18)
        self.assertEqual(metadata["flag"], (7, True))
        self.assertEqual(metadata["slmgw.labels"], (9, (8, ["negative", "positive", ""])))
        self.assertEqual(metadata["tokenizer.ggml.token_type"], (9, (5, [3, 1, 1, -1])))
        self.assertEqual(metadata["some.u32s"], (9, (4, [0, 4294967295])))

        tensors = parsed["tensors"]
        self.assertEqual(list(tensors), ["odd.vector", "matrix", "half"])
        self.assertEqual(parsed["data_start"] % 32, 0)
        dims, tensor_type, _, array = tensors["matrix"]
        self.assertEqual((dims, tensor_type), ([5, 3], 0))  # GGUF dims are reversed
        np.testing.assert_array_equal(array, self.matrix)
        dims, tensor_type, offset, array = tensors["odd.vector"]
        self.assertEqual((dims, tensor_type, offset), ([3], 0, 0))
        np.testing.assert_array_equal(array, self.vector)
        self.assertEqual(tensors["matrix"][2], 32)  # 12 bytes padded up to 32
        dims, tensor_type, _, array = tensors["half"]
        self.assertEqual((dims, tensor_type), ([4, 3, 2], 1))
        np.testing.assert_allclose(array.astype(np.float32), self.half, rtol=1e-3, atol=1e-3)
        self.assertEqual(parsed["size"] % 32, 0)

    def test_pyslm_reader_agrees(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "sample.gguf")
            self.write_sample(path)
            parsed = gguf_reader.read_gguf(path)
        self.assertEqual(parsed.metadata["slmgw.labels"], ["negative", "positive", ""])
        self.assertEqual(parsed.metadata["bert.block_count"], 7)
        np.testing.assert_array_equal(parsed.tensors["matrix"], self.matrix)

    def test_rejects_duplicates_and_bad_dtype(self):
        writer = GGUFWriter()
        writer.add_u32("a", 1)
        with self.assertRaises(ValueError):
            writer.add_string("a", "again")
        writer.add_tensor("t", np.zeros(2))
        with self.assertRaises(ValueError):
            writer.add_tensor("t", np.zeros(2))
        with self.assertRaises(ValueError):
            writer.add_tensor("u", np.zeros(2), "q8_0")


if __name__ == "__main__":
    unittest.main()
