"""The ledger and the policy: the same release protocol as the CLI."""

import pandas as pd
import pytest

import privsynth
from conftest import ADULT, ADULT_SCHEMA, ledger_entries


@pytest.fixture(scope="module")
def adult():
    return pd.read_csv(ADULT, dtype=str, keep_default_na=False, na_values=[""]).head(5000)


def test_charged_once_per_fit_not_per_sample(scratch, adult):
    ledger = scratch / "ledger.jsonl"
    synth = privsynth.Synthesizer(
        ADULT_SCHEMA, epsilon=0.7, mechanism="mst", ledger=str(ledger), progress=False, verbose=False
    )
    synth.fit(adult)
    assert len(ledger_entries(ledger)) == 1
    for seed in range(3):
        synth.sample(100, seed=seed)
    synth.save(scratch / "m.json")
    assert len(ledger_entries(ledger)) == 1
    synth.fit(adult)
    entries = ledger_entries(ledger)
    assert len(entries) == 2
    assert [e["seq"] for e in entries] == [0, 1]
    assert synth.ledger_entry == 1
    # The entry records what was spent: rho of epsilon 0.7 at delta 1e-9 (both fits).
    assert entries[0]["rho"] == pytest.approx(entries[1]["rho"])
    assert entries[0]["command"].startswith("fit --mechanism mst")


def test_policy_refuses_over_budget(scratch, adult):
    ledger = scratch / "ledger.jsonl"
    policy = scratch / "policy.yaml"
    # The cap is rho ~0.0169 (epsilon 1.2 at delta 1e-9); a fit at epsilon 1 costs rho ~0.0150,
    # so a second one is over it and one at epsilon 0.3 (rho ~0.0011) is not.
    policy.write_text("default: {epsilon: 1.2, delta: 1.0e-9}\n")
    make = lambda eps: privsynth.Synthesizer(
        ADULT_SCHEMA, epsilon=eps, mechanism="mst", ledger=str(ledger), policy=str(policy), progress=False, verbose=False
    )
    make(1.0).fit(adult)
    with pytest.raises(privsynth.BudgetRefused) as e:
        make(1.0).fit(adult)
    assert e.value.exit_code == 3
    # Refused before anything was charged: still one entry.
    assert len(ledger_entries(ledger)) == 1
    # What is left still fits.
    make(0.3).fit(adult)
    assert len(ledger_entries(ledger)) == 2


def test_dp_schema_inference_is_charged(scratch, adult):
    ledger = scratch / "ledger.jsonl"
    s = privsynth.Schema.infer(adult, dp_epsilon=1.0, name="adult", ledger=str(ledger), progress=False, verbose=False)
    (entry,) = ledger_entries(ledger)
    assert entry["command"] == "schema infer --dp-epsilon"
    y = s.to_yaml()
    assert "source: dp" in y and "dp_inference" in y
    # A fit on the proposal (after review) adds its own entry on the same dataset.
    privsynth.Synthesizer(s, epsilon=1.0, mechanism="mst", ledger=str(ledger), progress=False, verbose=False).fit(adult)
    entries = ledger_entries(ledger)
    assert len(entries) == 2
    assert entries[0]["dataset"]["fingerprint"] == entries[1]["dataset"]["fingerprint"]


def test_ledger_from_environment(scratch, adult, monkeypatch):
    ledger = scratch / "env-ledger.jsonl"
    monkeypatch.setenv("PRIVSYNTH_LEDGER", str(ledger))
    privsynth.Synthesizer(ADULT_SCHEMA, epsilon=0.5, mechanism="mst", progress=False, verbose=False).fit(adult)
    assert len(ledger_entries(ledger)) == 1
