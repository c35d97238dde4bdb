"""Fit, sample and audit on the bundled UCI Adult data."""

import threading
import time

import pandas as pd
import polars as pl
import pytest

import privsynth
from conftest import ADULT, ADULT_SCHEMA, ADULT_TEST, ledger_entries


@pytest.fixture(scope="module")
def adult():
    # Read as text, as the CLI reads CSV: the schema decides the types.
    return pd.read_csv(ADULT, dtype=str, keep_default_na=False, na_values=[""])


def test_fit_sample_audit(scratch, adult, tmp_path):
    schema = privsynth.Schema.load(ADULT_SCHEMA)
    synth = privsynth.Synthesizer(schema, epsilon=1.0, mechanism="mst", progress=False, verbose=False).fit(adult)
    assert synth.privacy["epsilon"] == pytest.approx(1.0, rel=1e-6)
    assert any("spent epsilon 1.000" in m for m in synth.messages)
    syn = synth.sample(5000, seed=3, output="pandas")
    assert len(syn) == 5000
    assert list(syn.columns) == schema.columns()
    holdout = pl.read_csv(ADULT_TEST, infer_schema_length=0)
    report = privsynth.audit(adult, holdout, syn, schema, attacks=200, seed=1, progress=False)
    d = report.to_dict()
    assert report["verdict"] in ("pass", "fail")
    assert report.passed == (d["verdict"] == "pass")
    assert "fidelity" in report
    html = tmp_path / "audit.html"
    report.to_html(html)
    assert html.read_text().lstrip().lower().startswith("<!doctype html")
    # The same audit from paths.
    r2 = privsynth.audit(str(ADULT), str(ADULT_TEST), syn, str(ADULT_SCHEMA), attacks=200, seed=1, progress=False)
    assert r2.to_dict()["fidelity"] == d["fidelity"]


def test_path_input_is_the_file_dataset(scratch):
    """A fit from a path is charged to the file's fingerprint, as `privsynth fit` does."""
    import hashlib

    synth = privsynth.Synthesizer(ADULT_SCHEMA, epsilon=0.5, mechanism="mst", progress=False, verbose=False)
    synth.fit(str(ADULT))
    (entry,) = ledger_entries(scratch / ".privsynth" / "ledger.jsonl")
    assert entry["dataset"]["fingerprint"] == "sha256:" + hashlib.sha256(ADULT.read_bytes()).hexdigest()
    assert entry["dataset"]["name"] == str(ADULT)


def test_fit_releases_the_gil(scratch, adult):
    """While a fit runs in one thread, another Python thread keeps running: the GIL is
    released. A ticker sleeping 1 ms would tick about 1,000 times a second; with the GIL held
    through a fit of about a second it would tick only at the observer's call-backs."""
    schema = privsynth.Schema.load(ADULT_SCHEMA)
    synth = privsynth.Synthesizer(schema, epsilon=1.0, mechanism="mst", progress=False, verbose=False)
    ticks = [0]
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    start = time.monotonic()
    synth.fit(adult)
    elapsed = time.monotonic() - start
    stop.set()
    t.join()
    assert elapsed > 0.2, "the fit was too quick to tell"
    # At least 20 ticks per second of fit (a loaded machine still ticks hundreds of times).
    assert ticks[0] > 20 * elapsed, (ticks[0], elapsed)


def test_progress_lines_without_a_terminal(scratch, adult, capsys, monkeypatch):
    """Without tqdm (or without a terminal or notebook for its bar), one line per step."""
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *a, **k):
        if name.startswith("tqdm"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    synth = privsynth.Synthesizer(ADULT_SCHEMA, epsilon=1.0, mechanism="mst", verbose=False).fit(adult.head(2000))
    err = capsys.readouterr().err
    assert "privsynth: fitting MST at epsilon 1 ..." in err
    assert "done in" in err
    # Nothing of the data: no count of the rows.
    assert "2000" not in err
