#!/usr/bin/python3
"""Prints one table of encoder throughput: ours (encoder_bench JSON) beside ONNX Runtime and
PyTorch (JSON lines from bench_ort.js / bench_torch.py), with ratios and the goal check:
at >= 64 tokens, our int8 reaches >= 50% of the measured int8 peak and >= 2x the fastest
alternative at the same thread count.

Usage: summarize.py OURS.json ALTERNATIVES.jsonl...
"""

import json
import re
import sys

NAME = re.compile(r"^encoder/(\w+)/threads:(\d+)/seq:(\d+)")


def load_ours(path):
    with open(path) as f:
        report = json.load(f)
    ours = {}
    for run in report["benchmarks"]:
        match = NAME.match(run["name"])
        if match and "tokens_per_s" in run:
            dtype, threads, seq = match.group(1), int(match.group(2)), int(match.group(3))
            ours[(dtype, threads, seq)] = run
    return ours


def load_alternatives(paths):
    results = {}
    for path in paths:
        try:
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if line.startswith("{"):
                        row = json.loads(line)
                        key = (f"{row['engine']}-{row['dtype']}", row["threads"], row["seq"])
                        results[key] = row["tokens_per_s"]
        except FileNotFoundError:
            print(f"(no results in {path})")
    return results


def main():
    ours = load_ours(sys.argv[1])
    alternatives = load_alternatives(sys.argv[2:])
    engines = sorted({key[0] for key in alternatives})
    our_dtypes = ["f32", "bf16", "int8"]
    header = (["threads", "seq"] + [f"ours-{d}" for d in our_dtypes] + engines +
              ["best-alt", "int8/best", "int8 %peak"])
    rows = []
    goal_failures = []
    for threads, seq in sorted({(k[1], k[2]) for k in ours}):
        row = [str(threads), str(seq)]
        for dtype in our_dtypes:
            run = ours.get((dtype, threads, seq))
            row.append(f"{run['tokens_per_s']:.0f}" if run else "-")
        alt_rates = {e: alternatives.get((e, threads, seq)) for e in engines}
        row += [f"{alt_rates[e]:.0f}" if alt_rates[e] else "-" for e in engines]
        measured = {e: r for e, r in alt_rates.items() if r}
        best_engine = max(measured, key=measured.get) if measured else None
        int8 = ours.get(("int8", threads, seq))
        ratio = int8["tokens_per_s"] / measured[best_engine] if int8 and best_engine else None
        fraction = int8["fraction_of_peak"] if int8 else None
        row.append(best_engine or "-")
        row.append(f"{ratio:.2f}x" if ratio else "-")
        row.append(f"{fraction:.0%} of {int8['peak_gops']:.0f}" if int8 else "-")
        rows.append(row)
        if seq >= 64 and int8:
            if fraction < 0.5:
                goal_failures.append(f"threads={threads} seq={seq}: int8 at {fraction:.0%} of "
                                     "int8 peak (goal >= 50%)")
            if ratio is not None and ratio < 2.0:
                goal_failures.append(f"threads={threads} seq={seq}: int8 {ratio:.2f}x the "
                                     f"fastest alternative ({best_engine}; goal >= 2x)")
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    print("Encoder throughput, tokens/s (MiniLM-L6-like, one sequence per call)")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    if goal_failures:
        print("Goals missed:\n  " + "\n  ".join(goal_failures))
    else:
        print("Goals met: int8 >= 50% of peak and >= 2x the fastest alternative at >= 64 tokens")


if __name__ == "__main__":
    main()
