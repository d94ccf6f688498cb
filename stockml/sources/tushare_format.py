"""Tushare-format frames -> canonical frames, in one place.

Values are left as read (strings stay strings): the validation gate parses and reports. This
module only renames, reshapes (wide macro -> long) and attaches provenance, and knows tushare's date
formats (:func:`parse_dates`, shared by the gate and the local source's range slice).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockml.columns import SOURCE_FILE, SOURCE_ROW

# Alternative names seen in tushare and its exports -> canonical names.
_ALIASES = {"con_code": "ts_code", "code": "ts_code", "date": "trade_date", "sentiment": "score"}
# Macro time columns and their frequency.
MACRO_TIME_COLUMNS = {"month": "M", "date": "D", "workTime": "D", "trade_date": "D", "cal_date": "D"}


def to_canonical(table: str, raw: pd.DataFrame, source_file: str | None = None) -> pd.DataFrame:
    """Rename tushare columns to canonical ones; with ``source_file``, attach provenance too.

    Provenance is the file (or API call) and the 0-based row within it; readers that attach it
    themselves pass no ``source_file``. Macro frames are reshaped wide -> long.
    """
    if table == "macro" and source_file is not None:
        return melt_macro(raw, source_file, table_name=source_file.rsplit("/", 1)[-1].split(".")[0])
    renames = {c: _ALIASES[c] for c in raw.columns if c in _ALIASES and _ALIASES[c] not in raw.columns}
    out = raw.rename(columns=renames) if renames else raw
    if source_file is None:
        return out
    return out.assign(**{SOURCE_FILE: source_file, SOURCE_ROW: np.arange(len(out), dtype=np.int64)})


def parse_dates(raw: pd.Series) -> pd.Series:
    """Tushare dates (``YYYYMMDD``, ``YYYY-MM-DD``, or already datetimes) -> datetime64; NaT where a
    value cannot be parsed. One parser, so that a slice by date and the gate agree on every cell."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        return raw.astype("datetime64[ns]")
    text = raw.astype("str").str.strip()
    if pd.api.types.is_float_dtype(raw):
        text = text.str.removesuffix(".0")  # 20240102.0 from a numeric column with gaps
    compact = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    if compact.notna().sum() == text.notna().sum():
        return compact.astype("datetime64[ns]")
    iso = pd.to_datetime(text.where(compact.isna()), format="%Y-%m-%d", errors="coerce")
    return compact.fillna(iso).astype("datetime64[ns]")


def _month_end(text: pd.Series) -> pd.Series:
    """'2024-01' or '202401' -> '2024-01-31'; anything else is left for the gate to report."""
    digits = text.str.replace("-", "", regex=False).str.strip()
    month = pd.to_datetime(digits, format="%Y%m", errors="coerce")
    ends = (month + pd.offsets.MonthEnd(0)).dt.strftime("%Y-%m-%d")
    return ends.where(month.notna(), text)


def melt_macro(raw: pd.DataFrame, source_file: str, table_name: str) -> pd.DataFrame:
    """A wide macro table (one time column, any number of value columns) -> long canonical rows.

    Columns with no numeric value at all (descriptive text such as a curve name) are skipped; empty
    cells are missing observations and dropped; a non-numeric cell in a numeric column is kept so
    that the gate reports it.
    """
    time_col = next((c for c in raw.columns if c in MACRO_TIME_COLUMNS), None)
    if time_col is None:
        raise ValueError(
            f"{source_file}: no time column (expected one of {sorted(MACRO_TIME_COLUMNS)}), "
            f"columns are {list(raw.columns)}"
        )
    freq = MACRO_TIME_COLUMNS[time_col]
    if freq == "D" and raw[time_col].astype(str).str.fullmatch(r"\d{4}-?\d{2}").all():
        freq = "M"  # a 'date' column holding months
    value_cols = [
        c for c in raw.columns if c != time_col and pd.to_numeric(raw[c], errors="coerce").notna().any()
    ]
    period = raw[time_col].astype("string")
    if freq == "M":
        period = _month_end(period)
    wide = raw[value_cols].assign(period_end=period, **{SOURCE_ROW: np.arange(len(raw), dtype=np.int64)})
    long = wide.melt(id_vars=["period_end", SOURCE_ROW], var_name="series", value_name="value")
    long = long[long["value"].notna() & (long["value"].astype(str).str.strip() != "")]
    long = long.assign(table=table_name, freq=freq, **{SOURCE_FILE: source_file})
    return long[["table", "series", "freq", "period_end", "value", SOURCE_FILE, SOURCE_ROW]].reset_index(
        drop=True
    )
