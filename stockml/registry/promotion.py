"""The champion/challenger gate: a pure decision over out-of-sample metrics from one evaluation window.

Rules (all metrics from the same walk-forward folds, so the comparison is like for like):

- The challenger's 90% interval coverage must lie inside ``coverage_band`` (default 0.85-0.95).
- With no champion yet, the challenger must beat ``random_walk``'s CRPS (a model without skill is
  never the first champion).
- Against a champion of a *different* procedure (:class:`Procedure`: model name or config), the
  challenger's CRPS must be below the champion procedure's CRPS on the same window by ``margin``
  (relative). ``lifecycle.plan_models`` scores the champion's procedure in every training run (as
  ``<model>.champion`` when a new config of its model is requested); a champion procedure without a
  CRPS on the window fails the challenger.
- A challenger of the *same* procedure as the champion is the champion's recipe refitted on newer data
  (the daily retrain): both scores would be the same number, so no margin applies; it must still beat
  ``random_walk`` and pass the coverage band.

The caller applies the decision (registry aliases and tags); a rejected challenger changes nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stockml.registry import tags as T


class GateConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    margin: float = Field(default=0.01, ge=0.0, lt=1.0)  # relative CRPS improvement required
    coverage_band: tuple[float, float] = (0.85, 0.95)

    @model_validator(mode="after")
    def _band(self) -> GateConfig:
        lo, hi = self.coverage_band
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"coverage_band {self.coverage_band} is not an interval inside [0, 1]")
        return self


@dataclass(frozen=True)
class Procedure:
    """What a model version is a fit of: the model name and its config as tagged at registration
    (:func:`~stockml.registry.tags.config_tag`). Versions of one procedure differ only in their data."""

    model_name: str
    config: str  # canonical JSON

    @classmethod
    def of(cls, model_name: str, config: Mapping[str, Any] | None) -> Procedure:
        return cls(model_name, T.config_tag(config))


@dataclass(frozen=True)
class Scores:
    """One candidate's out-of-sample scores at horizon 1 (the report's top-level metrics)."""

    crps: float
    coverage_90: float

    @classmethod
    def from_metrics(cls, metrics: dict) -> Scores:
        def value(key: str) -> float:
            v = metrics.get(key)
            return math.nan if v is None else float(v)

        return cls(crps=value("crps"), coverage_90=value("coverage_90"))


UNSCORED = Scores(math.nan, math.nan)  # a procedure not scored on the window


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: tuple[str, ...]

    def tags(self) -> dict[str, str]:
        """Registry version tags recording the decision and why."""
        return {
            T.PROMOTION: "promoted" if self.promote else "rejected",
            T.PROMOTION_REASONS: "; ".join(self.reasons),
        }


def decide(
    challenger: Scores,
    random_walk: Scores,
    cfg: GateConfig,
    champion: Scores | None = None,
    same_procedure: bool = False,
) -> Decision:
    """Promote ``challenger`` or not, with every reason (passed and failed checks) spelled out."""
    reasons: list[str] = []
    ok = True
    lo, hi = cfg.coverage_band
    cov = challenger.coverage_90
    if math.isfinite(cov) and lo <= cov <= hi:
        reasons.append(f"coverage_90 {cov:.3f} inside [{lo}, {hi}]")
    else:
        ok = False
        reasons.append(f"coverage_90 {cov:.3f} outside [{lo}, {hi}]")
    if not math.isfinite(challenger.crps):
        return Decision(False, (*reasons, "challenger CRPS is not finite"))
    if champion is None or same_procedure:
        beats = math.isfinite(random_walk.crps) and challenger.crps < random_walk.crps
        ok &= beats
        who = "no champion yet" if champion is None else "same procedure as the champion (refit)"
        verdict = "beats" if beats else "does not beat"
        reasons.append(f"{who}: CRPS {challenger.crps:.6f} {verdict} random_walk {random_walk.crps:.6f}")
        return Decision(ok, tuple(reasons))
    if not math.isfinite(champion.crps):
        return Decision(False, (*reasons, "the champion's procedure has no CRPS on this window"))
    bar = champion.crps * (1.0 - cfg.margin)
    beats = math.isfinite(bar) and challenger.crps < bar
    ok &= beats
    verdict = "beats" if beats else "does not beat"
    reasons.append(
        f"CRPS {challenger.crps:.6f} {verdict} champion {champion.crps:.6f} by the {cfg.margin:.1%} margin "
        f"(needs < {bar:.6f})"
    )
    return Decision(ok, tuple(reasons))
