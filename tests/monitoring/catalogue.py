"""The metrics catalogue (docs/metrics.md) and Prometheus text exposition, parsed for tests.

parse_catalogue() reads the `## Catalogue` table (metric, type, labels, unit, source, meaning) and
the `## Ignored` table; parse_exposition() reads /metrics text; check_*() return a list of
problems, each a sentence naming the metric, so a test can report all of them at once.
"""
import os
import re

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
CATALOGUE_PATH = os.path.join(REPO, "docs", "metrics.md")

TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
SOURCES = {"router", "worker"}
MAX_SERIES_PER_FAMILY = 500
MAX_VALUES_PER_LABEL = 64
# Labels Prometheus adds to histogram and summary samples; not part of a family's label set.
STRUCTURAL_LABELS = {"le", "quantile"}
# Units a metric name may end in (base units) and suffixes that name a unit we do not allow.
NON_BASE_UNITS = ("_milliseconds", "_microseconds", "_ms", "_us", "_kilobytes", "_megabytes",
                  "_percent", "_minutes", "_hours")


def _cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _tables(text):
    """Yields (section heading, rows as lists of cells) for each markdown table."""
    section = ""
    rows = []
    for line in text.splitlines() + [""]:
        if line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("|"):
            rows.append(_cells(line))
            continue
        if rows:
            yield section, [r for r in rows[2:]]  # skip header and separator
            rows = []


def parse_catalogue(path=CATALOGUE_PATH):
    """Returns ({name: {"type", "labels" (frozenset), "source"}}, {ignored names}).

    Raises ValueError naming the row when a row is malformed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    metrics, ignored = {}, set()
    for section, rows in _tables(text):
        for row in rows:
            match = re.fullmatch(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`", row[0])
            if section == "Catalogue":
                if not match or len(row) != 6:
                    raise ValueError(f"{path}: catalogue row {row!r}: expected 6 cells, "
                                     "the first a `metric_name`")
                name, kind, labels, _, source, _ = match.group(1), *row[1:]
                if kind not in TYPES or source not in SOURCES:
                    raise ValueError(f"{path}: {name}: type {kind!r} (expected one of {TYPES}) "
                                     f"or source {source!r} (expected one of {SOURCES})")
                if name in metrics:
                    raise ValueError(f"{path}: {name}: listed twice")
                label_set = frozenset(l.strip() for l in labels.split(",") if l.strip())
                metrics[name] = {"type": kind, "labels": label_set, "source": source}
            elif section == "Ignored":
                if not match:
                    raise ValueError(f"{path}: ignored row {row!r}: expected a `metric_name`")
                ignored.add(match.group(1))
    if not metrics:
        raise ValueError(f"{path}: no `## Catalogue` table found")
    return metrics, ignored


_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def _parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        match = _LABEL.match(text, pos)
        if not match:
            raise ValueError(f"bad label set {{{text}}} at {pos}")
        labels[match.group(1)] = match.group(2)
        pos = match.end()
    return labels


def parse_exposition(text):
    """Returns {family: {"type": str, "samples": [(sample name, labels dict, value)]}}."""
    families = {}
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            types[name] = kind
            families.setdefault(name, {"type": kind, "samples": []})
            continue
        if not line.strip() or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            raise ValueError(f"unparseable sample line: {line!r}")
        sample, labels, value = match.group(1), _parse_labels(match.group(3) or ""), match.group(4)
        family = sample
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample[: -len(suffix)]
            if sample.endswith(suffix) and types.get(base) in ("histogram", "summary"):
                family = base
        families.setdefault(family, {"type": types.get(family, "untyped"), "samples": []})
        families[family]["samples"].append((sample, labels, float(value)))
    return families


def check_names(metrics):
    """Naming conventions for the documented metrics."""
    problems = []
    for name, spec in metrics.items():
        if not name.startswith("slmgw_"):
            problems.append(f"{name}: name must start with slmgw_")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            problems.append(f"{name}: name must be lower-case snake_case")
        if spec["type"] == "counter" and not name.endswith("_total"):
            problems.append(f"{name}: a counter's name must end in _total")
        if spec["type"] != "counter" and name.endswith("_total"):
            problems.append(f"{name}: only counters end in _total")
        if name.endswith(NON_BASE_UNITS) or any(u + "_" in name for u in NON_BASE_UNITS):
            problems.append(f"{name}: use base units (seconds, bytes, ratio)")
        if ("duration" in name or "latency" in name or "time" in name) and \
                spec["type"] == "histogram" and not name.endswith("_seconds"):
            problems.append(f"{name}: a time histogram's name must end in _seconds")
        if name.endswith("_info") and spec["type"] != "gauge":
            problems.append(f"{name}: an _info metric must be a gauge")
        for label in spec["labels"]:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", label) or label in STRUCTURAL_LABELS:
                problems.append(f"{name}: label {label!r} is not a valid lower-case label name")
    return problems


def check_scrape(process, families, metrics, ignored, expected_sources):
    """Compares one process's scrape with the catalogue: undocumented metrics, types, labels,
    cardinality. Missing metrics are check_missing()'s job.

    `expected_sources`: the catalogue sources this process must expose (router, worker)."""
    problems = []
    for name, family in families.items():
        if name in ignored:
            continue
        spec = metrics.get(name)
        if spec is None:
            problems.append(f"{process}: {name} ({family['type']}) is exposed but not documented "
                            "in docs/metrics.md")
            continue
        if spec["source"] not in expected_sources:
            problems.append(f"{process}: {name} is documented as a {spec['source']} metric")
        if family["type"] != spec["type"]:
            problems.append(f"{process}: {name} is a {family['type']}, documented as "
                            f"{spec['type']}")
        values = {}
        series = set()
        for sample, labels, _ in family["samples"]:
            names = set(labels) - STRUCTURAL_LABELS
            if names != spec["labels"]:
                problems.append(f"{process}: {sample} has labels {sorted(names)}, documented "
                                f"{sorted(spec['labels'])}")
                break
            series.add(tuple(sorted((k, v) for k, v in labels.items()
                                    if k not in STRUCTURAL_LABELS)))
            for k, v in labels.items():
                if k not in STRUCTURAL_LABELS:
                    values.setdefault(k, set()).add(v)
        if len(series) > MAX_SERIES_PER_FAMILY:
            problems.append(f"{process}: {name} has {len(series)} series (bound "
                            f"{MAX_SERIES_PER_FAMILY})")
        for label, seen in values.items():
            if len(seen) > MAX_VALUES_PER_LABEL:
                problems.append(f"{process}: {name} label {label} has {len(seen)} values (bound "
                                f"{MAX_VALUES_PER_LABEL})")
            for value in seen:
                if not re.fullmatch(r"[A-Za-z0-9_.:/\-@]*", value) or len(value) > 128:
                    problems.append(f"{process}: {name} label {label}={value!r} does not look "
                                    "like a bounded identifier")
    return problems


def check_missing(scrapes, metrics):
    """`scrapes`: [(families, sources the process serves)]. A documented metric is missing when
    no process of its source exposes it (prometheus-cpp omits families that have no series yet,
    so each must be driven by some traffic in some process)."""
    exposed = {}
    for families, sources in scrapes:
        for source in sources:
            exposed.setdefault(source, set()).update(families)
    return [f"{name} is documented ({spec['source']}) but no {spec['source']} process exposes it"
            for name, spec in sorted(metrics.items())
            if name not in exposed.get(spec["source"], set())]
