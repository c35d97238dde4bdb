"""Errors map to typed exceptions that name file, row, line and column, and quote no cell."""

import pandas as pd
import polars as pl
import pytest

import privsynth

SCHEMA = """
version: 1
tables:
  - name: t
    out_of_domain: error
    columns:
      - {name: age, type: integer, domain: {bounds: [0, 100], bins: 10, source: public}}
      - {name: ward, type: categorical, domain: {categories: [a, b], source: public}}
"""


@pytest.fixture
def schema():
    return privsynth.Schema.from_yaml(SCHEMA, "t.yaml")


def synth(schema):
    return privsynth.Synthesizer(schema, epsilon=1.0, mechanism="mst", progress=False, verbose=False)


def test_bad_cell_in_a_file_names_file_row_line_column(scratch, schema):
    path = scratch / "bad.csv"
    path.write_text("age,ward\n10,a\n20,b\n707,a\n30,b\n")
    with pytest.raises(privsynth.InputError) as e:
        synth(schema).fit(str(path))
    err = e.value
    assert (err.file, err.row, err.line, err.column) == (str(path), 3, 4, "age")
    assert "707" not in str(err)
    assert err.exit_code == 2
    assert isinstance(err, ValueError)


def test_bad_cell_in_a_frame_names_frame_row_column(scratch, schema):
    df = pd.DataFrame({"age": [10, 20, 30], "ward": ["a", "zzz-secret", "b"]})
    with pytest.raises(privsynth.InputError) as e:
        synth(schema).fit(df, name="ward_extract")
    err = e.value
    assert (err.file, err.row, err.column) == ("ward_extract", 2, "ward")
    assert "zzz-secret" not in str(err)


def test_missing_column(scratch, schema):
    with pytest.raises(privsynth.InputError) as e:
        synth(schema).fit(pl.DataFrame({"age": [1, 2]}))
    assert e.value.column == "ward"
    assert e.value.file == "<polars.DataFrame>"


def test_unreadable_column_type(scratch, schema):
    df = pl.DataFrame({"age": [1, 2], "ward": [["a"], ["b"]]})
    with pytest.raises(privsynth.InputError) as e:
        synth(schema).fit(df)
    assert e.value.column == "ward"


def test_missing_file(scratch, schema):
    with pytest.raises(privsynth.InputError) as e:
        synth(schema).fit(str(scratch / "nope.csv"))
    assert e.value.file.endswith("nope.csv")
    assert "does not exist" in str(e.value)


def test_schema_errors(scratch):
    with pytest.raises(privsynth.SchemaError) as e:
        privsynth.Schema.from_yaml("version: 1\ntables: [{name: t, columns: [{name: x, type: wat}]}]\n", "bad.yaml")
    assert e.value.origin == "bad.yaml"
    with pytest.raises(privsynth.FileError):
        privsynth.Schema.load(scratch / "missing.yaml")


def test_usage_errors(scratch, schema):
    with pytest.raises(privsynth.UsageError):
        privsynth.Synthesizer(schema, epsilon=-1)
    with pytest.raises(privsynth.UsageError):
        privsynth.Synthesizer(schema, mechanism="gan")
    with pytest.raises(privsynth.UsageError):
        synth(schema).sample(10)
    with pytest.raises(privsynth.UsageError):
        privsynth.Synthesizer(schema, mechanism="aim", degree=0)


def test_unconvertible_pandas_column_is_named_without_its_value(scratch, schema):
    df = pd.DataFrame({"age": [10, "secret-cell", 30], "ward": ["a", "b", "a"]})
    with pytest.raises(privsynth.InputError) as e:
        synth(schema).fit(df)
    assert e.value.column == "age"
    assert "secret-cell" not in str(e.value)
