"""The walk-forward report: every model and baseline scored on the same folds, rows and targets.

Report layout (also in the README)::

    {"data": {source, symbols, start, end, rows}, "horizon": H, "quantiles": [...],
     "folds": [{"train": [d0, d1], "valid": [..] | null, "test": [d2, d3]}, ...],
     "results": {name: {"kind": "model" | "baseline", "metrics": {... horizon 1 ...},
                        "per_horizon": {"1": {...}, ...}}}}
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from stockml.evaluation.aggregate import crps_skill_t, metrics_by_horizon, metrics_for, skill
from stockml.training.baselines import BASELINES
from stockml.training.walkforward import FoldOutput, with_truth


@dataclass(frozen=True)
class Evaluation:
    report: dict
    predictions: dict[str, pd.DataFrame]  # name -> every fold's predictions with y_true and last_close


def _clean(metrics: dict[str, float]) -> dict[str, float | None]:
    """JSON-safe: NaN -> None."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


PER_FOLD_KEYS = ("n", "crps", "rmse", "rank_ic", "coverage_90", "skill_crps", "skill_rmse")


def _per_fold(predictions: dict[str, pd.DataFrame], name: str, quantiles: tuple[float, ...]) -> list[dict]:
    """Horizon-1 metrics of each fold on its own, with skill against that fold's random walk."""
    rows = []
    preds = predictions[name]
    preds = preds[preds["horizon"] == 1]
    rw = predictions.get("random_walk")
    rw = rw[rw["horizon"] == 1] if rw is not None else None
    for fold, part in preds.groupby("fold", sort=True):
        m = metrics_for(part, quantiles)
        base = metrics_for(rw[rw["fold"] == fold], quantiles) if rw is not None else {}
        m = {**m, **skill(m, base)}
        rows.append({"fold": int(fold), **_clean({k: m[k] for k in PER_FOLD_KEYS if k in m})})
    return rows


def build_report(
    outputs: list[FoldOutput],
    frame: pd.DataFrame,
    labels: list[str],
    closes: pd.DataFrame,
    *,
    data_info: dict,
    horizon: int,
    quantiles: tuple[float, ...],
) -> Evaluation:
    """Score every model's out-of-sample predictions, with skill against ``random_walk``."""
    names = list(outputs[0].predictions) if outputs else []
    predictions = {
        name: with_truth(
            pd.concat([o.predictions[name].assign(fold=o.fold.index) for o in outputs], ignore_index=True),
            frame,
            labels,
            closes,
        )
        for name in names
    }
    by_h = {name: metrics_by_horizon(preds, quantiles) for name, preds in predictions.items()}
    rw = by_h.get("random_walk", {})
    results = {}
    for name in names:
        seconds = {
            key: sum(o.seconds[name][key] for o in outputs) for key in ("train_seconds", "predict_seconds")
        }
        per_h = {h: {**m, **skill(m, rw.get(h, {})), **seconds} for h, m in by_h[name].items()}
        if "random_walk" in predictions:
            for h, row in per_h.items():
                at = [p[p["horizon"] == h] for p in (predictions[name], predictions["random_walk"])]
                row["skill_crps_t"] = (
                    crps_skill_t(at[0], at[1], h, quantiles) if name != "random_walk" else 0.0
                )
        top = per_h.get(1, per_h[min(per_h)]) if per_h else {}
        results[name] = {
            "kind": "baseline" if name in BASELINES else "model",
            "metrics": _clean(top),
            "per_horizon": {str(h): _clean(m) for h, m in per_h.items()},
            "per_fold": _per_fold(predictions, name, quantiles),
        }
    folds = [
        {
            "train": [str(o.fold.train.start.date()), str(o.fold.train.end.date())],
            "valid": [str(o.fold.valid.start.date()), str(o.fold.valid.end.date())] if o.fold.valid else None,
            "test": [str(o.fold.test.start.date()), str(o.fold.test.end.date())],
        }
        for o in outputs
    ]
    report = {
        "data": data_info,
        "horizon": horizon,
        "quantiles": list(quantiles),
        "folds": folds,
        "results": results,
    }
    return Evaluation(report, predictions)
