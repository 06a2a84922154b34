"""A Node.js @grpc/grpc-js client against a real slm-gateway (the API from a second runtime)."""
import json
import os
import subprocess
import textwrap
import unittest

import harness
from pyslm import bert

NODE_MODULES = os.path.join(os.path.dirname(__file__), "../../tools/npm/node_modules/@grpc")


@unittest.skipUnless(os.path.isdir(NODE_MODULES), "tools/npm not installed (make deps)")
class NodeClientTest(unittest.TestCase):
    def test_classify_route_and_errors_from_node(self):
        with harness.temporary_directory() as d:
            model, tokens = harness.write_model(f"{d}/tiny.gguf", bert.TEXT_CLASSIFICATION,
                                                ["negative", "positive"])
            config = f"{d}/gateway.yaml"
            with open(config, "w") as f:
                f.write(textwrap.dedent(f"""\
                    workers:
                      - name: sentiment
                        model_path: {d}/tiny.gguf
                    pools:
                      - name: sentiment
                        endpoints: ["inprocess:sentiment"]
                    routes:
                      - name: sentiment
                        tasks: [sentiment]
                        pool: sentiment
                    """))
            gateway = harness.Process("slm-gateway", ["--config", config], d).wait_ready()
            try:
                text = "a great film"
                result = subprocess.run(
                    ["node", os.path.join(os.path.dirname(__file__), "node_client.js"),
                     gateway.address, text], capture_output=True, text=True, timeout=60)
                self.assertEqual(result.returncode, 0, result.stderr)
                output = json.loads(result.stdout)
            finally:
                self.assertEqual(gateway.stop(), 0)
        classify = output["classify"]["response"]
        expected = harness.reference_probabilities(model, tokens, text)
        scores = {label["label"]: label["score"] for label in classify["labels"]}
        self.assertAlmostEqual(scores["negative"], expected[0], delta=1e-4)
        self.assertAlmostEqual(scores["positive"], expected[1], delta=1e-4)
        self.assertEqual(classify["served_by"]["route"], "sentiment")
        self.assertEqual(output["route"]["response"]["decision"]["route"], "sentiment")
        self.assertEqual(output["unknown"]["code"], 5)  # NOT_FOUND
        self.assertIn("no-such-task", output["unknown"]["details"])


if __name__ == "__main__":
    unittest.main()
