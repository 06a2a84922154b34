"""Starts slm-gateway, slm-router and slm-worker on ephemeral loopback ports for tests.

Each process gets --listen 127.0.0.1:0 --metrics_listen 127.0.0.1:0 --ready_file, and the
harness reads the ports it bound from the ready file. Models are tiny random BERTs made with
tools/pyslm, so these tests need nothing from ../shared.
"""
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request

import grpc
import torch

from pyslm import bert

BUILD_DIR = os.environ.get("SLM_BUILD_DIR", os.path.join(os.path.dirname(__file__),
                                                          "../../build"))

WORDS = ["the", "a", "movie", "film", "was", "great", "terrible", "good", "bad", "ada",
         "lovelace", "visited", "london", "paris", "in", "and", "is", "not", "very", "plot"]
ENTITY_LABELS = ["O", "B-person", "I-person", "B-location", "I-location"]


def tiny_vocabulary():
    """A small WordPiece vocabulary in llama.cpp's phantom-space convention."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += ["\u2581" + w for w in WORDS]
    letters = "abcdefghijklmnopqrstuvwxyz0123456789.,!?'"
    tokens += ["\u2581" + c for c in letters] + list(letters)
    return tokens


def write_model(path, task, labels, layers=2, hidden=32, heads=2, ffn=64, context=128, seed=1):
    tokens = tiny_vocabulary()
    config = bert.BertConfig(vocab_size=len(tokens), num_labels=len(labels), hidden_size=hidden,
                             num_layers=layers, num_heads=heads, ffn_size=ffn,
                             context_length=context, task=task)
    model = bert.random_model(config, seed)
    bert.to_gguf(model, tokens, labels, path, name=os.path.basename(path).split(".")[0])
    return model, tokens


class Process:
    """A server binary running with a ready file; stop() sends SIGTERM and returns the code."""

    def __init__(self, binary, args, workdir):
        self.ready_file = os.path.join(workdir, f"{binary}-{time.monotonic_ns()}.ready")
        self.log_path = self.ready_file + ".log"
        self.log = open(self.log_path, "wb")
        command = [os.path.join(BUILD_DIR, binary), "--listen", "127.0.0.1:0",
                   "--metrics_listen", "127.0.0.1:0", "--ready_file", self.ready_file] + args
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        self.grpc_port = None
        self.metrics_port = None

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.ready_file):
                with open(self.ready_file) as f:
                    ports = json.load(f)
                self.grpc_port = ports["grpc_port"]
                self.metrics_port = ports["metrics_port"]
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"exited with {self.process.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise RuntimeError(f"not ready after {timeout}s:\n{self.output()}")

    @property
    def address(self):
        return f"127.0.0.1:{self.grpc_port}"

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def metrics(self):
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.log.close()


def run_to_exit(binary, args, timeout=60):
    """Runs a binary that should exit by itself; returns (code, combined output)."""
    result = subprocess.run([os.path.join(BUILD_DIR, binary)] + args, capture_output=True,
                            timeout=timeout)
    return result.returncode, (result.stdout + result.stderr).decode("utf-8", "replace")


def metric_value(text, name, **labels):
    """Sums the samples of `name` whose labels include `labels` (Prometheus text format)."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        series = head[len(name):]
        if series and not series.startswith("{"):
            continue  # another metric sharing the prefix
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
            found = True
    return total if found else None


def channel(address):
    return grpc.insecure_channel(address)


def temporary_directory():
    return tempfile.TemporaryDirectory(prefix="slmgw-e2e-")


def reference_probabilities(model, tokens, text):
    """Softmax of the PyTorch reference for `text` tokenized with pyslm's WordPiece."""
    from pyslm import wordpiece
    ids = wordpiece.WordPieceTokenizer(tokens).encode(text)
    logits = model.forward_ids(ids)
    return torch.softmax(logits, dim=-1).tolist()
