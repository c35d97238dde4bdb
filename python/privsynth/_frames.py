"""Frames in and out of the native module through the Arrow C stream interface
(``__arrow_c_stream__``): nothing goes through text."""

from typing import Any, Dict, List, Tuple


def _kind(obj: Any) -> str:
    mod = type(obj).__module__.split(".")[0]
    return mod


def _unconvertible(df: Any, label: str) -> Exception:
    import pyarrow as pa

    from .errors import InputError

    for c in df.columns:
        try:
            pa.array(df[c], from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError):
            return InputError(
                "%s, column %r: cannot be converted to an Arrow column (mixed types in an object "
                "column?); the value is not shown here" % (label, str(c)),
                file=label,
                column=str(c),
            )
    return InputError("%s: cannot be converted to an Arrow table" % label, file=label)


def to_stream(obj: Any, name: str) -> Tuple[Any, str]:
    """An object with ``__arrow_c_stream__`` for ``obj`` and the name it has in messages."""
    kind = _kind(obj)
    if kind == "pandas":
        import pyarrow as pa

        if not hasattr(obj, "columns"):
            raise TypeError("privsynth reads a pandas DataFrame, not a %s" % type(obj).__name__)
        label = name if name != "<data frame>" else "<pandas.DataFrame>"
        try:
            # The index is not a column of the table (pandas would add it as
            # `__index_level_0__`).
            table = pa.Table.from_pandas(obj, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError):
            # pyarrow's message quotes the cell it could not convert: name the column only.
            raise _unconvertible(obj, label) from None
        return table, label
    if kind == "polars" and type(obj).__name__ == "LazyFrame":
        obj = obj.collect()
    if hasattr(obj, "__arrow_c_stream__"):
        label = name if name != "<data frame>" else "<%s.%s>" % (kind, type(obj).__name__)
        return obj, label
    raise TypeError(
        "privsynth reads a pandas or polars DataFrame, a pyarrow Table, an object with "
        "__arrow_c_stream__, or a path; got %s" % type(obj).__name__
    )


def from_stream(stream: Any, output: str, categories: Dict[str, List[str]]) -> Any:
    """The synthetic table as ``output``: "polars", "pandas" or "arrow". Categorical columns
    keep the schema's categories, in its order (polars Enum, pandas Categorical)."""
    if output == "polars":
        import polars as pl

        df = pl.DataFrame(stream)
        casts = [pl.col(c).cast(pl.Enum(cats)) for c, cats in categories.items()]
        return df.with_columns(casts) if casts else df
    if output in ("pandas", "arrow"):
        import pyarrow as pa

        table = pa.table(stream)
        if output == "arrow":
            import pyarrow.compute as pc

            for c, cats in categories.items():
                i = table.column_names.index(c)
                dictionary = pa.array(cats, pa.string())
                col = table.column(i).combine_chunks()
                codes = pc.index_in(col, value_set=dictionary).cast(pa.int32())
                table = table.set_column(i, c, pa.DictionaryArray.from_arrays(codes, dictionary))
            return table
        import pandas as pd

        # Dates stay dates (datetime64 with day resolution kept as dates by pandas' own
        # `date` objects would lose the dtype); nullable integers and booleans stay nullable.
        df = table.to_pandas(
            types_mapper={
                pa.int64(): pd.Int64Dtype(),
                pa.bool_(): pd.BooleanDtype(),
            }.get,
            date_as_object=False,
        )
        for c, cats in categories.items():
            df[c] = pd.Categorical(df[c], categories=cats)
        return df
    raise ValueError('output must be "polars", "pandas" or "arrow", got %r' % (output,))
