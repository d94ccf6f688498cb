"""A tiny, seeded walk-forward result built by hand (no features, no training) and scored into a report.

Two folds (the second without a validation block), six symbols, horizon 2; two baselines, one model and
an extra seed of it, so every part of the report layout is present.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from stockml.columns import quantile_column
from stockml.evaluation.report import Evaluation, build_report
from stockml.training.splits import DateRange, Fold
from stockml.training.walkforward import FoldOutput

QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
SYMBOLS = tuple(f"00000{i}.SZ" for i in range(1, 7))
HORIZON = 2
DATA_INFO = {
    "source": "synthetic",
    "symbols": list(SYMBOLS),
    "start": "2022-01-03",
    "end": "2022-06-30",
    "rows": 0,
    "data_hash": "abc123",  # a key a caller added (the replay flow adds this one)
}


def _market(rng: np.random.Generator, dates: pd.DatetimeIndex) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The frame (labels ``label_h1``, ``label_h2``) and the closes of every symbol on ``dates``."""
    index = pd.MultiIndex.from_product([SYMBOLS, dates], names=["ts_code", "trade_date"])
    frame = index.to_frame(index=False)
    returns = rng.normal(0.0, 0.02, len(frame))
    frame["label_h1"] = returns
    frame["label_h2"] = returns + rng.normal(0.0, 0.02, len(frame))
    closes = frame[["ts_code", "trade_date"]].assign(close=10.0 * np.exp(np.cumsum(returns)))
    return frame, closes


def _predictions(frame: pd.DataFrame, dates: pd.DatetimeIndex, loc: float, scale: float) -> pd.DataFrame:
    """Normal quantiles around ``loc`` times the realised label, ``scale`` sd per sqrt(horizon)."""
    rows = frame[frame["trade_date"].isin(dates)]
    parts = []
    for h in range(1, HORIZON + 1):
        part = pd.DataFrame({"ts_code": rows["ts_code"], "date": rows["trade_date"], "horizon": h})
        centre = loc * rows[f"label_h{h}"].to_numpy()
        for q in QUANTILES:
            part[quantile_column(q)] = centre + scale * np.sqrt(h) * norm.ppf(q)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def synthetic_evaluation(seed: int = 0, extra: dict[str, tuple[float, float]] | None = None) -> Evaluation:
    """The report of two folds of hand-made predictions (fixed timings, so the report is reproducible);
    ``extra``: more models, name -> (loc, scale) as below."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2022-01-03", periods=120)
    frame, closes = _market(rng, dates)
    folds = [
        Fold(
            0,
            DateRange(dates[0], dates[59]),
            DateRange(dates[80], dates[99]),
            DateRange(dates[62], dates[77]),
        ),
        Fold(1, DateRange(dates[0], dates[79]), DateRange(dates[100], dates[117])),
    ]
    models = {
        "random_walk": (0.0, 0.02),
        "ewma_vol": (0.0, 0.017),
        "lstm": (0.3, 0.016),
        "lstm.seed1": (0.2, 0.018),
        **(extra or {}),
    }
    outputs = []
    for fold in folds:
        test = dates[fold.test.mask(dates)]
        predictions = {name: _predictions(frame, test, loc, scale) for name, (loc, scale) in models.items()}
        seconds = {name: {"train_seconds": 1.5, "predict_seconds": 0.25} for name in models}
        outputs.append(FoldOutput(fold, predictions, seconds))
    return build_report(
        outputs,
        frame,
        ["label_h1", "label_h2"],
        closes,
        data_info=DATA_INFO | {"rows": len(frame)},
        horizon=HORIZON,
        quantiles=QUANTILES,
    )
