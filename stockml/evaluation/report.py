"""The walk-forward report: every model and baseline scored on the same folds, rows and targets.

Report layout (also in the README)::

    {"data": {source, symbols, start, end, rows}, "horizon": H, "quantiles": [...],
     "folds": [{"train": [d0, d1], "valid": [..] | null, "test": [d2, d3]}, ...],
     "best_baseline": name, "results": {name: {"kind": "model" | "baseline" | "seed",
                        "metrics": {... horizon 1 ...}, "per_horizon": {"1": {...}, ...},
                        "per_fold": [...], "vs_baselines": {baseline: {skill_crps, t}},
                        "vs_models": {other model: {skill_crps, t}} (with two models or more),
                        "seeds": {... mean and sd over seeds, when run with several}}},
     "backtest": {"settings": {top_k, drop_n, trade_at, benchmark, costs},
                  "results": {name: {annual_return, sharpe, max_drawdown, ..., perfect_*, random_*}}}}

With online calibration on (``EvalConfig.aci_gamma``), every model also has a ``<model>.aci`` entry: its
forecasts after adaptive conformal calibration of each quantile's spread (:mod:`.calibration`).

Skill is against ``random_walk`` (``skill_crps``, ``skill_crps_t``) and against the best baseline of that
horizon by CRPS (``skill_crps_best``, ``skill_crps_best_t``). Each fold lists ``feature_shift``: per feature,
how far the test block's mean of the normalised feature lies from the training block's, in training sd.
The report is an :class:`~stockml.evaluation.report_types.EvaluationReport`; ``to_dict`` gives this layout.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from stockml.evaluation.aggregate import crps_skill_t, metrics_by_horizon, metrics_for, skill
from stockml.evaluation.calibration import SUFFIX as ACI
from stockml.evaluation.calibration import AciState, aci_history
from stockml.evaluation.report_types import (
    BaselineSkill,
    DataInfo,
    EvaluationReport,
    FoldInfo,
    FoldScore,
    Kind,
    Metrics,
    ModelResult,
    SeedSummary,
)
from stockml.features import transform_features
from stockml.training.baselines import BASELINES
from stockml.training.walkforward import FoldOutput, with_truth


@dataclass(frozen=True)
class Evaluation:
    report: EvaluationReport
    predictions: dict[str, pd.DataFrame]  # name -> every fold's predictions with y_true and last_close
    # model -> its online calibration after the last test date (what its registered version starts from)
    calibration: dict[str, AciState] = field(default_factory=dict)
    # name -> its backtest book's daily rows (stockml.backtest.run.BacktestResult.daily), when backtested
    backtests: dict[str, pd.DataFrame] = field(default_factory=dict)


def json_safe(metrics: dict[str, float]) -> Metrics:
    """JSON-safe: NaN -> None."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


# Each fold's calibration too: interval coverage, and Kupiec's p of its 95% VaR breaches (metrics_for).
FOLD_CALIBRATION_KEYS = ("coverage_50", "coverage_80", "coverage_90", "kupiec_p_95")
PER_FOLD_KEYS = ("n", "crps", "rmse", "rank_ic", *FOLD_CALIBRATION_KEYS, "skill_crps", "skill_rmse")
SEED_KEYS = ("crps", "skill_crps", "skill_crps_t", "skill_crps_best", "coverage_90", "rank_ic")
_SEED_RUN = re.compile(r"^(?P<model>.+)\.seed\d+$")


def kind_of(name: str) -> Kind:
    """``baseline``, ``seed`` (an extra seed's run of a model, ``lstm.seed1``) or ``model``."""
    return "baseline" if name in BASELINES else "seed" if _SEED_RUN.match(name) else "model"


def _seed_summary(name: str, results: dict[str, ModelResult]) -> SeedSummary:
    """Mean and sd over ``name`` and its ``name.seed<k>`` runs of the horizon-1 metrics in SEED_KEYS."""
    runs = [r.metrics for n, r in results.items() if n == name or n.startswith(f"{name}.seed")]
    mean: Metrics = {}
    sd: Metrics = {}
    for key in SEED_KEYS:
        values = np.array([r.get(key) if r.get(key) is not None else np.nan for r in runs], np.float64)
        mean[key] = float(np.nanmean(values)) if np.isfinite(values).any() else None
        sd[key] = float(np.nanstd(values, ddof=1)) if np.isfinite(values).sum() > 1 else None
    return SeedSummary(len(runs), mean, sd)


def feature_shift(frame: pd.DataFrame, output: FoldOutput) -> dict[str, float]:
    """Per feature, (test mean - train mean) / train sd of the fold's normalised features, pooled over
    symbols, largest |shift| first: an input that left its training range shows here."""
    if output.norm is None:
        return {}
    features = output.norm.features
    x = transform_features(frame, output.norm)
    dates = frame["trade_date"].to_numpy()
    train, test = x[output.fold.train.mask(dates)], x[output.fold.test.mask(dates)]
    sd = train.std(axis=0)
    shift = (test.mean(axis=0) - train.mean(axis=0)) / np.where(sd > 1e-12, sd, np.nan)
    order = np.argsort(-np.nan_to_num(np.abs(shift), nan=-1.0))
    return {features[i]: round(float(shift[i]), 3) for i in order if np.isfinite(shift[i])}


def _per_fold(
    predictions: dict[str, pd.DataFrame], name: str, quantiles: tuple[float, ...]
) -> tuple[FoldScore, ...]:
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
        rows.append(FoldScore(int(fold), json_safe({k: m[k] for k in PER_FOLD_KEYS if k in m})))
    return tuple(rows)


def _vs_baselines(
    predictions: dict[str, pd.DataFrame],
    name: str,
    baselines: list[str],
    by_h: dict[str, dict[int, dict[str, float]]],
    quantiles: tuple[float, ...],
) -> dict[str, BaselineSkill]:
    """Horizon 1 (or the shortest): CRPS skill and its Newey-West t against every other name of
    ``baselines`` (the baselines, or the run's other models)."""
    out = {}
    for base in (b for b in baselines if b != name):
        h = 1 if 1 in by_h[name] else min(by_h[name], default=1)
        crps, ref = by_h[name].get(h, {}).get("crps", math.nan), by_h[base].get(h, {}).get("crps", math.nan)
        at = [p[p["horizon"] == h] for p in (predictions[name], predictions[base])]
        gain = 1.0 - crps / ref if ref > 0 else math.nan
        clean = json_safe({"skill_crps": gain, "t": crps_skill_t(at[0], at[1], h, quantiles)})
        out[base] = BaselineSkill(clean["skill_crps"], clean["t"])
    return out


def _significance(
    predictions: dict[str, pd.DataFrame],
    name: str,
    h: int,
    best: str | None,
    by_h: dict[str, dict[int, dict[str, float]]],
    quantiles: tuple[float, ...],
) -> dict[str, float]:
    """``skill_crps_t`` against the random walk; skill and its t against the best baseline ``best``."""
    out: dict[str, float] = {}
    at = {n: p[p["horizon"] == h] for n, p in predictions.items() if n in (name, "random_walk", best)}
    if "random_walk" in predictions:
        out["skill_crps_t"] = (
            crps_skill_t(at[name], at["random_walk"], h, quantiles) if name != "random_walk" else 0.0
        )
    if best is not None:
        base = by_h[best].get(h, {}).get("crps", math.nan)
        crps = by_h[name].get(h, {}).get("crps", math.nan)
        out["skill_crps_best"] = 1.0 - crps / base if base > 0 else math.nan
        out["skill_crps_best_t"] = crps_skill_t(at[name], at[best], h, quantiles) if name != best else 0.0
    return out


def build_report(
    outputs: list[FoldOutput],
    frame: pd.DataFrame,
    labels: list[str],
    closes: pd.DataFrame,
    *,
    data_info: dict,
    horizon: int,
    quantiles: tuple[float, ...],
    aci_gamma: float | None = None,
) -> Evaluation:
    """Score every model's out-of-sample predictions, with skill against ``random_walk``. With
    ``aci_gamma``, each model's online-calibrated forecasts are scored too, as ``<model>.aci``."""
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
    calibration: dict[str, AciState] = {}
    if aci_gamma is not None:
        for name in [n for n in names if kind_of(n) == "model"]:
            predictions[name + ACI], calibration[name] = aci_history(predictions[name], quantiles, aci_gamma)
            names.append(name + ACI)
    by_h = {name: metrics_by_horizon(preds, quantiles) for name, preds in predictions.items()}
    rw = by_h.get("random_walk", {})
    baselines = [n for n in names if kind_of(n) == "baseline"]
    best = {  # per horizon, the baseline with the lowest CRPS
        h: min(baselines, key=lambda n: by_h[n].get(h, {}).get("crps", math.inf))
        for h in (by_h[baselines[0]] if baselines else {})
    }
    models = [n for n in names if kind_of(n) == "model" and not n.endswith(ACI)]
    results: dict[str, ModelResult] = {}
    for name in names:
        fitted = name.removesuffix(ACI)  # a calibrated row costs what its model did
        seconds = {
            key: sum(o.seconds[fitted][key] for o in outputs) for key in ("train_seconds", "predict_seconds")
        }
        per_h = {h: {**m, **skill(m, rw.get(h, {})), **seconds} for h, m in by_h[name].items()}
        for h, row in per_h.items():
            row.update(_significance(predictions, name, h, best.get(h), by_h, quantiles))
        top = per_h.get(1, per_h[min(per_h)]) if per_h else {}
        results[name] = ModelResult(
            kind=kind_of(name),
            metrics=json_safe(top),
            per_horizon={h: json_safe(m) for h, m in per_h.items()},
            per_fold=_per_fold(predictions, name, quantiles),
            vs_baselines=_vs_baselines(predictions, name, baselines, by_h, quantiles),
            weights=tuple(o.weights[name] for o in outputs if name in o.weights) or None,
            vs_models=_vs_baselines(predictions, name, models, by_h, quantiles)
            if name in models and len(models) > 1
            else None,
        )
    for name in names:
        if kind_of(name) == "model" and any(kind_of(n) == "seed" for n in names if n.startswith(f"{name}.")):
            results[name] = replace(results[name], seeds=_seed_summary(name, results))
    folds = tuple(
        FoldInfo(
            train=(str(o.fold.train.start.date()), str(o.fold.train.end.date())),
            valid=(str(o.fold.valid.start.date()), str(o.fold.valid.end.date())) if o.fold.valid else None,
            test=(str(o.fold.test.start.date()), str(o.fold.test.end.date())),
            feature_shift=feature_shift(frame, o),
        )
        for o in outputs
    )
    report = EvaluationReport(
        data=DataInfo.from_dict(data_info),
        horizon=horizon,
        quantiles=tuple(quantiles),
        folds=folds,
        best_baseline=best.get(1, best[min(best)]) if best else None,
        results=results,
    )
    return Evaluation(report, predictions, calibration)
