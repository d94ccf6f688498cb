"""The daily run's summary as markdown (for the Prefect artifact and the console)."""

from __future__ import annotations

import math

import pandas as pd

from stockml.evaluation.calibration import AciState
from stockml.evaluation.report_types import EvaluationReport
from stockml.registry.lifecycle import Champion, Promoted, Registered
from stockml.registry.promotion import BASELINE_MODEL, VOL_BASELINE, Decision

METRICS = ("crps", "skill_crps", "skill_crps_t", "rmse", "rank_ic", "coverage_90", "train_seconds")


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def metrics_markdown(report: EvaluationReport) -> str:
    head = "| name | kind | " + " | ".join(METRICS) + " |"
    rule = "|" + "---|" * (len(METRICS) + 2)
    rows = [
        f"| {name} | {r.kind} | " + " | ".join(_fmt(r.metrics.get(k)) for k in METRICS) + " |"
        for name, r in report.results.items()
    ]
    return "\n".join([head, rule, *rows])


def promotion_lines(
    registered_name: str,
    challenger: Registered,
    decision: Decision,
    winner: Promoted | None,
    champion: Champion | None,
) -> dict[str, str]:
    """The summary's lines on the gate: the challenger, its decision and reasons, and which procedure won
    (is ``@champion`` after the gate: ``winner``, else the ``champion`` from before) and why."""
    lines = {
        "challenger": f"{registered_name} v{challenger.version} ({challenger.name})",
        "decision": "promoted" if decision.promote else "rejected",
        "reasons": "; ".join(decision.reasons),
    }
    if winner is not None and winner.registered.version == challenger.version:
        lines["winner"] = f"{challenger.name} ({registered_name} v{challenger.version}), the challenger"
        lines["why"] = "it passed every check of the gate (the reasons above)"
    elif winner is not None:
        won = winner.registered
        what = f", the volatility baseline {VOL_BASELINE} as a model" if won.name == BASELINE_MODEL else ""
        lines["winner"] = f"{won.name} ({registered_name} v{won.version}){what}"
        lines["why"] = "; ".join(winner.decision.reasons)
    elif champion is not None:
        lines["winner"] = f"{champion.model_name} ({registered_name} v{champion.version}), the champion, kept"
        lines["why"] = f"challenger {challenger.name} rejected: {'; '.join(decision.failed)}"
    return lines


def calibration_line(state: AciState | None) -> str:
    """How the published quantiles were calibrated: the horizon-1 spread factors, and what they learned."""
    if state is None:
        return "none (the model's own quantiles)"
    pairs = zip(state.quantiles, state.phi[0], strict=True)
    factors = ", ".join(f"q{q:g} x{math.exp(p):.3f}" for q, p in pairs)
    learned = state.through[0] or "nothing yet"
    return f"online (ACI, gamma {state.gamma:g}), outcomes learned through {learned}; horizon 1: {factors}"


def daily_markdown(
    summary: dict,
    report: EvaluationReport | None,
    drift: pd.DataFrame | None,
    book: pd.DataFrame | None = None,
) -> str:
    lines = [f"# stockml daily retrain, as of {summary['as_of']}", "", f"**Status:** {summary['status']}", ""]
    if summary.get("failed_models"):
        lines += [
            "**Failed models:**",
            *[f"- `{m}`: {why}" for m, why in summary["failed_models"].items()],
            "",
        ]
    if report is not None:
        test = report.test_window
        window = f"{test[0]} .. {test[1]}" if test else "-"
        lines += [
            f"## Out-of-sample metrics (horizon 1, test window {window})",
            "",
            metrics_markdown(report),
            "",
        ]
    for key, label in (
        ("mlflow_run_id", "MLflow run"),
        ("challenger", "Challenger"),
        ("decision", "Promotion"),
        ("reasons", "Reasons"),
        ("winner", "Winner"),
        ("why", "Why it won"),
        ("champion", "Champion"),
        ("refit", "Refit"),
        ("predictions", "Predictions"),
        ("portfolio", "Target portfolio"),
        ("calibration", "Calibration"),
    ):
        if summary.get(key) is not None:
            lines.append(f"- **{label}:** {summary[key]}")
    if book is not None:
        lines += ["", *portfolio_lines(book)]
    if summary.get("quality"):
        lines += ["", "## Data quality", "", f"`{summary['quality']}`"]
    if drift is not None and len(drift):
        cols = ["feature", "shift_sd", "sd_ratio", "recent_missing", "alert"]
        rows = [
            f"| {' | '.join(_fmt(v) for v in row)} |" for row in drift.head(10)[cols].itertuples(index=False)
        ]
        table = [f"| {' | '.join(cols)} |", "|" + "---|" * len(cols), *rows]
        lines += ["", "## Feature drift vs the champion's training window (top 10)", "", *table]
    return "\n".join(lines) + "\n"


def portfolio_lines(book: pd.DataFrame) -> list[str]:
    """The target book for the next session as a markdown table (weights in percent; 0 = sell)."""
    head = [
        "## Target portfolio for the next session (research output, not investment advice)",
        "",
        "The champion's horizon-1 forecast ranked by the backtest's strategy; weights before T+1, price "
        "limits and lots, which only the session decides.",
        "",
    ]
    if not len(book):
        return [*head, "No names: nothing was forecast."]
    rows = [
        f"| {r.ts_code} | {100 * r.weight:.1f}% | {r.score:+.5f} | {r.reason} |"
        for r in book.itertuples(index=False)
    ]
    return [*head, "| ts_code | weight | score | reason |", "|---|---|---|---|", *rows]
