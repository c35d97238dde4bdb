"""privsynth: differentially private synthetic data for sensitive tables, with an audit of what
was preserved and what could leak.

The same Rust core as the ``privsynth`` command line, with the same guarantees: a fit is checked
against the ledger's policy and recorded in the ledger (``.privsynth/ledger.jsonl`` by default)
exactly as ``privsynth fit`` does, and nothing printed or raised while fitting carries an exact
count or a cell of the real data.

    >>> import privsynth
    >>> schema = privsynth.Schema.load("schemas/adult.yaml")
    >>> synth = privsynth.Synthesizer(schema, epsilon=1.0).fit(df)
    >>> synthetic = synth.sample(1000, seed=7, output="pandas")
    >>> report = privsynth.audit(train, holdout, synthetic, schema)
    >>> report.passed, report["verdict"]

Frames go in as pandas or polars DataFrames, pyarrow Tables (anything with
``__arrow_c_stream__``) or paths, and come out as polars (default), pandas or pyarrow, with
dates as dates, categories as categories (in the schema's order) and nulls as nulls.
"""

from ._native import ArrowStream, AuditReport, LinkedSynthesizer, Schema, Synthesizer, audit, version
from .errors import (
    BudgetRefused,
    FileError,
    InputError,
    InternalError,
    PrivsynthError,
    SchemaError,
    UsageError,
)

__version__ = version()

__all__ = [
    "Schema",
    "Synthesizer",
    "LinkedSynthesizer",
    "AuditReport",
    "ArrowStream",
    "audit",
    "version",
    "PrivsynthError",
    "UsageError",
    "SchemaError",
    "InputError",
    "FileError",
    "BudgetRefused",
    "InternalError",
]
