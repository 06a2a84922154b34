"""The shipped generative models (models/general-small.gguf, models/general-large.gguf, trained by
tools/train/train_generative.py) served by the real slm-worker, against independent references:

- tokenization: `slmctl tokenize` (our SPM tokenizer on the GGUF's embedded vocabulary) equals
  Debian's `spm_encode` with the SentencePiece model the vocabulary came from
  (models/general-spm2000.model), on text with digits, punctuation, runs of spaces and
  characters outside the vocabulary (byte fallback);
- greedy generation over gRPC equals tools/pyslm/llama.py's float64 reference on the weights read
  back from the GGUF (f32 in the worker), and each token's log-probability matches the reference's
  log-softmax.
"""
import json
import os
import shutil
import subprocess
import unittest

import torch

from pyslm import llama

import harness
from slmgw.v1 import types_pb2, worker_pb2, worker_pb2_grpc

MODELS_DIR = os.environ.get("SLM_MODELS_DIR", "")
MODELS = {"small": "general-small.gguf", "large": "general-large.gguf"}
SPM_MODEL = "general-spm2000.model"
PROMPTS = ["The state of the Union is", "Fellow citizens of the Senate and House",
           "A fortune cookie says"]
TOKENIZER_TEXTS = [
    "The Congress of the United States, in 1790, met in New York.",
    "Mr. Speaker, Mr. President: we have 42,000,000 new jobs!",
    "  two leading spaces,   three inner ones, and a tab\there",
    "Q: Why did the chicken cross the road? A: To get to the other side.",
    "Caf\u00e9 na\u00efve \u00fcber \u65e5\u672c\u8a9e \U0001f999 and \u201cquotes\u201d",
    "UNIX is user-friendly; it's just picky about who its friends are.",
]


def slmctl(args, stdin):
    result = subprocess.run([os.path.join(harness.BUILD_DIR, "slmctl")] + args, input=stdin,
                            capture_output=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"slmctl {args}: {result.stderr.decode()}")
    return result.stdout


def model_path(name):
    return os.path.join(MODELS_DIR, MODELS[name])


@unittest.skipUnless(MODELS_DIR and all(os.path.exists(model_path(n)) for n in MODELS),
                     "SLM_MODELS_DIR with general-small.gguf and general-large.gguf not set")
class GenerativeModelsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.temporary_directory()
        cls.workers, cls.channels, cls.stubs = {}, {}, {}
        for name in MODELS:  # slm-worker serves one model: one process each
            config_path = os.path.join(cls.tmp.name, f"{name}.yaml")
            with open(config_path, "w") as f:
                f.write(f"""workers:
  - name: {name}
    model_path: {model_path(name)}
    dtype: f32
    kv_dtype: f32
    max_batch_sequences: 2
    kv_cache_mb: 16
""")
            cls.workers[name] = harness.Process("slm-worker", ["--config", config_path],
                                                cls.tmp.name)
        for name, worker in cls.workers.items():
            worker.wait_ready()
            cls.channels[name] = harness.channel(worker.address)
            cls.stubs[name] = worker_pb2_grpc.WorkerServiceStub(cls.channels[name])

    @classmethod
    def tearDownClass(cls):
        codes = {}
        for name, worker in cls.workers.items():
            cls.channels[name].close()
            codes[name] = worker.stop()
        cls.tmp.cleanup()
        assert set(codes.values()) == {0}, f"slm-worker exit codes {codes}"

    def test_tokenizer_matches_spm_encode(self):
        spm_model = os.path.join(MODELS_DIR, SPM_MODEL)
        if not shutil.which("spm_encode") or not os.path.exists(spm_model):
            self.skipTest("spm_encode (Debian sentencepiece) or models/general-spm2000.model absent")
        for text in TOKENIZER_TEXTS:
            expected = subprocess.run(["spm_encode", f"--model={spm_model}", "--output_format=id"],
                                      input=text.encode() + b"\n", capture_output=True,
                                      check=True).stdout.split()
            for name in MODELS:
                ids = json.loads(slmctl(["tokenize", "--model", model_path(name)], text.encode()))
                self.assertEqual(ids, [int(t) for t in expected], f"{name}: {text!r}")
                back = slmctl(["detokenize", "--model", model_path(name)], json.dumps(ids).encode())
                self.assertEqual(back.decode(), text)

    def test_greedy_and_logprobs_match_pytorch_reference(self):
        for name in MODELS:
            config, state = llama.state_dict_from_gguf(model_path(name))
            reference = llama.DecoderLM(config, state)
            for prompt in PROMPTS:
                ids = json.loads(slmctl(["tokenize", "--model", model_path(name), "--add-special"],
                                        prompt.encode()))
                self.assertEqual(ids[0], 1)  # BOS, as in training
                expected = reference.greedy(ids, 24)
                if 2 in expected:  # the reply ends at </s>, which it includes
                    expected = expected[:expected.index(2) + 1]
                response = self.stubs[name].Generate(worker_pb2.WorkerServiceGenerateRequest(
                    prompt=prompt,
                    sampling=types_pb2.SamplingParams(max_tokens=24, return_logprobs=True)),
                    timeout=60)
                self.assertEqual(response.report.usage.input_tokens, len(ids))
                # The continuation keeps its leading space: decode prompt + reply, cut the prompt.
                text = slmctl(["detokenize", "--model", model_path(name)],
                              json.dumps(ids + [t for t in expected if t != 2]).encode()).decode()
                self.assertTrue(text.startswith(prompt), text)
                self.assertEqual(response.text, text[len(prompt):], f"{name}: {prompt!r}")
                self.assertEqual(len(response.token_logprobs), len(expected))
                with torch.no_grad():
                    logits = reference.forward_ids(ids + expected[:-1])
                logprobs = torch.log_softmax(logits, dim=-1)
                for i, token in enumerate(expected):
                    self.assertAlmostEqual(response.token_logprobs[i],
                                           float(logprobs[len(ids) - 1 + i, token]), delta=1e-3,
                                           msg=f"{name}: {prompt!r} token {i}")


if __name__ == "__main__":
    unittest.main()
