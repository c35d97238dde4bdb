"""Frames in and out: every column type, with nulls, from pandas, polars and pyarrow."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import privsynth
from conftest import ledger_entries

# Every modelled type (categorical, integer, float, boolean, date, datetime), each nullable, plus
# an identifier that is never modelled.
SCHEMA = """
version: 1
tables:
  - name: visits
    columns:
      - {name: id, type: identifier, role: identifier}
      - {name: ward, type: categorical, nullable: true, domain: {categories: [north, south, east, west], source: public}}
      - {name: age, type: integer, nullable: true, domain: {bounds: [0, 100], bins: 10, source: public}}
      - {name: weight, type: float, nullable: true, domain: {bounds: [0, 200], bins: 8, source: public}}
      - {name: smoker, type: boolean, nullable: true}
      - {name: admitted, type: date, nullable: true, domain: {bounds: ['2020-01-01', '2020-12-31'], granularity: month, source: public}}
      - {name: seen, type: datetime, nullable: true, domain: {bounds: ['2020-01-01T00:00:00', '2020-12-31T23:59:59'], granularity: month, source: public}}
"""

N = 3000


def pandas_frame(seed=0):
    rng = np.random.default_rng(seed)
    ward = pd.Categorical(rng.choice(["north", "south", "east", "west"], N), categories=["north", "south", "east", "west"])
    df = pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(N)],
            "ward": ward,
            "age": pd.array(rng.integers(0, 100, N), dtype="Int64"),
            "weight": rng.uniform(40, 120, N),
            "smoker": pd.array(rng.random(N) < 0.3, dtype="boolean"),
            "admitted": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 365, N), unit="D"),
            "seen": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24 * 3600, N), unit="s"),
        }
    )
    # A fifth of each modelled column missing.
    for c in ["ward", "age", "weight", "smoker", "admitted", "seen"]:
        df.loc[rng.random(N) < 0.2, c] = None
    # Dates as dates (pyarrow date32), not timestamps.
    df["admitted"] = df["admitted"].dt.date
    return df


def frames():
    p = pandas_frame()
    t = pa.Table.from_pandas(p, preserve_index=False)
    return {"pandas": p, "pyarrow": t, "polars": pl.from_arrow(t)}


@pytest.fixture
def schema():
    return privsynth.Schema.from_yaml(SCHEMA, "visits.yaml")


def test_same_table_from_each_library_is_one_dataset(scratch, schema):
    """The ledger fingerprints a frame by its cells, so the same table from pandas, polars and
    pyarrow lands on one dataset: this shows that every cell arrived the same way."""
    for kind, df in frames().items():
        privsynth.Synthesizer(schema, epsilon=0.5, mechanism="mst", progress=False, verbose=False).fit(df)
    entries = ledger_entries(scratch / ".privsynth" / "ledger.jsonl")
    assert len(entries) == 3
    fps = {e["dataset"]["fingerprint"] for e in entries}
    assert len(fps) == 1, fps
    assert next(iter(fps)).startswith("sha256-frame:")
    # A changed cell is another dataset.
    p = pandas_frame()
    p.loc[0, "weight"] = 41.5 if p.loc[0, "weight"] != 41.5 else 42.5
    privsynth.Synthesizer(schema, epsilon=0.5, mechanism="mst", progress=False, verbose=False).fit(p)
    assert ledger_entries(scratch / ".privsynth" / "ledger.jsonl")[-1]["dataset"]["fingerprint"] not in fps


def test_inferred_domains_read_every_value(scratch):
    """Schema.infer without DP reads the domains from the frame: the categories and bounds it
    finds are those of the frame, whichever library it came from."""
    for kind, df in frames().items():
        s = privsynth.Schema.infer(df, name="visits", progress=False, verbose=False)
        y = s.to_yaml()
        for ward in ["north", "south", "east", "west"]:
            assert ward in y, kind
        assert s.columns() == ["id", "ward", "age", "weight", "smoker", "admitted", "seen"]


@pytest.mark.parametrize("output", ["polars", "pandas", "arrow"])
def test_sample_keeps_types_and_nulls(scratch, schema, output):
    synth = privsynth.Synthesizer(schema, epsilon=2.0, mechanism="mst", progress=False, verbose=False)
    synth.fit(frames()["polars"])
    out = synth.sample(4000, seed=11, output=output)
    if output == "polars":
        assert out.schema["ward"] == pl.Enum(["north", "south", "east", "west"])
        assert out.schema["age"] == pl.Int64
        assert out.schema["weight"] == pl.Float64
        assert out.schema["smoker"] == pl.Boolean
        assert out.schema["admitted"] == pl.Date
        assert isinstance(out.schema["seen"], pl.Datetime)
        nulls = {c: out[c].null_count() for c in out.columns}
        assert out["admitted"].drop_nulls().min() >= dt.date(2020, 1, 1)
        assert out["admitted"].drop_nulls().max() <= dt.date(2020, 12, 31)
    elif output == "pandas":
        assert isinstance(out["ward"].dtype, pd.CategoricalDtype)
        assert list(out["ward"].cat.categories) == ["north", "south", "east", "west"]
        assert str(out["age"].dtype) == "Int64"
        assert str(out["smoker"].dtype) == "boolean"
        assert out["admitted"].dtype.kind == "M" and out["seen"].dtype.kind == "M"
        nulls = {c: int(out[c].isna().sum()) for c in out.columns}
    else:
        assert pa.types.is_dictionary(out.schema.field("ward").type)
        assert out.schema.field("admitted").type == pa.date32()
        assert pa.types.is_timestamp(out.schema.field("seen").type)
        nulls = {c: out.column(c).null_count for c in out.column_names}
    # The identifier is not modelled, so it is not in the output.
    assert "id" not in nulls
    # A fifth of each column was missing; at epsilon 2 the noisy null share of 4,000 sampled
    # rows is far from 0: P(no null among 4,000 draws at a rate >= 5%) < 1e-80.
    for c in ["ward", "age", "weight", "smoker", "admitted", "seen"]:
        assert 0 < nulls[c] < 4000, (c, nulls[c])


def test_synthetic_frame_fits_again(scratch, schema):
    """A synthetic pandas frame (categoricals, nullable ints, datetimes) is a valid input."""
    synth = privsynth.Synthesizer(schema, epsilon=1.0, mechanism="mst", progress=False, verbose=False)
    out = synth.fit(frames()["pandas"]).sample(2000, seed=1, output="pandas")
    out.insert(0, "id", [f"s{i}" for i in range(len(out))])
    again = privsynth.Synthesizer(schema, epsilon=1.0, mechanism="mst", progress=False, verbose=False).fit(out)
    assert again.fitted


def test_lazy_and_stream_inputs(scratch, schema):
    lazy = frames()["polars"].lazy()
    s = privsynth.Synthesizer(schema, epsilon=1.0, mechanism="mst", progress=False, verbose=False).fit(lazy)
    assert s.fitted
    with pytest.raises(TypeError):
        s.fit([1, 2, 3])
