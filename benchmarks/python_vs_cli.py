"""The Python package against the command line on UCI Adult: same fit (AIM or MST at epsilon 1),
same sample, each run in its own process, timed from outside (wall, user + system CPU, peak RSS
from wait4's rusage).

Variants, all on data/adult/adult.csv with schemas/adult.yaml:
  cli         `privsynth fit` then `privsynth sample` (two processes; times added, peak = max)
  py-path     privsynth.Synthesizer(...).fit(path).sample(...) in one Python process
  py-pandas   pandas.read_csv(path) then .fit(frame) (the Arrow hand-over and the frame
              fingerprint included), .sample(output="pandas")
  py-polars   polars.read_csv(path) then .fit(frame), .sample() as polars

Each Python process also reports the time of its fit and sample calls alone (`fit_s`,
`sample_s`), to separate the binding from the interpreter's start and imports.

Usage: python benchmarks/python_vs_cli.py --cli target/release/privsynth [--runs 5] [--mechanism aim]
(run from the repository root, in a venv with the privsynth wheel, pandas and polars).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data", "adult", "adult.csv")
SCHEMA = os.path.join(ROOT, "schemas", "adult.yaml")

PY = r"""
import json, sys, time
t0 = time.perf_counter()
import privsynth
kind, data, schema, mech, seed, ledger = sys.argv[1:7]
if kind == "py-pandas":
    import pandas as pd
    data = pd.read_csv(data)
elif kind == "py-polars":
    import polars as pl
    data = pl.read_csv(data)
t1 = time.perf_counter()
s = privsynth.Synthesizer(schema, epsilon=1.0, mechanism=mech, ledger=ledger, progress=False, verbose=False)
s.fit(data)
t2 = time.perf_counter()
out = s.sample(seed=int(seed), output="pandas" if kind == "py-pandas" else "polars")
t3 = time.perf_counter()
print(json.dumps({"import_read_s": t1 - t0, "fit_s": t2 - t1, "sample_s": t3 - t2, "rows": len(out)}))
"""


def run(cmd):
    """Run `cmd` and return (wall s, user+sys s, peak RSS MiB, stdout)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    out = p.stdout.read()
    err = p.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), err))
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True, help="the privsynth binary (release build)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mechanism", default="aim")
    a = ap.parse_args()
    results = {k: [] for k in ["cli", "py-path", "py-pandas", "py-polars"]}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.runs):
            ledger = os.path.join(tmp, "ledger-%d.jsonl" % i)
            model = os.path.join(tmp, "model.json")
            out = os.path.join(tmp, "out.parquet")
            w1, c1, m1, _ = run([a.cli, "fit", DATA, "--schema", SCHEMA, "--epsilon", "1", "--mechanism", a.mechanism,
                                 "-o", model, "--ledger", ledger, "-q"])
            w2, c2, m2, _ = run([a.cli, "sample", model, "-o", out, "--seed", str(i), "-q"])
            results["cli"].append({"wall": w1 + w2, "cpu": c1 + c2, "rss": max(m1, m2), "fit_s": w1, "sample_s": w2})
            for kind in ["py-path", "py-pandas", "py-polars"]:
                w, c, m, o = run([sys.executable, "-c", PY, kind, DATA, SCHEMA, a.mechanism, str(i), ledger])
                inner = json.loads(o.strip().splitlines()[-1])
                results[kind].append({"wall": w, "cpu": c, "rss": m, **inner})
            print("run %d done" % (i + 1), file=sys.stderr)
    med = lambda k, f: statistics.median(r[f] for r in results[k])
    base = med("cli", "wall")
    print("| variant | wall (s) | CPU (s) | peak RSS (MiB) | fit call (s) | sample call (s) | wall / CLI |")
    print("|---|---|---|---|---|---|---|")
    for k in results:
        print("| %s | %.2f | %.2f | %.0f | %.2f | %.2f | %.2f |" % (
            k, med(k, "wall"), med(k, "cpu"), med(k, "rss"), med(k, "fit_s"), med(k, "sample_s"), med(k, "wall") / base))
    print("medians of %d runs, mechanism %s, epsilon 1" % (a.runs, a.mechanism))


if __name__ == "__main__":
    main()
