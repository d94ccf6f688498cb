"""Macro series joined point-in-time: a value is used only from its release date on.

Storage keeps ``period_end`` (the month end, or the observation day); this module adds each table's
publication lag to get the release date, takes the latest released value as of every trade date with
``merge_asof``, and reports how old it is. A series that stops being released keeps its last value
but its table's ``stale_flag`` turns on: never silently constant.

``config.macro_mode`` picks what enters the frame. ``changes`` (default): per series only the change
since its previous release, z-scored by the mean and sd of its previous ``macro_z_window`` changes
(``<column>__chg_z``; each release's z uses that release and earlier ones only), plus each table's
``stale_flag``. Raw levels (M1, yields) are non-stationary and identical for every stock on a date: out
of sample they sit far outside their training range and act as date dummies. ``levels``: the values,
``__chg`` when ``macro_changes``, per table ``staleness_days`` and ``stale_flag``. ``none``: nothing.
Values are the stored (final, possibly revised) ones: vintages are not kept, so revisions are a
residual look-ahead this module cannot remove.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockml.features.config import FeatureConfig

PREFIX = "macro"
STALENESS_CAP_DAYS = 366  # beyond a year the exact age carries no information; the flag says it
CHANGE_Z_SUFFIX = "__chg_z"
MIN_Z_CHANGES = 3  # previous changes a z needs; an sd of fewer is noise


@dataclass(frozen=True)
class MacroSeries:
    """One selected series and where it lands in the feature frame."""

    table: str
    series: str
    freq: str
    lag_days: int
    column: str


def safe_name(name: str) -> str:
    """A stable ASCII column-name part: the name itself when already safe, else slug + short hash."""
    slug = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_")
    if slug == name:
        return name
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return f"{slug}_{digest}" if slug else f"h{digest}"


def table_columns(table: str) -> tuple[str, str]:
    """(staleness_days column, stale_flag column) of a table."""
    base = f"{PREFIX}__{safe_name(table)}"
    return f"{base}__staleness_days", f"{base}__stale_flag"


def release_dates(macro: pd.DataFrame, config: FeatureConfig) -> pd.Series:
    """period_end + the table's publication lag (calendar days)."""
    lags = [config.macro_lag(t, f) for t, f in zip(macro["table"], macro["freq"], strict=True)]
    return macro["period_end"] + pd.to_timedelta(np.asarray(lags, dtype=np.int64), unit="D")


def select_series(macro: pd.DataFrame, start: pd.Timestamp, config: FeatureConfig) -> list[MacroSeries]:
    """The series to use, judged only on what was released by ``start``, the first date of the output.

    Explicit ``config.macro_series`` ("table/series") wins. Otherwise a series qualifies when it had at
    least ``macro_min_history`` releases by ``start`` and was not already stale then; within a table
    the longest histories come first (ties by name), and tables take turns up to ``max_macro_series``.
    Judging at the first output date keeps the choice independent of anything later: no output row is
    dated before it, so no data after any output row's date can change the set of columns.
    """
    macro = macro.assign(_release=release_dates(macro, config))
    groups = {key: g for key, g in macro.groupby(["table", "series"], sort=True)}
    if config.macro_series is not None:
        wanted = [(t, s) for t, _, s in (name.partition("/") for name in config.macro_series)]
        missing = [f"{t}/{s}" for t, s in wanted if (t, s) not in groups]
        if missing:
            raise ValueError(f"macro series not in the macro table: {missing}")
        chosen = wanted
    else:
        ranked: dict[str, list[tuple[int, str]]] = {}
        for (table, series), g in groups.items():
            known = g.loc[g["_release"] <= start]
            freq = str(g["freq"].iloc[0])
            if len(known) < config.macro_min_history:
                continue
            if (start - known["_release"].max()).days > config.max_staleness_days[freq]:
                continue
            ranked.setdefault(table, []).append((-len(known), series))
        per_table = [
            [s for _, s in sorted(v)][: config.max_macro_series_per_table] for _, v in sorted(ranked.items())
        ]
        tables = sorted(ranked)
        chosen = [
            (tables[t], names[rank])
            for rank in range(config.max_macro_series_per_table)
            for t, names in enumerate(per_table)
            if rank < len(names)
        ][: config.max_macro_series]
    out = []
    for table, series in chosen:
        freq = str(groups[(table, series)]["freq"].iloc[0])
        column = f"{PREFIX}__{safe_name(table)}__{safe_name(series)}"
        out.append(MacroSeries(table, series, freq, config.macro_lag(table, freq), column))
    return sorted(out, key=lambda s: s.column)


def _release_table(macro: pd.DataFrame, s: MacroSeries, z_window: int) -> pd.DataFrame:
    """One series' releases in order: value, change since the previous release, and that change
    z-scored by the mean and sd of the ``z_window`` changes before it (NaN until there are
    ``min(z_window, MIN_Z_CHANGES)``; 0 when they are flat)."""
    rows = macro.loc[(macro["table"] == s.table) & (macro["series"] == s.series), ["period_end", "value"]]
    rows = rows.sort_values("period_end")
    change = rows["value"].diff()
    past = change.rolling(z_window, min_periods=min(z_window, MIN_Z_CHANGES))
    mean, std = past.mean().shift(1), past.std().shift(1)  # shift: the release itself is not in its scale
    z = ((change - mean) / std).mask((std <= 1e-12) & mean.notna(), 0.0)
    return rows.assign(release=rows["period_end"] + pd.Timedelta(days=s.lag_days), change=change, change_z=z)


def macro_features(
    macro: pd.DataFrame, dates: pd.DatetimeIndex, config: FeatureConfig, select_at: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, list[MacroSeries]]:
    """One row per trade date (index ``dates``, sorted), columns as ``config.macro_mode`` says (see the
    module doc). Per table, ``staleness_days`` is the oldest selected series' age (capped) and
    ``stale_flag`` says it is older than ``max_staleness_days``. Before a series' first release (or
    before its z has history) its values are 0 and its table is flagged stale.
    Series are chosen on what was released by ``select_at`` (default: the first date)."""
    if config.macro_mode == "none" or macro is None or macro.empty or len(dates) == 0:
        return pd.DataFrame(index=dates), []
    macro = macro.loc[np.isfinite(macro["value"].to_numpy(np.float64))]
    macro = macro.assign(period_end=macro["period_end"].astype("datetime64[ns]"))
    dates = pd.DatetimeIndex(dates.astype("datetime64[ns]"), name="trade_date")
    selected = select_series(macro, select_at if select_at is not None else dates[0], config)
    left = pd.DataFrame({"trade_date": dates})
    levels = config.macro_mode == "levels"
    out: dict[str, np.ndarray] = {}
    staleness: dict[str, list[np.ndarray]] = {}
    for s in selected:
        rows = _release_table(macro, s, config.macro_z_window)
        joined = pd.merge_asof(left, rows, left_on="trade_date", right_on="release", direction="backward")
        age = (joined["trade_date"] - joined["release"]).dt.days.to_numpy(np.float64)
        if levels:
            out[s.column] = joined["value"].fillna(0.0).to_numpy(np.float64)
            if config.macro_changes:
                out[f"{s.column}__chg"] = joined["change"].fillna(0.0).to_numpy(np.float64)
        else:
            out[f"{s.column}{CHANGE_Z_SUFFIX}"] = joined["change_z"].fillna(0.0).to_numpy(np.float64)
        staleness.setdefault(s.table, []).append(np.where(np.isnan(age), np.inf, age))
    for table, ages in staleness.items():
        freq = next(s.freq for s in selected if s.table == table)
        oldest = np.max(np.vstack(ages), axis=0)
        days_col, flag_col = table_columns(table)
        if levels:
            out[days_col] = np.minimum(oldest, STALENESS_CAP_DAYS)
        out[flag_col] = (oldest > config.max_staleness_days[freq]).astype(np.float64)
    return pd.DataFrame(out, index=dates), selected


def macro_summary(
    frame: pd.DataFrame, macro: pd.DataFrame, selected: list[MacroSeries]
) -> list[dict[str, object]]:
    """Per selected series: names, its feature columns, lag, last release, and how stale it is at the
    frame's last date (``table_stale_days_fraction`` is None when the frame has no stale flag)."""
    if not selected:
        return []
    last_date = frame.index.max()
    out = []
    for s in selected:
        ends = macro.loc[(macro["table"] == s.table) & (macro["series"] == s.series), "period_end"]
        releases = ends + pd.Timedelta(days=s.lag_days)
        last_release = releases[releases <= last_date].max()
        flag_col = table_columns(s.table)[1]
        out.append(
            {
                "column": s.column,
                "feature_columns": [
                    c for c in frame.columns if c == s.column or c.startswith(f"{s.column}__")
                ],
                "table": s.table,
                "series": s.series,
                "freq": s.freq,
                "lag_days": s.lag_days,
                "last_release": str(last_release.date()),
                "staleness_days_at_end": int((last_date - last_release).days),
                "table_stale_days_fraction": round(float(frame[flag_col].mean()), 4)
                if flag_col in frame.columns
                else None,
            }
        )
    return out
