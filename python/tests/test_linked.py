"""Linked tables (person as privacy unit) from a dict of frames."""

import subprocess

import polars as pl
import pytest

import privsynth
from conftest import ROOT, ledger_entries

DATA = ROOT / "data" / "ehr" / "synthea27-ma"
SCHEMA = ROOT / "schemas" / "ehr" / "synthea27-ma.yaml"


def frames():
    return {t: pl.read_csv(DATA / f"{t}.csv", infer_schema_length=0) for t in ["patients", "encounters", "observations"]}


def test_linked_fit_from_frames_and_sample(scratch, privsynth_bin):
    synth = privsynth.LinkedSynthesizer(SCHEMA, epsilon=2.0, mechanism="mst", progress=False, verbose=False)
    synth.fit(frames(), name="synthea27-ma")
    (entry,) = ledger_entries(scratch / ".privsynth" / "ledger.jsonl")
    assert entry["dataset"]["name"] == "synthea27-ma"
    assert entry["dataset"]["fingerprint"].startswith("sha256-frames:")
    out = synth.sample(persons=40, seed=5)
    assert set(out) == {"patients", "encounters", "observations"}
    assert out["patients"].height == 40
    # Every event belongs to a sampled person.
    ids = set(out["patients"]["Id"].to_list())
    assert set(out["encounters"]["PATIENT"].to_list()) <= ids
    # The model file is the CLI's: it samples the same persons for the same seed.
    synth.save(scratch / "linked.json")
    r = subprocess.run(
        [privsynth_bin, "sample", "linked.json", "-o", "out", "--rows", "40", "--seed", "5"],
        cwd=scratch, capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    cli = pl.read_csv(scratch / "out" / "patients.csv", infer_schema_length=0)
    assert cli["Id"].to_list() == out["patients"]["Id"].to_list()


def test_linked_frames_must_match_the_schema(scratch):
    f = frames()
    del f["observations"]
    synth = privsynth.LinkedSynthesizer(SCHEMA, epsilon=1.0, mechanism="mst", progress=False, verbose=False)
    with pytest.raises(privsynth.UsageError):
        synth.fit(f)
    assert ledger_entries(scratch / ".privsynth" / "ledger.jsonl") == []
    with pytest.raises(privsynth.UsageError):
        privsynth.Synthesizer(SCHEMA)
