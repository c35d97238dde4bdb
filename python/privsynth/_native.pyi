"""Type stubs of the native module (the Rust core through PyO3)."""

import os
from typing import Any, Dict, KeysView, List, Literal, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]
#: A pandas or polars DataFrame (or polars LazyFrame), a pyarrow Table or RecordBatchReader,
#: any object with ``__arrow_c_stream__``, or a path to a CSV, Parquet or Arrow IPC file.
Data = Any
Output = Literal["polars", "pandas", "arrow"]

def version() -> str:
    """The version of the Rust core."""

class Schema:
    """A privsynth schema: the public description of a table's columns, types, domains and
    roles (the YAML file of ``privsynth schema infer``)."""

    @staticmethod
    def load(path: PathLike) -> "Schema":
        """Read and validate a schema file (YAML or JSON). Raises ``SchemaError`` or
        ``FileError``."""
    @staticmethod
    def from_yaml(text: str, origin: str = "<string>") -> "Schema":
        """Parse and validate schema text; ``origin`` names it in errors."""
    @staticmethod
    def infer(
        data: Data,
        dp_epsilon: Optional[float] = None,
        dp_delta: float = 1e-9,
        name: str = "table",
        max_categories: int = ...,
        ledger: Optional[PathLike] = None,
        policy: Optional[PathLike] = None,
        progress: bool = True,
        verbose: bool = True,
    ) -> "Schema":
        """Propose a schema from a frame or a file. With ``dp_epsilon``, under differential
        privacy, charged to the ledger like ``privsynth schema infer --dp-epsilon`` (raises
        ``BudgetRefused`` over the policy); without it, domains are read from the data
        (``source: data``, outside the guarantee: a fit then needs
        ``allow_data_domains=True``). Review the result before use."""
    def to_yaml(self) -> str:
        """The schema as YAML text."""
    def save(self, path: PathLike) -> None:
        """Write the schema as YAML (atomically)."""
    @property
    def tables(self) -> List[str]:
        """Names of the schema's tables."""
    @property
    def is_linked(self) -> bool:
        """Whether the schema links several tables with a person as privacy unit."""
    def columns(self, table: Optional[str] = None) -> List[str]:
        """Names of a table's columns (the only table by default)."""

class Synthesizer:
    """A DP synthesizer of one table: ``fit`` once (checked against the ledger's policy and
    recorded in the ledger, exactly as ``privsynth fit``), then ``sample`` as often as wanted
    (post-processing: free).

    ``schema`` is a ``Schema`` or a path. ``epsilon``/``delta`` is the fit's budget;
    ``mechanism`` "aim" (default) or "mst". ``ledger`` defaults to ``$PRIVSYNTH_LEDGER`` or
    ``.privsynth/ledger.jsonl``; ``policy`` is a YAML file of lifetime caps. The AIM options
    (``degree``, ``max_cells``, ``workload``, ``max_model_mb``, ``rounds``) and ``iterations``
    are those of ``privsynth fit``. ``progress`` shows a bar per step (tqdm if installed);
    ``verbose`` prints what the command line prints.
    """

    def __init__(
        self,
        schema: Union[Schema, PathLike],
        epsilon: float = 1.0,
        delta: float = 1e-9,
        mechanism: Literal["aim", "mst"] = "aim",
        *,
        table: Optional[str] = None,
        ledger: Optional[PathLike] = None,
        policy: Optional[PathLike] = None,
        iterations: Optional[int] = None,
        degree: int = 2,
        max_cells: float = 10000.0,
        workload: Optional[PathLike] = None,
        max_model_mb: Optional[float] = None,
        rounds: Optional[int] = None,
        allow_data_domains: bool = False,
        progress: bool = True,
        verbose: bool = True,
    ) -> None: ...
    def fit(self, data: Data, name: Optional[str] = None) -> "Synthesizer":
        """Fit the DP model on ``data``, charging the ledger once. A frame is known to the
        ledger by the fingerprint of its cells and named ``name`` (default
        ``<pandas.DataFrame>`` and so on); a path by its bytes, as on the command line. Raises
        ``BudgetRefused`` (nothing read or charged), ``InputError`` (with ``file``, ``row``,
        ``line``, ``column``), ``UsageError``. Returns ``self``."""
    def sample(self, n: Optional[int] = None, seed: Optional[int] = None, output: Output = "polars") -> Any:
        """Draw ``n`` records (default: the model's DP estimate of the table size) with
        ``seed``: a polars DataFrame (categories as ``pl.Enum``), a pandas DataFrame
        (``Categorical``, nullable ``Int64``/``boolean``, ``datetime64``) or a pyarrow Table
        (dictionaries, ``date32``, ``timestamp[ms]``). The same model and seed give the same
        records as ``privsynth sample``."""
    def sample_to_file(self, path: PathLike, n: Optional[int] = None, seed: Optional[int] = None) -> None:
        """Sample and write CSV (in the table's dialect), Parquet or Arrow IPC by extension."""
    def save(self, path: PathLike) -> None:
        """Write the model file (released values only; ``privsynth sample MODEL`` reads it)."""
    @staticmethod
    def load(path: PathLike) -> "Synthesizer":
        """A synthesizer that samples from a model file (``save`` or ``privsynth fit``)."""
    @property
    def fitted(self) -> bool: ...
    @property
    def privacy(self) -> Dict[str, Any]:
        """The guarantee of the model: epsilon, delta, rho, unit, rows_per_unit and what the
        guarantee does not cover."""
    @property
    def messages(self) -> List[str]:
        """What the last fit reported (public facts and released values only)."""
    @property
    def ledger_entry(self) -> Optional[int]:
        """The sequence number of the ledger entry of the last fit."""
    @property
    def schema(self) -> Schema: ...

class AuditReport:
    """What an audit found. ``report["fidelity"]`` and the other keys of the JSON report
    (``privsynth audit --json``); ``passed`` is the release gates' verdict. It describes real
    data: it is for the data holder."""

    @property
    def passed(self) -> bool: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...
    def to_html(self, path: PathLike) -> None:
        """Write the self-contained HTML report."""
    def html(self) -> str: ...
    def summary(self) -> str:
        """The text summary ``privsynth audit`` prints."""
    def keys(self) -> KeysView[str]: ...
    def __getitem__(self, key: str) -> Any: ...
    def __contains__(self, key: str) -> bool: ...

class ArrowStream:
    """A synthetic table offered through the Arrow PyCapsule stream protocol (once)."""

    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> object: ...

def audit(
    train: Data,
    holdout: Data,
    synthetic: Data,
    schema: Union[Schema, PathLike],
    table: Optional[str] = None,
    qi: Optional[List[str]] = None,
    secret: Optional[str] = None,
    attacks: int = 2000,
    seed: int = 0,
    gates: Optional[PathLike] = None,
    progress: bool = True,
) -> AuditReport:
    """Audit a synthetic table against the rows it was fitted on (``train``) and real rows it
    never saw (``holdout``): fidelity, memorization and re-identification, with the release
    gates (defaults, or a gates file). The options are those of ``privsynth audit``."""

class LinkedSynthesizer:
    """A DP synthesizer of linked tables with the person as privacy unit (a linked schema):
    ``fit`` a dict of frames by table name (or a folder of one file per table), charged to the
    ledger once; ``sample`` a dict of frames with consistent keys."""

    def __init__(
        self,
        schema: Union[Schema, PathLike],
        epsilon: float = 1.0,
        delta: float = 1e-9,
        mechanism: Literal["aim", "mst"] = "aim",
        *,
        ledger: Optional[PathLike] = None,
        policy: Optional[PathLike] = None,
        iterations: Optional[int] = None,
        degree: int = 2,
        max_cells: float = 10000.0,
        max_model_mb: Optional[float] = None,
        rounds: Optional[int] = None,
        allow_data_domains: bool = False,
        progress: bool = True,
        verbose: bool = True,
    ) -> None: ...
    def fit(self, data: Union[Dict[str, Data], PathLike], name: Optional[str] = None) -> "LinkedSynthesizer": ...
    def sample(
        self, persons: Optional[int] = None, seed: Optional[int] = None, output: Output = "polars"
    ) -> Dict[str, Any]: ...
    def save(self, path: PathLike) -> None: ...
    @staticmethod
    def load(path: PathLike) -> "LinkedSynthesizer": ...
    @property
    def fitted(self) -> bool: ...
    @property
    def messages(self) -> List[str]: ...
    @property
    def ledger_entry(self) -> Optional[int]: ...
    @property
    def privacy(self) -> Dict[str, Any]: ...
