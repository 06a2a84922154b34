"""Generation end to end: slm-worker serving a tiny random llama GGUF (made with tools/pyslm, no
downloads), called over gRPC by Python grpcio.

- greedy output over gRPC equals the PyTorch reference's greedy tokens (f32 weights and cache);
- streaming concatenation equals the unary output, with one log-probability per token that
  matches the reference's log-softmax;
- a client that disconnects mid-stream frees its sequence (the KV-use gauge returns to 0);
- bad sampling parameters are INVALID_ARGUMENT naming the field; `slm-worker --model` serves a
  GGUF without a configuration file.
The vocabulary is single characters, so the prompt's token ids are known without a tokenizer,
and it has no end-of-generation token, so every generation runs to max_tokens.
"""
import os
import subprocess
import time
import unittest

import grpc
import torch

from pyslm import llama
from pyslm.gguf_writer import GGUFWriter

import harness
from slmgw.v1 import types_pb2, worker_pb2, worker_pb2_grpc

LETTERS = "abcdefghijklmnopqrstuvwxyz"
# <unk> (unknown), <s> (control, BOS), then "▁", letters and a few words.
TOKENS = ["<unk>", "<s>", "\u2581"] + list(LETTERS) + ["\u2581w%d" % i for i in range(35)]
TYPES = [2, 3] + [1] * (len(TOKENS) - 2)
CONTEXT = 4096


class _NoEosWriter(GGUFWriter):
    """Drops tokenizer.ggml.eos_token_id so nothing ends generation early."""

    def add_u32(self, key, value):
        if key != "tokenizer.ggml.eos_token_id":
            super().add_u32(key, value)


def write_tiny_llama(path, seed=3):
    config = llama.DecoderConfig(architecture="llama", vocab_size=len(TOKENS), hidden_size=64,
                                 num_layers=2, num_heads=4, num_kv_heads=2, ffn_size=128,
                                 context_length=CONTEXT)
    state = llama.random_state_dict(config, seed=seed)
    original = llama.GGUFWriter
    llama.GGUFWriter = _NoEosWriter
    try:
        llama.to_gguf(config, state, path, weight_type="f32", name="tiny-llama", tokens=TOKENS,
                      token_types=TYPES)
    finally:
        llama.GGUFWriter = original
    return llama.DecoderLM(config, state)


def prompt_ids(text):
    """SentencePiece with single-character pieces: BOS, then "▁" for each space and the prefix."""
    ids = [1]
    for c in " " + text:
        ids.append(TOKENS.index("\u2581" if c == " " else c))
    return ids


def detokenize(ids):
    """The worker's streaming decode: "▁" is a space; special tokens give nothing, and the first
    text piece after one loses its leading space (SentencePiece's add_space_prefix)."""
    out = []
    after_special = False
    for i in ids:
        if TYPES[i] != 1:
            after_special = True
            continue
        piece = TOKENS[i].replace("\u2581", " ")
        if after_special and piece.startswith(" "):
            piece = piece[1:]
        after_special = False
        out.append(piece)
    return "".join(out)


class GenerationEndToEndTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.temporary_directory()
        cls.model_path = os.path.join(cls.tmp.name, "tiny-llama.gguf")
        cls.model = write_tiny_llama(cls.model_path)
        config_path = os.path.join(cls.tmp.name, "worker.yaml")
        with open(config_path, "w") as f:
            f.write(f"""workers:
  - name: tiny
    model_path: {cls.model_path}
    dtype: f32
    kv_dtype: f32
    max_batch_sequences: 4
    kv_cache_mb: 64
""")
        cls.worker = harness.Process("slm-worker", ["--config", config_path], cls.tmp.name)
        cls.worker.wait_ready()
        cls.channel = harness.channel(cls.worker.address)
        cls.stub = worker_pb2_grpc.WorkerServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code = cls.worker.stop()
        cls.tmp.cleanup()
        assert code == 0, f"slm-worker exited with {code}"

    def generate(self, prompt, timeout_s=60, **sampling):
        return self.stub.Generate(worker_pb2.WorkerServiceGenerateRequest(
            prompt=prompt, sampling=types_pb2.SamplingParams(**sampling)), timeout=timeout_s)

    def test_greedy_matches_pytorch_reference(self):
        for prompt in ["hello world", "abc", "the quick brown fox"]:
            ids = prompt_ids(prompt)
            expected = self.model.greedy(ids, 32)
            response = self.generate(prompt, max_tokens=32)
            self.assertEqual(response.report.usage.input_tokens, len(ids), prompt)
            self.assertEqual(response.report.usage.output_tokens, 32)
            self.assertEqual(response.finish_reason, "length")
            self.assertEqual(response.text, detokenize(expected), f"prompt {prompt!r}")

    def test_stream_concatenation_equals_unary_and_logprobs_match(self):
        prompt = "hello world"
        unary = self.generate(prompt, max_tokens=20, return_logprobs=True)
        stream = self.stub.GenerateStream(worker_pb2.WorkerServiceGenerateStreamRequest(
            prompt=prompt, sampling=types_pb2.SamplingParams(max_tokens=20,
                                                            return_logprobs=True)), timeout=60)
        messages = list(stream)
        self.assertGreaterEqual(len(messages), 1)
        self.assertEqual("".join(m.text_delta for m in messages), unary.text)
        self.assertEqual(messages[-1].finish_reason, "length")
        self.assertTrue(all(not m.finish_reason for m in messages[:-1]))
        self.assertEqual(messages[-1].report.usage.output_tokens, 20)
        streamed_logprobs = [p for m in messages for p in m.token_logprobs]
        self.assertEqual(len(streamed_logprobs), 20)
        self.assertEqual(len(unary.token_logprobs), 20)
        ids = prompt_ids(prompt)
        generated = self.model.greedy(ids, 20)
        with torch.no_grad():
            logits = self.model.forward_ids(ids + generated[:-1])
        reference = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1)
        for i, token in enumerate(generated):
            want = float(reference[len(ids) - 1 + i, token])
            self.assertAlmostEqual(unary.token_logprobs[i], want, delta=1e-3, msg=f"token {i}")
            self.assertAlmostEqual(streamed_logprobs[i], want, delta=1e-3, msg=f"token {i}")

    def test_seeded_sampling_is_reproducible(self):
        a = self.generate("abc", max_tokens=24, temperature=1.0, top_p=0.9, seed=11)
        b = self.generate("abc", max_tokens=24, temperature=1.0, top_p=0.9, seed=11)
        c = self.generate("abc", max_tokens=24, temperature=1.0, top_p=0.9, seed=12)
        self.assertEqual(a.text, b.text)
        self.assertNotEqual(a.text, c.text)

    def test_client_disconnect_frees_the_sequence(self):
        stream = self.stub.GenerateStream(worker_pb2.WorkerServiceGenerateStreamRequest(
            prompt="abc", sampling=types_pb2.SamplingParams(max_tokens=CONTEXT - 10)),
            timeout=60)
        first = next(stream)
        self.assertFalse(first.finish_reason)
        stream.cancel()
        load = self.wait_for_empty_cache()
        self.assertEqual(load.kv_cache_used_bytes, 0)
        self.assertGreater(load.kv_cache_budget_bytes, 0)
        metrics = self.worker.metrics()
        self.assertEqual(harness.metric_value(metrics, "slmgw_worker_kv_cache_used_bytes",
                                              model="tiny"), 0)
        self.assertEqual(harness.metric_value(metrics, "slmgw_worker_active_sequences",
                                              model="tiny"), 0)
        self.assertGreaterEqual(harness.metric_value(
            metrics, "slmgw_worker_requests_total", model="tiny", operation="generate_stream",
            outcome="cancelled"), 1)
        self.assertGreater(harness.metric_value(
            metrics, "slmgw_worker_time_to_first_token_seconds_count", model="tiny"), 0)

    def wait_for_empty_cache(self):
        deadline = time.monotonic() + 20  # bounded wait; no timing is asserted
        while time.monotonic() < deadline:
            load = self.stub.GetLoad(worker_pb2.GetLoadRequest(), timeout=5).load
            if load.kv_cache_used_bytes == 0 and load.in_flight == 0:
                break
            time.sleep(0.05)
        return load

    def stopped_requests(self):
        metrics = self.worker.metrics()
        return sum(harness.metric_value(metrics, "slmgw_worker_requests_total", model="tiny",
                                        operation="generate", outcome=outcome) or 0
                   for outcome in ("cancelled", "deadline_exceeded"))

    def test_deadline_stops_generation_and_frees_the_cache(self):
        # A whole generation of CONTEXT - 10 tokens takes seconds; each deadline below ends it
        # early. On a loaded machine a 30 ms deadline can pass before the worker's handler sees
        # the call (then nothing was started), so longer deadlines are tried in turn (bounded).
        before = self.stopped_requests()
        stopped = before
        for deadline_s in (0.03, 0.1, 0.3):
            with self.assertRaises(grpc.RpcError) as caught:
                self.generate("abc", max_tokens=CONTEXT - 10, timeout_s=deadline_s)
            self.assertEqual(caught.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
            self.assertEqual(self.wait_for_empty_cache().kv_cache_used_bytes, 0)
            # The outcome is counted when the executor drops the sequence: poll briefly.
            wait_until = time.monotonic() + 5
            while stopped == before and time.monotonic() < wait_until:
                time.sleep(0.05)
                stopped = self.stopped_requests()
            if stopped > before:
                break
        # The worker stopped early (it never produced the whole generation) and counted it.
        self.assertGreaterEqual(stopped - before, 1)

    def test_bad_requests_are_invalid_argument_naming_the_field(self):
        cases = [({"temperature": -1}, "sampling.temperature"), ({"top_p": 1.5}, "sampling.top_p"),
                 ({"min_p": 2}, "sampling.min_p"),
                 ({"repetition_penalty": -2}, "sampling.repetition_penalty")]
        for sampling, field in cases:
            with self.assertRaises(grpc.RpcError) as caught:
                self.generate("abc", **sampling)
            self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn(field, caught.exception.details())
        with self.assertRaises(grpc.RpcError) as caught:
            self.generate("")
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(grpc.RpcError) as caught:
            self.generate("a" * (CONTEXT + 5), max_tokens=1)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("tokens exceed", caught.exception.details())
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.Classify(worker_pb2.WorkerServiceClassifyRequest(text="abc"), timeout=10)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        info = self.stub.DescribeModel(worker_pb2.DescribeModelRequest(), timeout=10).model
        self.assertEqual(info.task, "text_generation")

    def test_slmctl_generate_streams_from_a_worker(self):
        result = subprocess.run(
            [os.path.join(harness.BUILD_DIR, "slmctl"), "generate", "--worker", "--target",
             self.worker.address, "--max_tokens", "12", "hello world"],
            capture_output=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        expected = detokenize(self.model.greedy(prompt_ids("hello world"), 12))
        self.assertEqual(result.stdout.decode(), expected + "\n")
        self.assertIn("finish=length", result.stderr.decode())
        self.assertIn("tokens_out=12", result.stderr.decode())
        result = subprocess.run(
            [os.path.join(harness.BUILD_DIR, "slmctl"), "generate", "--worker", "--target",
             self.worker.address, "--top_p", "3", "hello"], capture_output=True, timeout=60)
        self.assertEqual(result.returncode, 1)
        self.assertIn("INVALID_ARGUMENT", result.stderr.decode())

    def test_chat_messages_use_the_template_and_bad_roles_are_refused(self):
        messages = [types_pb2.ChatMessage(role="system", content="be brief"),
                    types_pb2.ChatMessage(role="user", content="hello")]
        response = self.stub.Generate(worker_pb2.WorkerServiceGenerateRequest(
            messages=messages, sampling=types_pb2.SamplingParams(max_tokens=6)), timeout=60)
        self.assertEqual(response.report.usage.output_tokens, 6)
        # The template (llama2, from general.architecture) wraps the contents: the raw prompt has
        # fewer tokens, and two more letters of system text are exactly two more tokens.
        self.assertGreater(response.report.usage.input_tokens, len(prompt_ids("hello")))
        longer = self.stub.Generate(worker_pb2.WorkerServiceGenerateRequest(
            messages=[types_pb2.ChatMessage(role="system", content="be briefer"), messages[1]],
            sampling=types_pb2.SamplingParams(max_tokens=1)), timeout=60)
        self.assertEqual(longer.report.usage.input_tokens, response.report.usage.input_tokens + 2)
        for request, fragment in [
                (worker_pb2.WorkerServiceGenerateRequest(
                    messages=[types_pb2.ChatMessage(role="robot", content="x")]), "robot"),
                (worker_pb2.WorkerServiceGenerateRequest(prompt="abc", messages=messages),
                 "not both")]:
            with self.assertRaises(grpc.RpcError) as caught:
                self.stub.Generate(request, timeout=10)
            self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn(fragment, caught.exception.details())

    def test_single_model_flag_serves_without_config(self):
        worker = harness.Process("slm-worker", ["--model", self.model_path, "--dtype", "f32"],
                                 self.tmp.name)
        try:
            worker.wait_ready()
            with harness.channel(worker.address) as ch:
                stub = worker_pb2_grpc.WorkerServiceStub(ch)
                response = stub.Generate(worker_pb2.WorkerServiceGenerateRequest(
                    prompt="abc", sampling=types_pb2.SamplingParams(max_tokens=5)), timeout=60)
                self.assertEqual(response.report.usage.output_tokens, 5)
                self.assertEqual(response.report.model, "tiny-llama")
        finally:
            self.assertEqual(worker.stop(), 0)


if __name__ == "__main__":
    unittest.main()
