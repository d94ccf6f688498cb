"""The parquet store: one dataset per table under the lake root, upserts, and the ingest manifest.

Layout: ``<root>/<table>/<YYYY-MM>.parquet`` for daily tables (a file per month of ``trade_date``)
and ``<root>/<table>/all.parquet`` for the others, so ``pyarrow.dataset.dataset(<root>/bars)``,
``pandas.read_parquet`` and DuckDB read a table directly. Writes go to a hidden temporary file in
the same folder and are renamed over the old one, so a run killed at any moment leaves every file
either wholly old or wholly new. The manifest (``<root>/manifest.jsonl``) records each ingest.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from stockml.columns import TABLE_KEYS, TABLE_TIME_COL, TS_CODE
from stockml.sources.base import MarketData

PREDICTIONS = "predictions"
PORTFOLIOS = "portfolios"
MANIFEST = "manifest.jsonl"
WRITE_THREADS = 4  # partitions upserted at once (each its own file)


@dataclass(frozen=True)
class UpsertResult:
    table: str
    rows_in: int
    inserted: int
    updated: int
    files_written: int


def frame_hash(table: str, frame: pd.DataFrame) -> str:
    """A content hash of a table's rows, independent of their order."""
    ordered = frame.sort_values(list(TABLE_KEYS[table]), kind="stable").reset_index(drop=True)
    digest = hashlib.sha256(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    digest.update(",".join(map(str, ordered.columns)).encode())
    return digest.hexdigest()[:16]


def _partition(table: str, frame: pd.DataFrame) -> pd.Series:
    """Partition label of each row: ``YYYY-MM`` of the time column, or ``all``."""
    time_col = TABLE_TIME_COL[table]
    if time_col is None:
        return pd.Series("all", index=frame.index)
    months = frame[time_col].dt.year * 100 + frame[time_col].dt.month  # int arithmetic, not strftime
    labels = {m: f"{m // 100:04d}-{m % 100:02d}" for m in months.unique()}
    return months.map(labels)


def _write_atomic(frame: pd.DataFrame | pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _same_rows(stored: pa.Table, incoming: pa.Table) -> bool:
    """Whether a partition file already holds exactly ``incoming`` (the same columns, types and rows in
    the same order, nulls where nulls are), as a rerun of the same data finds it: files are written
    sorted by their keys, as ``incoming`` is. False says nothing: the merge decides."""
    if stored.num_rows != incoming.num_rows or stored.column_names != incoming.column_names:
        return False
    return stored.schema.equals(incoming.schema, check_metadata=False) and stored.equals(incoming)


def _merge(old: pd.DataFrame | None, new: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, int, int]:
    """New rows win on key clashes. Returns the merged frame, rows inserted and rows changed."""
    new = new.drop_duplicates(keys, keep="last")
    if old is None or old.empty:
        return new.sort_values(keys).reset_index(drop=True), len(new), 0
    joined = new.merge(old, on=keys, how="left", suffixes=("", "__old"), indicator=True)
    seen = (joined["_merge"] == "both").to_numpy()
    changed = pd.Series(set(new.columns) != set(old.columns), index=joined.index)
    for column in (c for c in new.columns if c in old.columns and c not in keys):
        a, b = joined[column], joined[f"{column}__old"]
        changed |= ~((a == b) | (a.isna() & b.isna()))
    inserted, updated = int((~seen).sum()), int((changed.to_numpy() & seen).sum())
    if inserted == 0 and updated == 0:
        return old, 0, 0
    untouched = old.merge(new[keys], on=keys, how="left", indicator=True)["_merge"] == "left_only"
    merged = pd.concat([old[untouched.to_numpy()], new], ignore_index=True)
    return merged.sort_values(keys).reset_index(drop=True), inserted, updated


@dataclass(frozen=True)
class Lake:
    """The local data lake rooted at ``root``."""

    root: Path

    def table_dir(self, table: str) -> Path:
        return self.root / table

    def files(self, table: str) -> list[Path]:
        folder = self.table_dir(table)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))

    def tables(self) -> list[str]:
        return [t for t in TABLE_KEYS if self.files(t)]

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One writer at a time (an advisory lock on ``<root>/.lock``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def upsert(self, table: str, frame: pd.DataFrame) -> UpsertResult:
        """Insert new keys, replace changed rows; an unchanged partition is not rewritten."""
        keys = list(TABLE_KEYS[table])
        folder = self.table_dir(table)
        folder.mkdir(parents=True, exist_ok=True)
        new = frame.drop_duplicates(keys, keep="last")
        new = new.assign(_part=_partition(table, new)).sort_values(["_part", *keys], kind="stable")
        bounds = np.flatnonzero(new["_part"].to_numpy()[1:] != new["_part"].to_numpy()[:-1]) + 1
        starts, ends = np.r_[0, bounds], np.r_[bounds, len(new)]
        labels = new["_part"].to_numpy()
        new = new.drop(columns="_part").reset_index(drop=True)
        arrow = pa.Table.from_pandas(new, preserve_index=False)  # converted once, sliced per partition

        def merge(lo: int, hi: int, path: Path) -> tuple[int, int, int]:
            stored = pq.read_table(path)
            if _same_rows(stored, arrow.slice(lo, hi - lo)):  # a rerun: nothing to merge or write
                return 0, 0, 0
            merged, ins, upd = _merge(stored.to_pandas(), new.iloc[lo:hi], keys)
            if ins or upd:
                _write_atomic(merged, path)
            return ins, upd, int(bool(ins or upd))

        def write(lo: int, hi: int, path: Path) -> tuple[int, int, int]:
            _write_atomic(arrow.slice(lo, hi - lo), path)  # a new partition: the sorted slice is the file
            return int(hi - lo), 0, 1

        # an empty frame has no partition (its one (0, 0) span has no label)
        fresh: list[tuple[int, int, Path]] = []
        existing: list[tuple[int, int, Path]] = []
        for lo, hi in zip(starts, ends, strict=True) if len(new) else []:
            path = folder / f"{labels[lo]}.parquet"
            (existing if path.exists() else fresh).append((lo, hi, path))
        # New partitions are pure parquet writes and fsyncs, which release the GIL: a few threads overlap
        # them. Merges into existing files are mostly pandas (GIL-bound): one at a time.
        with ThreadPoolExecutor(max_workers=min(WRITE_THREADS, max(len(fresh), 1))) as pool:
            counts = list(pool.map(lambda span: write(*span), fresh))
        counts += [merge(*span) for span in existing]
        inserted, updated, written = (sum(c[i] for c in counts) for i in range(3))
        return UpsertResult(table, len(frame), inserted, updated, written)

    def read(
        self,
        table: str,
        start: dt.date | None = None,
        end: dt.date | None = None,
        symbols: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Rows of a table, optionally within [start, end] and a symbol list."""
        files = self.files(table)
        if not files:
            raise FileNotFoundError(f"table {table!r} is not in the lake at {self.root}; ingest it first")
        time_col = TABLE_TIME_COL[table]
        if time_col is not None:
            lo = f"{start:%Y-%m}" if start else ""
            hi = f"{end:%Y-%m}" if end else "9999"
            files = [f for f in files if lo <= f.stem <= hi]
        dataset = pads.dataset([str(f) for f in files], format="parquet")
        expr = None
        if time_col is not None and start is not None:
            expr = pads.field(time_col) >= pa.scalar(pd.Timestamp(start), type=pa.timestamp("ns"))
        if time_col is not None and end is not None:
            cond = pads.field(time_col) <= pa.scalar(pd.Timestamp(end), type=pa.timestamp("ns"))
            expr = cond if expr is None else expr & cond
        if symbols is not None and TS_CODE in TABLE_KEYS[table]:
            cond = pads.field(TS_CODE).isin(list(symbols))
            expr = cond if expr is None else expr & cond
        result = dataset.to_table(filter=expr, columns=list(columns) if columns else None)
        return result.to_pandas().reset_index(drop=True)

    def table_hashes(self) -> dict[str, str]:
        """:meth:`table_hash` of every stored table (a run's data lineage)."""
        return {t: self.table_hash(t) for t in self.tables()}

    def table_hash(self, table: str) -> str:
        """A hash of the table's files' bytes: equal hashes mean equal stored content."""
        digest = hashlib.sha256()
        for path in self.files(table):
            digest.update(path.name.encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()[:16]

    # --- manifest ---------------------------------------------------------------------------
    def manifest(self) -> list[dict]:
        path = self.root / MANIFEST
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def predictions_path(self, as_of: dt.date, name: str = "daily") -> Path:
        """``<root>/predictions/<name>/<as_of>.parquet``: one file per forecast day, replaced on rerun."""
        return self._dated_path(PREDICTIONS, name, as_of)

    def write_predictions(self, frame: pd.DataFrame, as_of: dt.date, name: str = "daily") -> Path:
        return self._write_dated(frame, self.predictions_path(as_of, name))

    def portfolio_path(self, as_of: dt.date, name: str = "daily") -> Path:
        """``<root>/portfolios/<name>/<as_of>.parquet``: the target book for the session after ``as_of``."""
        return self._dated_path(PORTFOLIOS, name, as_of)

    def write_portfolio(self, frame: pd.DataFrame, as_of: dt.date, name: str = "daily") -> Path:
        return self._write_dated(frame, self.portfolio_path(as_of, name))

    def _dated_path(self, kind: str, name: str, as_of: dt.date) -> Path:
        return self.root / kind / name / f"{as_of:%Y-%m-%d}.parquet"

    @staticmethod
    def _write_dated(frame: pd.DataFrame, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(frame, path)
        return path

    def previous_portfolio(self, as_of: dt.date, name: str = "daily") -> pd.DataFrame | None:
        """The last target book written for a day before ``as_of`` (None when there is none), so a rerun
        of ``as_of`` starts from the same book as its first run."""
        earlier = [
            p for p in (self.root / PORTFOLIOS / name).glob("*.parquet") if p.stem < f"{as_of:%Y-%m-%d}"
        ]
        return pd.read_parquet(max(earlier)) if earlier else None

    def read_predictions(self, name: str = "daily") -> pd.DataFrame:
        """Every forecast day of ``name``, in date order (empty frame when none)."""
        files = sorted((self.root / PREDICTIONS / name).glob("*.parquet"))
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()

    def append_manifest(self, entry: dict) -> None:
        """Append one entry, atomically (rewrite aside, then rename)."""
        path = self.root / MANIFEST
        lines = path.read_text() if path.exists() else ""
        tmp = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
        tmp.write_text(lines + json.dumps(entry, ensure_ascii=False, sort_keys=True, default=str) + "\n")
        os.replace(tmp, path)


def lake_summary(lake: Lake) -> dict:
    """What the lake holds: tables, bars, symbols and date range (read from the bars' keys only)."""
    summary: dict = {"root": str(lake.root), "tables": lake.tables(), "bars": 0, "symbols": 0}
    summary.update(first_date=None, last_date=None)
    if "bars" in summary["tables"]:
        keys = lake.read("bars", columns=["ts_code", "trade_date"])
        summary.update(
            bars=len(keys),
            symbols=int(keys["ts_code"].nunique()),
            first_date=str(keys["trade_date"].min().date()),
            last_date=str(keys["trade_date"].max().date()),
        )
    return summary


def read_market(
    lake: Lake, start: dt.date | None, end: dt.date, symbols: Sequence[str] | None = None
) -> MarketData:
    """The validated tables the feature pipeline needs, as stored, up to ``end`` (macro: every period
    up to ``end``; publication lags are the feature pipeline's job)."""
    present = set(lake.tables())
    if "bars" not in present:
        raise FileNotFoundError(f"no bars in the lake at {lake.root}; run a backfill first")

    def dated(table: str) -> pd.DataFrame | None:
        return (
            lake.read(table, start, end, symbols if table != "index_daily" else None)
            if table in present
            else None
        )

    macro = lake.read("macro") if "macro" in present else None
    if macro is not None:
        macro = macro[macro["period_end"] <= pd.Timestamp(end)].reset_index(drop=True)
    return MarketData(
        bars=dated("bars"),  # type: ignore[arg-type]
        adj_factor=dated("adj_factor"),
        index_daily=dated("index_daily"),
        sentiment=dated("sentiment"),
        stock_basic=lake.read("stock_basic") if "stock_basic" in present else None,
        macro=macro,
        trade_cal=lake.read("trade_cal") if "trade_cal" in present else None,
    )


def lake_lineage(lake: Lake, as_of: dt.date | None = None) -> dict:
    """What a run read from the lake: where it lies, every table's content hash (and the as-of day of a
    dated run)."""
    dated = {"as_of": str(as_of)} if as_of is not None else {}
    return {"lake_root": str(lake.root.resolve()), "lake_hashes": lake.table_hashes(), **dated}


def bars_hash(lake: Lake, start: dt.date, end: dt.date, symbols: Sequence[str] | None) -> str:
    """A content hash of the bars of ``symbols`` in [start, end], their source-file columns aside: equal
    hashes mean a retrain on that window reads the same bars."""
    bars = lake.read("bars", start, end, symbols)
    return frame_hash("bars", bars.drop(columns=["source_file", "source_row"], errors="ignore"))
