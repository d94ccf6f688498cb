"""Charts for a run's artifacts: forecast fans, quantile calibration, PIT histograms, interval coverage
by fold and over time, and backtest equity curves (matplotlib, Agg backend).

Inputs are the evaluation's long prediction frames (``ts_code``, ``date``, ``horizon``, ``q<level>``,
``y_true``, ``last_close``, ``fold``) or tables computed from them; each plot function writes one PNG and
returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stockml.evaluation.aggregate import INTERVALS, pit_rows, quantile_columns
from stockml.evaluation.metrics import pit_histogram


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def calibration_table(preds: pd.DataFrame, quantiles: Sequence[float]) -> pd.DataFrame:
    """Share of realised values at or below each predicted quantile, per horizon (ideal: the level)."""
    cols = quantile_columns(preds, quantiles)
    known = preds[preds["y_true"].notna()]
    rows = []
    for h, part in known.groupby("horizon", sort=True):
        y = part["y_true"].to_numpy()
        for level, col in cols.items():
            rows.append({"horizon": int(h), "level": level, "observed": float(np.mean(y <= part[col]))})
    return pd.DataFrame(rows, columns=["horizon", "level", "observed"])


def calibration_plot(preds: pd.DataFrame, quantiles: Sequence[float], path: Path, title: str) -> Path:
    plt = _pyplot()
    table = calibration_table(preds, quantiles)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="ideal")
    for h, part in table.groupby("horizon"):
        ax.plot(part["level"], part["observed"], marker="o", label=f"h={h}")
    ax.set(xlabel="quantile level", ylabel="share of outcomes below the quantile", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def pit_table(preds: pd.DataFrame, quantiles: Sequence[float], bins: int = 10) -> pd.DataFrame:
    """Share of PIT values in each of ``bins`` equal bins, per horizon (ideal: ``1 / bins`` each)."""
    values = pit_rows(preds, quantiles)
    rows = []
    for h, part in values.groupby(preds["horizon"], sort=True):
        shares = pit_histogram(part.to_numpy(), bins)
        rows += [{"horizon": int(h), "bin": b, "share": float(v)} for b, v in enumerate(shares)]
    return pd.DataFrame(rows, columns=["horizon", "bin", "share"])


def pit_plot(preds: pd.DataFrame, quantiles: Sequence[float], path: Path, title: str, bins: int = 10) -> Path:
    """PIT histogram as a density (uniform = 1): horizon 1 as bars, the other horizons as outlines.
    Flat: calibrated; U: intervals too narrow; hump: too wide; slope: biased median."""
    plt = _pyplot()
    table = pit_table(preds, quantiles, bins)
    edges = np.linspace(0.0, 1.0, bins + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    for h, part in table.groupby("horizon"):
        density = part["share"].to_numpy() * bins
        if h == table["horizon"].min():
            ax.bar(edges[:-1], density, width=1.0 / bins, align="edge", alpha=0.5, label=f"h={h}")
        else:
            ax.stairs(density, edges, lw=1, label=f"h={h}")
    ax.axhline(1.0, color="grey", linestyle="--", label="uniform")
    ax.set(xlabel="PIT: forecast CDF at the outcome", ylabel="density", xlim=(0, 1), title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def coverage_plot(per_fold: pd.DataFrame, rolling: pd.DataFrame, window: int, path: Path, title: str) -> Path:
    """Left: each fold's 50/80/90% interval coverage (``per_fold``: ``fold``, ``coverage_50`` ...) against
    the nominal lines. Right: ``rolling`` 90% coverage over the last ``window`` as-of dates (``date``,
    ``coverage``, ``fold``: :func:`~stockml.evaluation.aggregate.rolling_coverage`), dotted lines where a
    fold starts."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 2]})
    folds = per_fold["fold"].to_numpy()
    width = 0.8 / len(INTERVALS)
    for i, mass in enumerate(INTERVALS):
        pct = round(mass * 100)
        observed = per_fold[f"coverage_{pct}"].to_numpy(dtype=np.float64)  # None (undefined) -> NaN
        offset = (i - (len(INTERVALS) - 1) / 2) * width  # the intervals side by side around the fold
        left.bar(folds + offset, observed, width=width, color=f"C{i}", label=f"{pct}%")
        left.axhline(mass, color=f"C{i}", linestyle="--", lw=1)
    left.set(xlabel="fold", ylabel="coverage (dashed: nominal)", ylim=(0, 1), xticks=folds, title=title)
    left.legend(fontsize=8, loc="lower right")
    shown = rolling.dropna(subset=["coverage"])
    right.plot(pd.to_datetime(shown["date"]), shown["coverage"], color="C2", label="90% interval")
    right.axhline(0.9, color="C2", linestyle="--", lw=1, label="nominal")
    if "fold" in rolling:
        for start in rolling.groupby("fold")["date"].min().iloc[1:]:
            right.axvline(pd.Timestamp(start), color="grey", linestyle=":", lw=1)
    if shown.empty:
        right.text(0.5, 0.5, "fewer forecast dates than the window", ha="center", transform=right.transAxes)
    right.set(
        ylabel=f"coverage over the last {window} as-of dates", ylim=(0, 1), title="rolling 90% coverage"
    )
    right.legend(fontsize=8, loc="lower right")
    right.tick_params(axis="x", labelrotation=30)  # dates only: fold numbers stay upright
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def fan_chart(
    preds: pd.DataFrame, quantiles: Sequence[float], symbol: str, path: Path, title: str, horizon: int = 1
) -> Path:
    """Realised close ``horizon`` days later against the forecast's 50/80/90% price intervals."""
    plt = _pyplot()
    cols = quantile_columns(preds, quantiles)
    part = preds[(preds["ts_code"] == symbol) & (preds["horizon"] == horizon)].sort_values("date")
    base = part["last_close"].to_numpy(np.float64)
    x = pd.to_datetime(part["date"])
    fig, ax = plt.subplots(figsize=(8, 4))
    levels = sorted(cols)
    for mass, alpha in ((0.9, 0.15), (0.8, 0.25), (0.5, 0.4)):
        lo, hi = (1 - mass) / 2, 1 - (1 - mass) / 2
        lo_l = min(levels, key=lambda v: abs(v - lo))
        hi_l = min(levels, key=lambda v: abs(v - hi))
        ax.fill_between(
            x,
            base * np.exp(part[cols[lo_l]].to_numpy()),
            base * np.exp(part[cols[hi_l]].to_numpy()),
            alpha=alpha,
            color="tab:blue",
            label=f"{mass:.0%} interval",
        )
    median = min(levels, key=lambda v: abs(v - 0.5))
    ax.plot(x, base * np.exp(part[cols[median]].to_numpy()), color="tab:blue", lw=1, label="median")
    ax.plot(x, base * np.exp(part["y_true"].to_numpy()), color="black", lw=1, label="realised")
    ax.set(title=title, ylabel=f"close {horizon} day(s) after the as-of date")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def equity_plot(daily: dict[str, pd.DataFrame], path: Path, title: str) -> Path:
    """Each book's wealth (1 at the start) with the benchmark's, and below it each book's drawdown.
    ``daily``: name -> a backtest's daily rows (``trade_date``, ``return``, ``benchmark_return``)."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=(3, 1))
    for name, rows in daily.items():
        wealth = np.cumprod(1.0 + rows["return"].to_numpy(np.float64))
        x = pd.to_datetime(rows["trade_date"])
        top.plot(x, wealth, lw=1, label=name)
        bottom.plot(x, wealth / np.maximum.accumulate(wealth) - 1.0, lw=1)
    first = next(iter(daily.values()), None)
    if first is not None:
        bench = np.cumprod(1.0 + first["benchmark_return"].to_numpy(np.float64))
        top.plot(pd.to_datetime(first["trade_date"]), bench, color="black", ls="--", lw=1, label="benchmark")
    top.set(title=title, ylabel="wealth (1 at the start)")
    top.legend(fontsize=7, ncol=2)
    bottom.set(ylabel="drawdown")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
