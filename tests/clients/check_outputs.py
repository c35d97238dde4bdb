#!/usr/bin/env python3
"""Read every privsynth output with the tools people already use (issue 23).

Runs the privsynth binary on bundled tables, then reads each synthetic table with pyarrow,
pandas and polars (and, with --old-python, with an old pyarrow in another interpreter),
validates the JSON audit reports against schemas/audit-report.schema.json, parses the JUnit
reports with junitparser, and runs `privsynth schema check` on every synthetic output expecting
exit 0. Exits 1 on the first failed expectation, naming it.

    python tests/clients/check_outputs.py --bin target/debug/privsynth [--old-python PY]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import junitparser
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[2]
FAILURES = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        FAILURES.append(what)


def run(bin_, *args, expect=(0,)):
    r = subprocess.run([bin_, *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    if r.returncode not in expect:
        sys.exit(f"privsynth {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}")
    return r


def schema_names(schema_file, table=None):
    s = yaml.safe_load(Path(schema_file).read_text())
    t = s["tables"][0] if table is None else next(t for t in s["tables"] if t["name"] == table)
    return [c["name"] for c in t["columns"]]


def read_all(path, names):
    """Read one table with every client; the columns must be the schema's, in order."""
    ext = path.suffix.lstrip(".")
    if ext in ("csv", "tsv"):
        sep = "\t" if ext == "tsv" else ","
        reads = {
            "pyarrow": lambda: pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=sep)).column_names,
            "pandas": lambda: list(pd.read_csv(path, sep=sep).columns),
            "polars": lambda: pl.read_csv(path, separator=sep, infer_schema_length=0).columns,
        }
    elif ext == "parquet":
        reads = {
            "pyarrow": lambda: pq.read_table(path).column_names,
            "pandas": lambda: list(pd.read_parquet(path).columns),
            "polars": lambda: pl.read_parquet(path).columns,
        }
    else:
        reads = {
            "pyarrow": lambda: feather.read_table(path).column_names,
            "pandas": lambda: list(pd.read_feather(path).columns),
            "polars": lambda: pl.read_ipc(path).columns,
        }
    for client, read in reads.items():
        try:
            cols = read()
            check(cols == names, f"{client} {pa.__version__ if client == 'pyarrow' else ''} reads {path.name}: columns {'match' if cols == names else cols}")
        except Exception as e:  # noqa: BLE001 - any failure to read is the finding
            check(False, f"{client} reads {path.name}: {type(e).__name__}: {e}")
    if ext in ("parquet", "arrow"):
        t = pq.read_table(path) if ext == "parquet" else feather.read_table(path)
        views = [f.name for f in t.schema if str(f.type) in ("string_view", "binary_view")]
        check(not views, f"{path.name}: no view types ({views or 'none'})")


def old_pyarrow(py, files):
    """Read the Parquet and IPC files with another interpreter's (old) pyarrow."""
    code = (
        "import sys, pyarrow as pa, pyarrow.parquet as pq, pyarrow.feather as fe\n"
        "for f in sys.argv[1:]:\n"
        "    t = pq.read_table(f) if f.endswith('.parquet') else fe.read_table(f)\n"
        "    [c.to_pylist() for c in t.columns]\n"
        "    print(pa.__version__, f, t.num_rows)\n"
    )
    r = subprocess.run([py, "-c", code, *map(str, files)], capture_output=True, text=True)
    version = subprocess.run([py, "-c", "import pyarrow; print(pyarrow.__version__)"], capture_output=True, text=True)
    check(r.returncode == 0, f"pyarrow {version.stdout.strip()} reads {len(files)} Parquet/IPC file(s)" + (f": {r.stderr.strip().splitlines()[-1]}" if r.returncode else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--old-python", help="an interpreter with an old pyarrow (e.g. 14)")
    a = ap.parse_args()
    b = str(Path(a.bin).resolve())
    report_schema = json.loads((ROOT / "schemas/audit-report.schema.json").read_text())
    binary = []
    with tempfile.TemporaryDirectory(prefix="privsynth-clients-") as tmp:
        tmp = Path(tmp)
        led = ["--ledger", tmp / "ledger.jsonl", "-q", "--mechanism", "mst", "--seed", "1"]

        # Single table, headerless input (heart), every format; the CSV run audits too.
        heart = ("data/uci-heart-disease/processed.cleveland.data", "schemas/heart.yaml")
        names = schema_names(heart[1])
        for ext in ("csv", "tsv", "parquet", "arrow"):
            out = tmp / f"heart.{ext}"
            extra = ["--audit-holdout", "0.2", "--json", tmp / "heart.json", "--junit", tmp / "heart.xml", "--attacks", "200"] if ext == "csv" else []
            run(b, "synth", heart[0], "--schema", heart[1], "--epsilon", "1", "-o", out, *led, *extra, expect=(0, 1))
            read_all(out, names)
            r = run(b, "schema", "check", out, "--schema", heart[1], expect=(0, 1, 2))
            check(r.returncode == 0, f"schema check {out.name} against {heart[1]} exits {r.returncode}")
            if ext in ("parquet", "arrow"):
                binary.append(out)

        # A single table with identifiers and text: its own schema is written beside it.
        pat = ("data/ehr/synthea-111/patients.csv", "schemas/synthea-patients.yaml")
        out = tmp / "patients.parquet"
        run(b, "synth", pat[0], "--schema", pat[1], "--epsilon", "1", "-o", out, *led)
        beside = tmp / "patients.schema.yaml"
        read_all(out, schema_names(beside))
        binary.append(out)
        r = run(b, "schema", "check", out, "--schema", beside, expect=(0, 1, 2))
        check(r.returncode == 0, f"schema check {out.name} against the schema written beside it exits {r.returncode}")

        # Linked tables, CSV and Parquet folders; the CSV run audits every table.
        ehr = ("data/ehr/synthea-111", "schemas/ehr/synthea-111.yaml")
        for fmt in ("csv", "parquet"):
            out = tmp / f"linked-{fmt}"
            extra = ["--audit-holdout", "0.25", "--json", tmp / "linked.json", "--junit", tmp / "linked.xml", "--attacks", "200"] if fmt == "csv" else []
            run(b, "synth", ehr[0], "--schema", ehr[1], "--epsilon", "1", "--format", fmt, "-o", out, *led, *extra, expect=(0, 1))
            written = out / "schema.yaml"
            for t in yaml.safe_load(written.read_text())["tables"]:
                f = out / f"{t['name']}.{fmt}"
                read_all(f, [c["name"] for c in t["columns"]])
                if fmt == "parquet":
                    binary.append(f)
            r = run(b, "schema", "check", out, "--schema", written, expect=(0, 1, 2))
            check(r.returncode == 0, f"schema check {out.name} against its schema.yaml exits {r.returncode}")

        # A datetime column with `timezone: UTC` (issue 23): every client reads the zone back.
        rows = ["ts,grp"] + [
            f"2024-03-{1 + i % 28:02}T{i % 24:02}:15:00Z,a" if i % 2 == 0 else f"2024-03-{1 + i % 28:02} {i % 24:02}:15:00+01:00,b"
            for i in range(300)
        ]
        (tmp / "tz-in.csv").write_text("\n".join(rows) + "\n")
        (tmp / "tz.yaml").write_text(
            "version: 1\ntables:\n  - name: t\n    columns:\n"
            "      - {name: ts, type: datetime, timezone: UTC, domain: {bounds: ['2024-02-01T00:00:00Z', '2024-05-01T00:00:00Z'], bins: 16}}\n"
            "      - {name: grp, type: categorical, domain: {categories: [a, b]}}\n"
        )
        for ext in ("csv", "parquet", "arrow"):
            out = tmp / f"tz.{ext}"
            run(b, "synth", tmp / "tz-in.csv", "--schema", tmp / "tz.yaml", "--epsilon", "1", "-o", out, *led)
            if ext == "csv":
                pd_tz = str(pd.read_csv(out, parse_dates=["ts"])["ts"].dtype)
                pl_tz = pl.read_csv(out, try_parse_dates=True).schema["ts"]
                check("UTC" in pd_tz, f"pandas reads tz.csv's ts as {pd_tz}")
                check(getattr(pl_tz, "time_zone", None) == "UTC", f"polars reads tz.csv's ts as {pl_tz}")
            else:
                t = pq.read_table(out) if ext == "parquet" else feather.read_table(out)
                ty = t.schema.field("ts").type
                check(getattr(ty, "tz", None) == "UTC", f"pyarrow reads tz.{ext}'s ts as {ty}")
                pd_tz = str((pd.read_parquet(out) if ext == "parquet" else pd.read_feather(out))["ts"].dtype)
                pl_tz = (pl.read_parquet(out) if ext == "parquet" else pl.read_ipc(out)).schema["ts"]
                check("UTC" in pd_tz, f"pandas reads tz.{ext}'s ts as {pd_tz}")
                check(getattr(pl_tz, "time_zone", None) == "UTC", f"polars reads tz.{ext}'s ts as {pl_tz}")
                binary.append(out)

        # JSON reports against the published schema; JUnit with a real parser, suites apart.
        for j in sorted(tmp.glob("*.json")):
            try:
                jsonschema.validate(json.loads(j.read_text()), report_schema)
                check(True, f"{j.name} validates against audit-report.schema.json")
            except jsonschema.ValidationError as e:
                check(False, f"{j.name}: {e.message} at {list(e.absolute_path)}")
        suites, cases = {}, set()
        for x in sorted(tmp.glob("*.xml")):
            xml = junitparser.JUnitXml.fromfile(str(x))
            for s in xml:
                check(s.name not in suites, f"{x.name}: suite {s.name} is its own (not also in {suites.get(s.name)})")
                suites[s.name] = x.name
                for c in s:
                    key = (c.classname, c.name)
                    check(key not in cases, f"{x.name}: case {key} is its own")
                    cases.add(key)
        check(len(suites) >= 4, f"{len(suites)} JUnit suites parsed")

        if a.old_python:
            old_pyarrow(a.old_python, binary)
    if FAILURES:
        print(f"\n{len(FAILURES)} client check(s) failed:", *FAILURES, sep="\n  ")
        sys.exit(1)
    print("\nall client checks passed")


if __name__ == "__main__":
    main()
