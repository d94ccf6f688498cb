"""Registry versions in words, for the MLflow UI: what the registered model is, and for each version its
config, training and evaluation windows, its out-of-sample scores as served and the gate's decision."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from stockml.evaluation.calibration import SUFFIX as ACI
from stockml.evaluation.report_types import EvaluationReport
from stockml.registry import tags as T
from stockml.registry.promotion import Decision

MODEL_DESCRIPTION = (
    "stockml's daily A-share forecaster: for every symbol of the universe, quantiles of the cumulative log "
    "return over the next 1..H trading days (H: each version's horizon), served with online calibration "
    "learned from the outcomes of its published forecasts. `@champion` serves the daily forecast, "
    "`@challenger` is the latest candidate; each version's description says how it was trained, scored "
    "and gated."
)
GATE_HEADING = "**Gate:**"  # starts the gate's section of a version description


def served(report: EvaluationReport, name: str) -> str:
    """The report entry of what a version of ``name`` serves: its online-calibrated row (``<name>.aci``)
    when the run calibrated (the bundle then carries that calibration), else its own."""
    return name + ACI if name + ACI in report.results else name


def describe_version(
    report: EvaluationReport,
    name: str,
    config: Mapping[str, Any] | None,
    train_window: tuple[dt.date, dt.date],
    refit_of: str | None = None,
) -> str:
    """A version of ``name`` in words (Markdown): its config, training and evaluation windows and its
    out-of-sample horizon-1 scores as served (:func:`served`); :func:`with_decision` adds the gate's."""
    row, window = served(report, name), report.test_window
    metrics = report.results[row].metrics
    refit = f" (refit of v{refit_of} on every labelled day)" if refit_of else ""
    folds = f"{len(report.folds)} walk-forward fold{'s' if len(report.folds) != 1 else ''}"
    scored = f"{T.format_window(*window)} ({folds})" if window else "none"
    scores = ", ".join(
        f"{label} {_number(metrics, key, spec)}"
        for label, key, spec in (
            ("CRPS", "crps", ".6f"),
            ("skill vs random walk", "skill_crps", "+.4f"),
            ("coverage_90", "coverage_90", ".3f"),
            ("Kupiec p", "kupiec_p_95", ".3f"),
        )
    )
    return "\n".join(
        [
            f"**{name}** `{T.config_tag(config)}`: quantiles {list(report.quantiles)} of the cumulative log "
            f"return, horizons 1..{report.horizon}.",
            "",
            f"- Training window: {T.format_window(*train_window)}{refit}",
            f"- Evaluation window (out of sample): {scored}",
            f"- Horizon 1 as served ({row}): {scores}",
        ]
    )


def with_decision(description: str, decision: Decision, compared_with: int | None = None) -> str:
    """``description`` with its gate section (the decision, against which champion, every reason) set to
    ``decision``'s, replacing any earlier one."""
    head = description.split(f"\n\n{GATE_HEADING}")[0]
    against = f" (against champion v{compared_with})" if compared_with is not None else ""
    reasons = "\n".join(f"- {reason}" for reason in decision.reasons)
    gate = f"{GATE_HEADING} {decision.tags()[T.PROMOTION]}{against}\n\n{reasons}"
    return f"{head}\n\n{gate}" if head else gate


def _number(metrics: Mapping[str, Any], key: str, spec: str) -> str:
    value = metrics.get(key)
    return "n/a" if value is None or not math.isfinite(float(value)) else format(float(value), spec)
