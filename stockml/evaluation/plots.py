"""Charts for a run's artifacts: forecast fans and quantile calibration (matplotlib, Agg backend).

Inputs are the evaluation's long prediction frames (``ts_code``, ``date``, ``horizon``, ``q<level>``,
``y_true``, ``last_close``); each function writes one PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stockml.evaluation.aggregate import quantile_columns


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
