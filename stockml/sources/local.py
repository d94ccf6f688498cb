"""The ``local`` source: a folder of files in tushare's own formats (see the README's data section).

Layout (CSV or parquet, rows in any order):
``daily/<anything>.csv`` (one file per ts_code, or several) or one combined ``daily.csv``;
optional ``adj_factor.csv``, ``index_daily.csv``, ``stock_basic.csv``, ``sentiment.csv`` and
``macro/*.csv`` (wide: a ``month``/``date``/``workTime`` column plus any number of value columns).
The trading calendar is the set of dates present in the bars.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from stockml.columns import REQUIRED, SOURCE_FILE, SOURCE_ROW
from stockml.sources.base import MarketData, ReadError, wanted_tables
from stockml.sources.tushare_format import parse_dates, to_canonical

_SUFFIXES = (".csv", ".parquet")
# Read code and date columns as text so leading zeros and formats survive for the gate.
_TEXT_COLUMNS = (
    "ts_code",
    "con_code",
    "trade_date",
    "cal_date",
    "list_date",
    "delist_date",
    "month",
    "date",
    "workTime",
    "index_code",
)
_CSV_CONVERT = pacsv.ConvertOptions(
    column_types={c: pa.string() for c in _TEXT_COLUMNS}, strings_can_be_null=True
)
_DATE_FILTERED = {"bars", "adj_factor", "index_daily", "sentiment"}
_READERS = 4  # files parsed at once (Arrow's CSV reader releases the GIL): a folder is many small files


def _files(root: Path, stem: str) -> list[Path]:
    """Files of one table: ``stem/*.csv|parquet`` or ``stem.csv|parquet``."""
    folder = root / stem
    if folder.is_dir():
        return sorted(p for p in folder.iterdir() if p.suffix in _SUFFIXES and not p.name.startswith("."))
    return [root / f"{stem}{s}" for s in _SUFFIXES if (root / f"{stem}{s}").is_file()]


def _read_file(path: Path) -> pa.Table:
    """One file as an Arrow table with provenance columns; empty when the file has no rows."""
    if path.stat().st_size == 0:
        return pa.table({})
    if path.suffix == ".parquet":
        table = pq.read_table(path)
    else:
        table = pacsv.read_csv(path, convert_options=_CSV_CONVERT)
    rows = np.arange(table.num_rows, dtype=np.int64)
    return table.append_column(
        SOURCE_FILE, pa.repeat(pa.scalar(str(path), pa.string()), table.num_rows)
    ).append_column(SOURCE_ROW, pa.array(rows))


def _to_frame(tables: list[pa.Table]) -> pd.DataFrame:
    """Concatenate in Arrow when the files agree on types (fast); else let pandas reconcile them."""
    if all(t.schema == tables[0].schema for t in tables):
        return pa.concat_tables(tables).to_pandas()
    return pd.concat([t.to_pandas() for t in tables], ignore_index=True)


def read_table(table: str, paths: list[Path]) -> tuple[pd.DataFrame | None, list[ReadError]]:
    """Read and normalise every file of a table; report empty files and missing required columns."""
    tables: list[pa.Table] = []
    errors: list[ReadError] = []
    names: dict[tuple[str, ...], set[str]] = {}  # canonical names by header: files mostly share one
    with ThreadPoolExecutor(max_workers=_READERS) as pool:
        raws = list(pool.map(_read_file, paths))
    for path, raw in zip(paths, raws, strict=True):
        if raw.num_rows == 0:
            errors.append(ReadError(table, str(path), "empty file"))
            continue
        if table == "macro":  # wide -> long per file: each file is its own macro table
            raw = pa.Table.from_pandas(to_canonical(table, raw.to_pandas(), str(path)), preserve_index=False)
        header = tuple(raw.column_names)
        if header not in names:
            names[header] = set(to_canonical(table, raw.slice(0, 0).to_pandas()).columns)
        missing = [c for c in REQUIRED[table] if c not in names[header]]
        if missing:
            errors.extend(ReadError(table, str(path), "column_in_dataframe", column=c) for c in missing)
            continue
        tables.append(raw)
    if not tables:
        return None, errors
    return to_canonical(table, _to_frame(tables)), errors


@dataclass
class LocalSource:
    """Reads a folder once (lazily) and serves any date range and symbol subset from it.

    ``today`` bounds the plausible dates: a row dated after it is served with every range, so that the
    gate reports it wherever it sits in the files.
    """

    # The whole folder is read into memory on first use whatever the chunks, so a backfill takes the
    # range in one chunk: by year would cost ~0.1 s a chunk (57 symbols x 14 years: 2.4 s, not 1.1 s)
    # and bound only the copies made per chunk (~0.7 KiB a bar in one chunk, ~0.45 by year; 300 x 10
    # years: 0.55 GiB vs 0.35). For a folder of many millions of bars, ``--chunk-days 366``.
    chunk_days: ClassVar[int | None] = None

    root: Path
    name: str = "local"
    today: Callable[[], dt.date] = field(default=dt.date.today, repr=False)
    _cache: MarketData | None = field(default=None, repr=False)
    _dates: dict[str, pd.Series] = field(default_factory=dict, repr=False)  # parsed once per table

    def _load(self) -> MarketData:
        if self._cache is not None:
            return self._cache
        if not self.root.is_dir():
            raise FileNotFoundError(f"local source folder {self.root} does not exist")
        stems = {
            "bars": "daily",
            "adj_factor": "adj_factor",
            "index_daily": "index_daily",
            "stock_basic": "stock_basic",
            "sentiment": "sentiment",
            "macro": "macro",
        }
        tables: dict[str, pd.DataFrame | None] = {}
        errors: list[ReadError] = []
        for table, stem in stems.items():
            tables[table], table_errors = read_table(table, _files(self.root, stem))
            errors.extend(table_errors)
        if tables["bars"] is None and not errors:
            raise FileNotFoundError(
                f"no daily bars in {self.root}: expected daily/<ts_code>.csv files or a daily.csv file"
            )
        bars = tables.pop("bars")
        if bars is None:
            bars = pd.DataFrame(columns=list(REQUIRED["bars"]))
        self._cache = MarketData(bars=bars, read_errors=tuple(errors)).with_tables(**tables)
        return self._cache

    def fetch(
        self,
        start: dt.date,
        end: dt.date,
        symbols: Sequence[str] | None = None,
        *,
        tables: Collection[str] | None = None,
    ) -> MarketData:
        data = self._load()
        wanted = wanted_tables(tables)
        out: dict[str, pd.DataFrame | None] = {}
        for table, frame in data.tables().items():
            if table in wanted:
                dates = self._dates_of(table) if table in _DATE_FILTERED else None
                out[table] = _slice(table, frame, dates, start, end, symbols, self.today())
        bars = out.pop("bars", data.bars.iloc[:0])
        errors = tuple(e for e in data.read_errors if e.table in wanted)
        return MarketData(bars=bars, read_errors=errors).with_tables(**out)

    def _dates_of(self, table: str) -> pd.Series:
        """A table's trade dates, parsed once (a backfill in chunks slices the folder many times)."""
        if table not in self._dates:
            self._dates[table] = parse_dates(getattr(self._load(), table)["trade_date"])
        return self._dates[table]

    def trading_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        dates = self._dates_of("bars").dropna().unique()
        days = sorted(d.date() for d in pd.DatetimeIndex(dates))
        return [d for d in days if start <= d <= end]

    def index_constituents(self, index_code: str) -> list[str]:
        return []


def _slice(
    table: str,
    frame: pd.DataFrame,
    dates: pd.Series | None,
    start: dt.date,
    end: dt.date,
    symbols: Sequence[str] | None,
    today: dt.date,
) -> pd.DataFrame:
    """Rows in range and universe; ``dates`` are the parsed trade dates of a date-filtered table.

    Rows no range can hold -- a date the gate cannot parse, or one after ``today`` -- are kept whatever
    the range, so that the gate reports them (file, row, column) instead of the slice dropping them unseen.
    """
    keep = pd.Series(True, index=frame.index)
    if dates is not None:
        in_range = dates.between(pd.Timestamp(start), pd.Timestamp(end))
        keep &= in_range | dates.isna() | (dates > pd.Timestamp(today))
    if symbols is not None and table in _DATE_FILTERED - {"index_daily"}:
        keep &= frame["ts_code"].isin(list(symbols))
    return frame if keep.all() else frame[keep]
