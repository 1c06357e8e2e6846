"""Table: rows of values, where a cell may be a media object (a table of Image predictions).

Reference: {"_type": "table-file", "path", "sha256", "size", "ncols", "nrows", "columns",
"format": "json"|"parquet", "refs"?: [the media refs of the cells, each file once]}

The JSON file is {"columns": [...], "data": [[...], ...]}, a media cell being its reference;
JSON has no NaN or infinity: such a number is null in "data" and named in "nf" at its place
(`store.recordlog.pack`: {"<row>": {"<column index>": "nan"|"inf"|"-inf"}}), so it reads back.
Tables of more than `JSON_MAX_ROWS` rows (or more than `JSON_MAX_BYTES` as JSON) are stored as
Parquet when pyarrow is installed: one column per table column; a column of numbers, strings or
booleans is typed, any other column (media cells, lists, dicts, mixed types) holds each cell as
its JSON text and its field metadata says so: {"nbtracker.encoding": "media"|"json"}.
Column names may repeat (as in wandb): columns are stored and read by place, never by name.

Ragged rows: a short row is padded with None; a long row adds columns ("col3", ...) that the
earlier rows hold None in. Either way `log()` warns once and nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ...store.media import ENCODING_KEY  # noqa: F401  (the reader's name for the key)
from .base import Media, MediaError, plain, store_bytes

JSON_MAX_ROWS = 1000
JSON_MAX_BYTES = 1 << 20
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def _is_dataframe(v: Any) -> bool:
    return hasattr(v, "columns") and hasattr(v, "iloc") and hasattr(v, "dtypes")


def _frame_rows(df: Any) -> list[list]:
    """A DataFrame's rows, column by column. A NaN in a column of numbers (or of Python
    objects) is a number and stays NaN; a missing value (None, pd.NA, NaT, or the NaN by which
    pandas marks a missing string, category or date) is None."""
    from pandas.api.types import is_complex_dtype, is_float_dtype, is_object_dtype

    cols = []
    for j in range(df.shape[1]):
        s = df.iloc[:, j]  # by place: column names may repeat
        values = s.astype(object).tolist()
        if s.hasnans:
            numbers = is_float_dtype(s.dtype) or is_complex_dtype(s.dtype) or is_object_dtype(
                s.dtype)
            values = [None if _absent(v, numbers) else v for v in values]
        cols.append(values)
    return [list(r) for r in zip(*cols)] if cols else [[] for _ in range(len(df))]


def _absent(v: Any, numbers: bool) -> bool:
    import numpy as np
    import pandas as pd

    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float):
        return v != v and not numbers
    if isinstance(v, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(v))
    return False


class Table(Media):
    """A table: `Table(columns=[...], data=[[...], ...])` or `Table(dataframe=df)`; cells may
    be numbers, strings, lists, dicts or media (`nbtracker.Image(...)`, ...).

    >>> t = nbtracker.Table(columns=["id", "image", "pred"])
    >>> t.add_data(1, nbtracker.Image(x), "cat"); nbtracker.log({"predictions": t})
    """

    def __init__(self, columns: Sequence[Any] | None = None, data: Any = None,
                 rows: Any = None, dataframe: Any = None, dtype: Any = None,
                 optional: Any = True, allow_mixed_types: bool = False, log_mode: Any = None,
                 **kwargs: Any):
        self.columns: list[str] = []
        self.data: list[list] = []
        self._short = self._long = 0
        data = rows if data is None else data
        try:
            if dataframe is None and _is_dataframe(data):
                dataframe, data = data, None
            if dataframe is not None:
                columns = [str(c) for c in dataframe.columns]
                data = _frame_rows(dataframe)
            elif data is not None and hasattr(data, "tolist") and hasattr(data, "ndim"):
                if data.ndim != 2:
                    raise MediaError(f"a table needs 2-d data, not an array of shape "
                                     f"{tuple(data.shape)}")
                data = data.tolist()
            if data is not None and not isinstance(data, (list, tuple)):
                data = list(data)
            if columns is not None:
                self.columns = [str(c) for c in columns]
            elif data:
                widths = [len(r) for r in data if isinstance(r, (list, tuple))]
                self.columns = [f"col{i}" for i in range(max(widths, default=0))]
        except MediaError as e:
            self._fail(str(e))
            return
        except Exception as e:  # whatever foreign objects throw: reported at log()
            self._fail(f"could not read the table's columns and rows: {e}")
            return
        for r in data or []:
            self.add_data(*(r if isinstance(r, (list, tuple)) else [r]))

    # -- building ----------------------------------------------------------------------
    def add_data(self, *data: Any) -> None:
        """Add a row. A row shorter than the columns is padded with None; a longer one adds
        columns (col<i>); `log()` warns about both once."""
        row = list(data)
        n = len(self.columns)
        if len(row) < n:
            self._short += 1
            row += [None] * (n - len(row))
        elif len(row) > n:
            self._long += 1
            self.columns += [self._free_name(f"col{i}") for i in range(n, len(row))]
            for r in self.data:
                r += [None] * (len(row) - n)
        self.data.append(row)

    def add_column(self, name: str, data: Sequence[Any], optional: bool = False) -> None:
        """Add a column of values, one per row."""
        try:
            values = list(data)
        except TypeError:
            self._note(f"add_column({name!r}) needs a sequence of values, not "
                       f"{type(data).__name__}; the column was not added")
            return
        name = str(name)
        if name in self.columns:
            new = self._free_name(name)
            self._note(f"a column {name!r} exists already; the new one is named {new!r}")
            name = new
        if self.data and len(values) != len(self.data):
            self._note(f"column {name!r} has {len(values)} values for {len(self.data)} rows; "
                       "the shorter side is padded with None")
        width = len(self.columns)
        while len(self.data) < len(values):
            self.data.append([None] * width)
        for i, r in enumerate(self.data):
            r.append(values[i] if i < len(values) else None)
        self.columns.append(name)

    def add_computed_columns(self, fn: Callable[[int, dict], dict]) -> None:
        """Add the columns `fn(index, row_as_dict) -> {name: value}` gives for each row."""
        new = [fn(i, dict(zip(self.columns, r))) for i, r in enumerate(self.data)]
        names = list(dict.fromkeys(k for d in new for k in d))
        for k in names:
            self.add_column(k, [d.get(k) for d in new])

    def _free_name(self, name: str) -> str:
        if name not in self.columns:
            return name
        i = 2
        while f"{name}_{i}" in self.columns:
            i += 1
        return f"{name}_{i}"

    # -- reading -----------------------------------------------------------------------
    def get_column(self, name: str, convert_to: str | None = None) -> Any:
        """The values of column `name` (a numpy array with convert_to="numpy")."""
        j = self.columns.index(name)
        values = [r[j] for r in self.data]
        if convert_to == "numpy":
            import numpy as np

            return np.array(values)
        return values

    def get_index(self) -> list[int]:
        return list(range(len(self.data)))

    def get_dataframe(self):
        """The table as a pandas DataFrame (media cells as the media objects)."""
        import pandas as pd

        return pd.DataFrame(self.data, columns=self.columns)

    def iterrows(self) -> Iterator[tuple[int, list]]:
        yield from enumerate(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"<nbtracker.Table {len(self.data)} rows x {len(self.columns)} columns>"

    # -- writing -----------------------------------------------------------------------
    def _bind(self, media_dir: Path) -> dict:
        if self._short:
            self._note(f"{self._short} row(s) had fewer values than the {len(self.columns)} "
                       "columns; padded with None")
        if self._long:
            self._note(f"{self._long} row(s) had more values than the columns; columns were "
                       "added for them")
        refs: dict[str, dict] = {}
        media_cols: set[int] = set()
        rows = []
        for i, r in enumerate(self.data):
            out = []
            for j, v in enumerate(r):
                cell, is_media = self._cell(media_dir, v, i, j)
                if is_media:
                    media_cols.add(j)
                    if "sha256" in cell:
                        refs.setdefault(cell["sha256"], cell)
                out.append(cell)
            rows.append(out)
        import orjson

        body = orjson.dumps({"columns": self.columns, "data": rows})
        if b"null" in body:  # None, or NaN/±inf (JSON has neither): named in "nf" to read back
            from ...store.recordlog import pack

            packed, nf = pack(rows)
            if nf:
                body = orjson.dumps({"columns": self.columns, "data": packed, "nf": nf})
        fmt = "json"
        if len(rows) > JSON_MAX_ROWS or len(body) > JSON_MAX_BYTES:
            try:
                body, fmt = _parquet(self.columns, rows, media_cols), "parquet"
            except ImportError:
                pass
        stored = store_bytes(media_dir, "tables", body, "parquet" if fmt == "parquet"
                             else "table.json")
        ref = {"_type": "table-file", **stored, "ncols": len(self.columns), "nrows": len(rows),
               "columns": list(self.columns), "format": fmt}
        if refs:
            ref["refs"] = list(refs.values())
        return ref

    def _cell(self, media_dir: Path, v: Any, i: int, j: int) -> tuple[Any, bool]:
        from . import as_media

        m = v if getattr(v, "_nbtracker_media", False) else as_media(v)
        if m is not None:
            try:
                ref = m.bind(media_dir)
            except Exception as e:
                self._note(f"row {i} column {self.columns[j]!r}: {type(m).__name__} left out "
                           f"({e})")
                return None, False
            for n in m._notes or ():
                self._note(f"row {i} column {self.columns[j]!r}: {n}")
            return ref, True
        return _json_cell(v), False


def _json_cell(v: Any) -> Any:
    v = plain(v)
    if isinstance(v, int) and not isinstance(v, bool) and not _INT_MIN <= v <= _INT_MAX:
        return str(v)
    if isinstance(v, (list, dict)):
        import orjson

        try:
            orjson.dumps(v)
        except TypeError:  # an int beyond 64 bits somewhere inside
            return str(v)
    return v


def _json_text(v: Any) -> str:
    """A cell as JSON text; NaN and ±inf (null in JSON) as Python's json writes them (NaN,
    Infinity), which json.loads reads back."""
    import orjson

    text = orjson.dumps(v).decode()
    if "null" in text:
        from ...store.recordlog import pack

        if pack(v)[1] is not None:
            import json

            return json.dumps(v)
    return text


def _parquet(columns: list[str], rows: list[list], media_cols: set[int]) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    fields, arrays = [], []
    for j, name in enumerate(columns):
        values = [r[j] for r in rows]
        kinds = {type(v) for v in values if v is not None}
        encoding = None
        arr = None
        if j in media_cols:
            encoding = b"media"
        elif kinds <= {str} or kinds <= {bool} or kinds <= {int} or kinds <= {int, float}:
            try:
                arr = pa.array([float(v) if kinds == {int, float} and v is not None else v
                                for v in values])
            except (pa.ArrowException, OverflowError):
                arr = None
            if arr is None:
                encoding = b"json"
        else:
            encoding = b"json"
        if encoding is not None:
            arr = pa.array([None if v is None else _json_text(v) for v in values], pa.string())
        if arr.type == pa.null():
            arr = pa.array(values, pa.string())
        fields.append(pa.field(name, arr.type,
                               metadata={ENCODING_KEY: encoding} if encoding else None))
        arrays.append(arr)
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()
