"""`make run`'s embedded default (common/config/default.yaml) end to end: the real slm-gateway
without --config, the shipped models, called by Python grpcio.

Every route is reachable: sentiment and entities by task; banking and general generation by the
CLINC150 router classifiers (no task); out-of-scope requests fall back to general-large; a
low-confidence generation on the general route escalates to general-large (cascade). Each call's
ServedBy is checked, and /metrics counters move by exactly the calls made. Expected labels and
routes are those of the model cards' examples (what the specialists answer and how CLINC150's
domains map to routes in the default), not read back from the gateway.
"""
import os
import unittest

import harness
from slmgw.v1 import gateway_pb2, gateway_pb2_grpc, types_pb2

MODELS_DIR = os.environ.get("SLM_MODELS_DIR", "")
DEFAULT_MODELS = ["sentiment-sst2.gguf", "banking77-intent.gguf", "entities-wnut17.gguf",
                  "general-small.gguf", "general-large.gguf", "router-clinc150-ngram.gguf",
                  "router-clinc150-encoder.gguf"]


@unittest.skipUnless(MODELS_DIR and all(os.path.exists(os.path.join(MODELS_DIR, m))
                                        for m in DEFAULT_MODELS),
                     f"SLM_MODELS_DIR lacks one of {DEFAULT_MODELS}")
class DefaultConfigEndToEndTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.temporary_directory()
        cls.gateway = harness.Process("slm-gateway", [], cls.tmp.name).wait_ready()
        cls.channel = harness.channel(cls.gateway.address)
        cls.stub = gateway_pb2_grpc.GatewayServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code = cls.gateway.stop()
        cls.tmp.cleanup()
        assert code == 0, f"slm-gateway exited with {code}"

    def metric(self, name, **labels):
        return harness.metric_value(self.gateway.metrics(), name, **labels) or 0.0

    def test_specialists_by_task(self):
        before = self.metric("slmgw_router_decisions_total", route="sentiment", signal="task")
        response = self.stub.Classify(gateway_pb2.ClassifyRequest(
            text="a wonderful, moving and beautifully acted film",
            options=types_pb2.RequestOptions(task="sentiment")), timeout=10)
        self.assertEqual(response.labels[0].label, "positive")
        self.assertEqual((response.served_by.route, response.served_by.model),
                         ("sentiment", "sentiment"))
        self.assertEqual(self.metric("slmgw_router_decisions_total", route="sentiment",
                                     signal="task"), before + 1)
        text = "I met Barack Obama in Paris last week"
        response = self.stub.ExtractEntities(gateway_pb2.ExtractEntitiesRequest(
            text=text, options=types_pb2.RequestOptions(task="entities")), timeout=10)
        self.assertEqual(response.served_by.route, "entities")
        spans = {text[e.start:e.end] for e in response.entities}
        self.assertIn("Obama", " ".join(spans))  # a person, with its character span

    def test_untagged_banking_question_reaches_the_banking_specialist(self):
        text = "I lost my card, someone may have stolen it"
        before = self.metric("slmgw_router_decisions_total", route="banking")
        decision = self.stub.Route(gateway_pb2.RouteRequest(text=text), timeout=10).decision
        self.assertEqual(decision.route, "banking")
        self.assertEqual([s.name for s in decision.signals][0], "fast")
        response = self.stub.Classify(gateway_pb2.ClassifyRequest(text=text), timeout=10)
        self.assertEqual(response.labels[0].label, "lost_or_stolen_card")
        self.assertEqual(response.served_by.route, "banking")
        self.assertFalse(response.served_by.fell_back)
        # The dry run (Route) is not counted; the Classify call is, as decided by the fast tier.
        self.assertEqual(self.metric("slmgw_router_decisions_total", route="banking"), before + 1)

    def test_untagged_in_domain_request_goes_to_the_small_generator(self):
        text = "what is the weather like in Paris today"  # CLINC150 utility -> general
        decision = self.stub.Route(gateway_pb2.RouteRequest(text=text), timeout=10).decision
        self.assertEqual(decision.route, "general")
        # Streamed: a stream never escalates on confidence (only before its first token).
        messages = list(self.stub.GenerateStream(gateway_pb2.GenerateStreamRequest(
            prompt=text, sampling=types_pb2.SamplingParams(max_tokens=8)), timeout=20))
        served_by = messages[-1].served_by
        self.assertEqual((served_by.route, served_by.model), ("general", "general-small"))
        self.assertFalse(served_by.fell_back)
        self.assertEqual(served_by.usage.output_tokens, 8)
        self.assertTrue("".join(m.text_delta for m in messages))

    def test_out_of_scope_request_falls_back_to_the_large_model(self):
        text = "Tell me about the state of the Union and the Congress"
        before = self.metric("slmgw_router_decisions_total", route="general-large",
                             signal="out_of_domain")
        response = self.stub.Generate(gateway_pb2.GenerateRequest(
            prompt=text, sampling=types_pb2.SamplingParams(max_tokens=8)), timeout=20)
        self.assertEqual((response.served_by.route, response.served_by.model),
                         ("general-large", "general-large"))
        self.assertTrue(response.served_by.fell_back)
        self.assertEqual(response.served_by.fallback_reason, "out_of_domain")
        self.assertEqual(self.metric("slmgw_router_decisions_total", route="general-large",
                                     signal="out_of_domain"), before + 1)

    def test_low_confidence_generation_escalates_to_the_large_model(self):
        # Sampled at temperature 1.5, a ~100-perplexity model's tokens have probabilities far
        # below the route's cascade_threshold (0.1; greedy replies are ~0.15-0.3): the small
        # model's answer escalates. The router returns the more confident of the two answers.
        labels = dict(reason="low_confidence", source="general", target="general-large")
        before = self.metric("slmgw_router_fallbacks_total", **labels)
        escalations = self.metric("slmgw_router_cascade_escalations_total", route="general",
                                  operation="generate")
        response = self.stub.Generate(gateway_pb2.GenerateRequest(
            prompt="The Congress of the United States",
            options=types_pb2.RequestOptions(task="generate"),
            sampling=types_pb2.SamplingParams(max_tokens=16, temperature=1.5, seed=7)),
            timeout=20)
        self.assertTrue(response.text)
        self.assertEqual(self.metric("slmgw_router_fallbacks_total", **labels), before + 1)
        self.assertEqual(self.metric("slmgw_router_cascade_escalations_total", route="general",
                                     operation="generate"), escalations + 1)
        if response.served_by.route == "general-large":
            self.assertTrue(response.served_by.fell_back)
            self.assertEqual(response.served_by.fallback_reason, "low_confidence")
        else:
            self.assertEqual(response.served_by.model, "general-small")


if __name__ == "__main__":
    unittest.main()
