"""The walk-forward report as types: what :func:`stockml.evaluation.report.build_report` returns and what
``report.json`` holds.

``to_dict`` gives the documented JSON layout (see :mod:`stockml.evaluation.report`), key for key and in
the same order; ``from_dict`` reads it back (``from_dict(r.to_dict()) == r``). Metric rows stay
``dict[str, float | None]``: their names are many and open-ended, and ``None`` stands for an undefined
(non-finite) value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

Kind = Literal["model", "baseline", "seed"]
Metrics = dict[str, float | None]

_DATA_KEYS = ("source", "symbols", "start", "end", "rows")


@dataclass(frozen=True)
class DataInfo:
    """What the report was computed on; ``extra`` keeps any further keys a caller added (``data_hash``)."""

    source: str
    symbols: tuple[str, ...]
    start: str
    end: str
    rows: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "symbols": list(self.symbols),
            "start": self.start,
            "end": self.end,
            "rows": self.rows,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataInfo:
        extra = {k: v for k, v in d.items() if k not in _DATA_KEYS}
        return cls(d["source"], tuple(d["symbols"]), d["start"], d["end"], d["rows"], extra)


@dataclass(frozen=True)
class FoldInfo:
    """One fold's date ranges (ISO dates, inclusive) and its feature shift (test vs train, in train sd)."""

    train: tuple[str, str]
    valid: tuple[str, str] | None
    test: tuple[str, str]
    feature_shift: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "train": list(self.train),
            "valid": list(self.valid) if self.valid is not None else None,
            "test": list(self.test),
            "feature_shift": dict(self.feature_shift),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FoldInfo:
        valid = d.get("valid")
        return cls(
            _pair(d["train"]),
            _pair(valid) if valid is not None else None,
            _pair(d["test"]),
            dict(d.get("feature_shift", {})),
        )


@dataclass(frozen=True)
class FoldScore:
    """Horizon-1 metrics of one fold on its own (``fold`` is the fold's index)."""

    fold: int
    metrics: Metrics

    def to_dict(self) -> dict[str, Any]:
        return {"fold": self.fold, **self.metrics}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FoldScore:
        return cls(d["fold"], {k: v for k, v in d.items() if k != "fold"})


@dataclass(frozen=True)
class BaselineSkill:
    """CRPS skill against one baseline and its Newey-West t."""

    skill_crps: float | None
    t: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"skill_crps": self.skill_crps, "t": self.t}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BaselineSkill:
        return cls(d.get("skill_crps"), d.get("t"))


@dataclass(frozen=True)
class SeedSummary:
    """Mean and sd (``None`` where undefined) of horizon-1 metrics over ``n`` seeds' runs of a model.
    Serialised flat: ``{"n": n, "<metric>_mean": ..., "<metric>_sd": ..., ...}``."""

    n: int
    mean: Metrics
    sd: Metrics

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n}
        for key in self.mean:
            out[f"{key}_mean"] = self.mean[key]
            out[f"{key}_sd"] = self.sd.get(key)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SeedSummary:
        mean = {k.removesuffix("_mean"): v for k, v in d.items() if k.endswith("_mean")}
        sd = {k.removesuffix("_sd"): v for k, v in d.items() if k.endswith("_sd")}
        return cls(d["n"], mean, sd)


@dataclass(frozen=True)
class ModelResult:
    """One model's (or baseline's, or extra seed's) scores: ``metrics`` at horizon 1 (or the shortest),
    every horizon's in ``per_horizon``, each fold's, skill against each other baseline, and the spread
    over seeds for a model run with several."""

    kind: Kind
    metrics: Metrics
    per_horizon: dict[int, Metrics]
    per_fold: tuple[FoldScore, ...]
    vs_baselines: dict[str, BaselineSkill]
    seeds: SeedSummary | None = None
    weights: tuple[dict[str, list[float]], ...] | None = None  # an ensemble's, per fold: member -> per level
    # against every other model of the run (not calibrated rows or extra seeds), when there are others:
    # e.g. a distilled student against its student model trained alone, on the same rows
    vs_models: dict[str, BaselineSkill] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "metrics": dict(self.metrics),
            "per_horizon": {str(h): dict(m) for h, m in self.per_horizon.items()},
            "per_fold": [f.to_dict() for f in self.per_fold],
            "vs_baselines": {name: b.to_dict() for name, b in self.vs_baselines.items()},
        }
        if self.seeds is not None:
            out["seeds"] = self.seeds.to_dict()
        if self.weights is not None:
            out["weights"] = [dict(w) for w in self.weights]
        if self.vs_models is not None:
            out["vs_models"] = {name: b.to_dict() for name, b in self.vs_models.items()}
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelResult:
        seeds = d.get("seeds")
        return cls(
            kind=cast(Kind, d["kind"]),
            metrics=dict(d["metrics"]),
            per_horizon={int(h): dict(m) for h, m in d.get("per_horizon", {}).items()},
            per_fold=tuple(FoldScore.from_dict(f) for f in d.get("per_fold", [])),
            vs_baselines={k: BaselineSkill.from_dict(v) for k, v in d.get("vs_baselines", {}).items()},
            seeds=SeedSummary.from_dict(seeds) if seeds is not None else None,
            weights=tuple(dict(w) for w in d["weights"]) if d.get("weights") is not None else None,
            vs_models={k: BaselineSkill.from_dict(v) for k, v in d["vs_models"].items()}
            if d.get("vs_models") is not None
            else None,
        )


@dataclass(frozen=True)
class BacktestSection:
    """What each forecast would have earned: the cost-aware top-k book of every model's and baseline's
    horizon-1 forecasts on the run's bars (:mod:`stockml.backtest`). ``settings``: the book (top_k,
    drop_n, trade_at, benchmark, costs); ``results``: per name, the book's metrics and its bounds'
    (``perfect_*``, ``random_*``), fractions, not percent."""

    settings: dict[str, Any]
    results: dict[str, Metrics]

    def to_dict(self) -> dict[str, Any]:
        return {"settings": dict(self.settings), "results": {k: dict(v) for k, v in self.results.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BacktestSection:
        return cls(dict(d["settings"]), {k: dict(v) for k, v in d["results"].items()})


@dataclass(frozen=True)
class EvaluationReport:
    """Every model and baseline scored on the same folds, rows and targets; ``mlflow_run_id`` is set once
    the report was logged (it is written only then)."""

    data: DataInfo
    horizon: int
    quantiles: tuple[float, ...]
    folds: tuple[FoldInfo, ...]
    best_baseline: str | None
    results: dict[str, ModelResult]
    mlflow_run_id: str | None = None
    backtest: BacktestSection | None = None

    @property
    def test_window(self) -> tuple[str, str] | None:
        """First and last test date over all folds; None without folds."""
        return (self.folds[0].test[0], self.folds[-1].test[1]) if self.folds else None

    def with_run_id(self, run_id: str) -> EvaluationReport:
        """This report as logged to the MLflow run ``run_id``."""
        return replace(self, mlflow_run_id=run_id)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "data": self.data.to_dict(),
            "horizon": self.horizon,
            "quantiles": list(self.quantiles),
            "folds": [f.to_dict() for f in self.folds],
            "best_baseline": self.best_baseline,
            "results": {name: r.to_dict() for name, r in self.results.items()},
        }
        if self.backtest is not None:
            out["backtest"] = self.backtest.to_dict()
        if self.mlflow_run_id is not None:
            out["mlflow_run_id"] = self.mlflow_run_id
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvaluationReport:
        return cls(
            data=DataInfo.from_dict(d["data"]),
            horizon=d["horizon"],
            quantiles=tuple(d["quantiles"]),
            folds=tuple(FoldInfo.from_dict(f) for f in d["folds"]),
            best_baseline=d.get("best_baseline"),
            results={name: ModelResult.from_dict(r) for name, r in d["results"].items()},
            mlflow_run_id=d.get("mlflow_run_id"),
            backtest=BacktestSection.from_dict(d["backtest"]) if d.get("backtest") is not None else None,
        )


def _pair(dates: Any) -> tuple[str, str]:
    first, last = dates
    return (first, last)
