"""pandas baseline for benchmarks/encode.rs: read the same 1M-row Adult files and encode every
column to codes with the same schema (category lists, bins or one code per integer), the way a
Python pipeline (SDV/SmartNoise/private-pgm users) discretises before fitting.

Usage: python encode_pandas.py DIR SCHEMA.yaml  (DIR holds adult-1m.csv and adult-1m.parquet)
"""
import sys
import time

import numpy as np
import pandas as pd
import yaml

REPEATS = 5


def edges_of(col):
    d = col["domain"]
    lo, hi = (float(x) for x in d["bounds"])
    if "edges" in d:
        e = [float(x) for x in d["edges"]]
        e[-1] = hi + 1  # integer columns: last bin closed at hi
        return e
    if "bins" in d:
        n = int(d["bins"])
        return list(lo + (hi + 1 - lo) / n * np.arange(n)) + [hi + 1]
    return list(np.arange(lo, hi + 2))  # one code per integer value


def encode(df, cols):
    codes = {}
    for c in cols:
        s = df[c["name"]]
        if c["type"] == "categorical":
            codes[c["name"]] = pd.Categorical(s, categories=[str(x) for x in c["domain"]["categories"]]).codes
        else:
            codes[c["name"]] = pd.cut(s, bins=edges_of(c), right=False, labels=False)
    return codes


def main():
    folder, schema_path = sys.argv[1], sys.argv[2]
    cols = yaml.safe_load(open(schema_path))["tables"][0]["columns"]
    out = {}
    for fmt, read in [("CSV", lambda: pd.read_csv(f"{folder}/adult-1m.csv")), ("Parquet", lambda: pd.read_parquet(f"{folder}/adult-1m.parquet"))]:
        reads, encs = [], []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            df = read()
            t1 = time.perf_counter()
            codes = encode(df, cols)
            t2 = time.perf_counter()
            assert len(codes) == len(cols) and len(df) == 1_000_000
            reads.append(t1 - t0)
            encs.append(t2 - t1)
        out[fmt] = (float(np.median(reads)), float(np.median(encs)), float(np.median(np.add(reads, encs))))
    print(f"pandas {pd.__version__}, numpy {np.__version__}; median of {REPEATS} runs")
    for fmt, (r, e, t) in out.items():
        print(f"PANDAS {fmt} read {r:.3f} encode {e:.3f} total {t:.3f}")


if __name__ == "__main__":
    main()
