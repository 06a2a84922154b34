"""deploy/ validated offline: every Kustomize overlay renders (kubectl kustomize), passes the
Kubernetes schema (kubernetes-models) and typed field checks (kubernetes-types, tsc --strict),
yamllint, cross-checks between objects, and `slmctl validate-config` on every ConfigMap config;
the Dockerfiles are checked statically (tools/build-images.sh builds them for real; too slow
for CTest)."""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
KUSTOMIZE = os.path.join(REPO, "deploy", "kustomize")
OVERLAYS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(KUSTOMIZE, "overlays", "*")))
BUILD_DIR = os.environ.get("SLM_BUILD_DIR", os.path.join(REPO, "build"))
NPM = os.path.join(REPO, "tools", "npm", "node_modules")
KUBECTL = shutil.which("kubectl")


def render(path):
    out = subprocess.run([KUBECTL, "kustomize", path], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def cross_check(objects):
    """Problems between objects: selectors, probe ports, HPA/PDB targets, ConfigMap references,
    security settings. Returns a list of sentences."""
    problems = []
    by_kind = {}
    for o in objects:
        by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    deployments = by_kind.get("Deployment", {})
    configmaps = set(by_kind.get("ConfigMap", {}))

    def pods_matching(selector):
        return [d for d in deployments.values()
                if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v
                       for k, v in selector.items())]

    # Every object of ours carries the part-of label (the scrape configuration keeps pods by it);
    # each file sets it, since kubectl 1.20's Kustomize has no labels-without-selectors field.
    for o in objects:
        if o["kind"] != "Namespace" and o["metadata"].get("labels", {}).get(
                "app.kubernetes.io/part-of") != "slm-gateway":
            problems.append(f"{o['kind']}/{o['metadata']['name']}: no label "
                            "app.kubernetes.io/part-of: slm-gateway")
    for name, d in deployments.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        if labels.get("app.kubernetes.io/part-of") != "slm-gateway":
            problems.append(f"Deployment/{name}: pods lack app.kubernetes.io/part-of")
        for k, v in d["spec"]["selector"]["matchLabels"].items():
            if labels.get(k) != v:
                problems.append(f"Deployment/{name}: selector {k}={v} does not match its pods")
        spec = d["spec"]["template"]["spec"]
        pod_security = spec.get("securityContext", {})
        if pod_security.get("runAsNonRoot") is not True:
            problems.append(f"Deployment/{name}: pod securityContext.runAsNonRoot must be true")
        for volume in spec.get("volumes", []):
            ref = volume.get("configMap", {}).get("name")
            if ref and ref not in configmaps:
                problems.append(f"Deployment/{name}: volume {volume['name']} references missing "
                                f"ConfigMap {ref}")
        for c in spec["containers"]:
            where = f"Deployment/{name} container {c['name']}"
            ports = {p["containerPort"] for p in c.get("ports", [])}
            names = {p.get("name") for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                grpc = c.get(probe, {}).get("grpc")
                if not grpc:
                    problems.append(f"{where}: {probe} must be a gRPC (grpc.health.v1) probe")
                elif grpc["port"] not in ports:
                    problems.append(f"{where}: {probe} port {grpc['port']} is not a container "
                                    "port")
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False or \
                    sc.get("readOnlyRootFilesystem") is not True or \
                    sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: securityContext must set allowPrivilegeEscalation: "
                                "false, readOnlyRootFilesystem: true, capabilities.drop: [ALL]")
            resources = c.get("resources", {})
            if not resources.get("requests", {}).get("cpu") or \
                    not resources.get("limits", {}).get("memory"):
                problems.append(f"{where}: needs a CPU request and a memory limit")
            annotations = d["spec"]["template"]["metadata"].get("annotations", {})
            port = annotations.get("prometheus.io/port")
            if port is None or int(port) not in ports:
                problems.append(f"{where}: prometheus.io/port {port} is not a container port")
            for mount in c.get("volumeMounts", []):
                if mount["name"] not in {v["name"] for v in spec.get("volumes", [])}:
                    problems.append(f"{where}: mount {mount['name']} has no volume")
            if "grpc" not in names:
                problems.append(f"{where}: no port named grpc")
    for name, s in by_kind.get("Service", {}).items():
        matched = pods_matching(s["spec"]["selector"])
        if not matched:
            problems.append(f"Service/{name}: selector {s['spec']['selector']} matches no "
                            "Deployment's pods")
        for p in s["spec"]["ports"]:
            target = p.get("targetPort", p["port"])
            for d in matched:
                c_ports = [cp for c in d["spec"]["template"]["spec"]["containers"]
                           for cp in c.get("ports", [])]
                if not any(target in (cp.get("name"), cp["containerPort"]) for cp in c_ports):
                    problems.append(f"Service/{name}: targetPort {target} is not a port of "
                                    f"Deployment/{d['metadata']['name']}")
    for name, h in by_kind.get("HorizontalPodAutoscaler", {}).items():
        ref = h["spec"]["scaleTargetRef"]
        if ref["kind"] != "Deployment" or ref["name"] not in deployments:
            problems.append(f"HorizontalPodAutoscaler/{name}: target {ref} does not exist")
        if h["spec"]["minReplicas"] > h["spec"]["maxReplicas"]:
            problems.append(f"HorizontalPodAutoscaler/{name}: minReplicas > maxReplicas")
    for name, p in by_kind.get("PodDisruptionBudget", {}).items():
        if not pods_matching(p["spec"]["selector"]["matchLabels"]):
            problems.append(f"PodDisruptionBudget/{name}: selector matches no pods")
    # The router reaches each pool through a headless Service of this namespace.
    for cm in by_kind.get("ConfigMap", {}).values():
        for text in cm.get("data", {}).values():
            for host in re.findall(r"dns:///([a-z0-9.-]+):(\d+)", text):
                service = by_kind.get("Service", {}).get(host[0].split(".")[0])
                if service is None:
                    problems.append(f"ConfigMap/{cm['metadata']['name']}: {host[0]} names no "
                                    "Service")
                elif service["spec"].get("clusterIP") != "None":
                    problems.append(f"Service/{host[0]}: must be headless (clusterIP: None)")
                elif int(host[1]) not in {p["port"] for p in service["spec"]["ports"]}:
                    problems.append(f"ConfigMap: {host[0]}:{host[1]}: no such Service port")
                if "." in host[0] and cm["metadata"].get("namespace") and \
                        host[0].split(".")[1] != cm["metadata"]["namespace"]:
                    problems.append(f"ConfigMap/{cm['metadata']['name']}: {host[0]} is in "
                                    f"another namespace than {cm['metadata']['namespace']}")
    return problems


@unittest.skipUnless(KUBECTL, "kubectl is not installed: Kustomize overlays cannot be rendered")
class KustomizeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rendered = {name: render(os.path.join(KUSTOMIZE, "overlays", name))
                        for name in OVERLAYS}
        cls.rendered["base"] = render(os.path.join(KUSTOMIZE, "base"))

    def test_overlays_exist_and_render_every_kind(self):
        self.assertEqual(OVERLAYS, ["dev", "prod"])
        for name, objects in self.rendered.items():
            kinds = {o["kind"] for o in objects}
            self.assertTrue({"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler",
                             "PodDisruptionBudget"} <= kinds, f"{name}: {kinds}")

    def test_cross_checks(self):
        for name, objects in self.rendered.items():
            self.assertEqual(cross_check(objects), [], name)

    def test_cross_checks_catch_broken_manifests(self):
        objects = json.loads(json.dumps(self.rendered["prod"]))
        deployment = next(o for o in objects if o["kind"] == "Deployment"
                          and o["metadata"]["name"] == "slm-worker-sentiment")
        deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"][
            "port"] = 1234
        deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"][
            "readOnlyRootFilesystem"] = False
        deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] = "gone"
        hpa = next(o for o in objects if o["kind"] == "HorizontalPodAutoscaler")
        hpa["spec"]["scaleTargetRef"]["name"] = "nothing"
        service = next(o for o in objects if o["kind"] == "Service"
                       and o["metadata"]["name"] == "slm-worker-sentiment")
        service["spec"]["clusterIP"] = "10.0.0.1"
        del service["metadata"]["labels"]["app.kubernetes.io/part-of"]
        problems = "\n".join(cross_check(objects))
        for needle in ["readinessProbe port 1234", "readOnlyRootFilesystem",
                       "references missing ConfigMap gone", "target", "must be headless",
                       "Service/slm-worker-sentiment: no label app.kubernetes.io/part-of"]:
            self.assertIn(needle, problems)

    @unittest.skipUnless(shutil.which("node") and os.path.isdir(os.path.join(NPM, "typescript")),
                         "node or the npm packages are missing (tools/install-deps.sh)")
    def test_schema_and_typed_fields(self):
        script = os.path.join(os.path.dirname(__file__), "validate_manifests.js")
        with tempfile.TemporaryDirectory() as tmp:
            for name, objects in self.rendered.items():
                path = os.path.join(tmp, f"{name}.json")
                with open(path, "w") as f:
                    json.dump(objects, f)
                out = subprocess.run(["node", script, path, os.path.join(tmp, name)],
                                     capture_output=True, text=True, timeout=180)
                self.assertEqual(out.returncode, 0, f"{name}:\n{out.stdout}{out.stderr}")
            # The validators catch a misspelled field and a wrong type.
            bad = json.loads(json.dumps(self.rendered["dev"]))
            deployment = next(o for o in bad if o["kind"] == "Deployment")
            deployment["spec"]["replicas"] = "two"
            deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
            path = os.path.join(tmp, "bad.json")
            with open(path, "w") as f:
                json.dump(bad, f)
            out = subprocess.run(["node", script, path, os.path.join(tmp, "bad")],
                                 capture_output=True, text=True, timeout=180)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("replicas must be integer", out.stdout)
            self.assertIn("livenesProbe", out.stdout)

    def test_configmap_configs_pass_slmctl_validate_config(self):
        slmctl = os.path.join(BUILD_DIR, "slmctl")
        if not os.path.exists(slmctl):
            self.skipTest(f"{slmctl} is not built")
        roles = {"router.yaml": "router", "worker.yaml": "worker"}
        checked = 0
        with tempfile.TemporaryDirectory() as tmp:
            for name, objects in self.rendered.items():
                for cm in (o for o in objects if o["kind"] == "ConfigMap"):
                    for key, text in cm["data"].items():
                        path = os.path.join(tmp, f"{name}-{cm['metadata']['name']}-{key}")
                        with open(path, "w") as f:
                            f.write(text)
                        out = subprocess.run([slmctl, "validate-config", "--role", roles[key],
                                              path], capture_output=True, text=True, timeout=60)
                        self.assertEqual(out.returncode, 0, f"{name} {key}: {out.stdout}"
                                         f"{out.stderr}")
                        checked += 1
            self.assertGreaterEqual(checked, 6)
            # And the check is real: a typo is refused.
            path = os.path.join(tmp, "bad.yaml")
            with open(path, "w") as f:
                router = next(o for o in self.rendered["prod"] if o["kind"] == "ConfigMap"
                              and "router.yaml" in o.get("data", {}))
                f.write(router["data"]["router.yaml"] + "\nroutes_typo: 1\n")
            out = subprocess.run([slmctl, "validate-config", "--role", "router", path],
                                 capture_output=True, text=True, timeout=60)
            self.assertNotEqual(out.returncode, 0)


# The kustomization fields Debian 12's kubectl 1.20 (Kustomize v2.0.3) reads; current kubectl
# reads them too (some with a deprecation warning) and renders the same objects.
KUSTOMIZE_V2_FIELDS = {
    "apiVersion", "kind", "namespace", "namePrefix", "nameSuffix", "commonLabels",
    "commonAnnotations", "resources", "bases", "images", "configMapGenerator", "secretGenerator",
    "generatorOptions", "patchesJson6902", "patchesStrategicMerge", "vars", "crds"}


def kustomization_problems(directory, doc):
    """What in one kustomization kubectl 1.20 cannot read. Returns a list of sentences."""
    problems = [f"{directory}: field {k} (kubectl 1.20 cannot read it)"
                for k in sorted(set(doc) - KUSTOMIZE_V2_FIELDS)]
    for resource in doc.get("resources", []):
        if os.path.isdir(os.path.join(directory, resource)):
            problems.append(f"{directory}: resources entry {resource} is a folder (list it "
                            "under bases)")
    for patch in doc.get("patchesJson6902", []):
        target = patch.get("target", {})
        if "path" not in patch or not {"version", "kind", "name"} <= set(target):
            problems.append(f"{directory}: patchesJson6902 entries need path and target "
                            "version, kind, name")
    return problems


class StaticTest(unittest.TestCase):
    def test_kustomizations_are_readable_by_kubectl_1_20(self):
        paths = glob.glob(os.path.join(KUSTOMIZE, "**", "kustomization.yaml"), recursive=True)
        self.assertGreaterEqual(len(paths), 5)
        problems = []
        for path in paths:
            with open(path) as f:
                problems += kustomization_problems(os.path.dirname(path), yaml.safe_load(f))
        self.assertEqual(problems, [], "\n".join(problems))
        # The check itself: the newer syntax is reported.
        newer = {"resources": ["../../base"], "labels": [{"pairs": {"a": "b"}}],
                 "patches": [{"target": {"kind": "Deployment"}, "patch": "[]"}],
                 "patchesJson6902": [{"target": {"kind": "Deployment"}, "patch": "[]"}]}
        found = "\n".join(kustomization_problems(os.path.join(KUSTOMIZE, "overlays", "dev"),
                                                  newer))
        for needle in ["field labels", "field patches", "../../base is a folder",
                       "need path and target"]:
            self.assertIn(needle, found)

    def test_yamllint(self):
        if not shutil.which("yamllint"):
            self.skipTest("yamllint is not installed (tools/install-deps.sh installs it)")
        out = subprocess.run(["yamllint", "-c", os.path.join(os.path.dirname(__file__),
                                                             "yamllint.yml"),
                              os.path.join(REPO, "deploy"),
                              os.path.join(REPO, "monitoring", "prometheus"),
                              os.path.join(REPO, "monitoring", "prometheus-adapter")],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_dockerfiles(self):
        targets = set()
        for cmake in glob.glob(os.path.join(REPO, "**", "CMakeLists.txt"), recursive=True):
            if "/build" in cmake[len(REPO):] or "node_modules" in cmake:
                continue
            with open(cmake) as f:
                targets |= set(re.findall(r"add_executable\(([\w-]+)", f.read()))
        dockerfiles = sorted(glob.glob(os.path.join(REPO, "deploy", "docker", "*.Dockerfile")))
        self.assertEqual([os.path.basename(p) for p in dockerfiles],
                         ["router.Dockerfile", "worker.Dockerfile"])
        for path in dockerfiles:
            problems = check_dockerfile(path, targets)
            self.assertEqual(problems, [], "\n".join(problems))

    def test_dockerfile_checker_catches_mistakes(self):
        with tempfile.NamedTemporaryFile("w", suffix=".Dockerfile", delete=False) as f:
            f.write("FROM ubuntu:22.04\nCOPY no/such/file /x\n"
                    "RUN cmake --build build --target slm-nothing\n")
        try:
            problems = "\n".join(check_dockerfile(f.name, {"slm-router"}))
        finally:
            os.unlink(f.name)
        for needle in ["debian:12", "no/such/file", "slm-nothing", "multi-stage", "USER",
                       "install-deps.sh"]:
            self.assertIn(needle, problems)


def check_dockerfile(path, cmake_targets):
    """Static checks: Debian 12 stages, multi-stage, install-deps.sh and the CMake build, COPY
    sources that exist, built targets that exist, a final non-root USER."""
    with open(path) as f:
        text = f.read().replace("\\\n", " ")
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    name = os.path.basename(path)
    problems = []
    froms = [l.split()[1] for l in lines if l.upper().startswith("FROM ")]
    if any(not re.fullmatch(r"debian:12(-slim)?", image) for image in froms):
        problems.append(f"{name}: every stage must be FROM debian:12 or debian:12-slim: {froms}")
    if len(froms) < 2:
        problems.append(f"{name}: must be multi-stage (build, runtime)")
    if "tools/install-deps.sh" not in text:
        problems.append(f"{name}: must install with tools/install-deps.sh like make")
    if "cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release" not in text:
        problems.append(f"{name}: must configure like the Makefile (cmake -S . -B build -G Ninja "
                        "-DCMAKE_BUILD_TYPE=Release)")
    for target in re.findall(r"--target ([\w\- ]+)", text):
        for t in target.split():
            if t not in cmake_targets:
                problems.append(f"{name}: --target {t} is not an add_executable in CMake")
    for line in lines:
        if line.upper().startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                if source != "." and not os.path.exists(os.path.join(REPO, source)):
                    problems.append(f"{name}: COPY source {source} does not exist")
    users = [l.split()[1] for l in lines if l.upper().startswith("USER ")]
    last_from = max((i for i, l in enumerate(lines) if l.upper().startswith("FROM ")), default=0)
    final_users = [l.split()[1] for l in lines[last_from:] if l.upper().startswith("USER ")]
    if not final_users or final_users[-1].split(":")[0] in ("0", "root"):
        problems.append(f"{name}: the final stage must switch to a non-root USER ({users})")
    return problems


if __name__ == "__main__":
    unittest.main()
