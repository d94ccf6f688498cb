"""The champion/challenger gate: a pure decision over out-of-sample metrics from one evaluation window.

The gate asks for evidence. Every challenger (the first champion, a refit of the champion's procedure, a
rival of another procedure) must, on the report's horizon-1 metrics from the same walk-forward folds:

- beat the run's best baseline (the report's ``best_baseline``, e.g. ``ewma_vol``): CRPS skill against it
  (``skill_crps_best``) above 0 with a Newey-West t of the per-date CRPS gain (``skill_crps_best_t``) of at
  least ``min_skill_t`` (default 2.0): a gain within noise is no evidence. Beating the best baseline implies
  beating ``random_walk``, which is one of them;
- have its 90% interval coverage inside ``coverage_band`` (default 0.85-0.95);
- pass Kupiec's test of its 95% VaR: the p-value of its breach count (``kupiec_p_95``) above
  ``kupiec_alpha`` (default 0.05).

Then, against a champion of a *different* procedure (:class:`Procedure`: model name or config), the
challenger's CRPS must also be below the champion procedure's CRPS on the same window by ``margin``
(relative). ``lifecycle.plan_models`` scores the champion's procedure in every training run (as
``<model>.champion`` when a new config of its model is requested); a champion procedure without a CRPS on
the window fails the challenger. A challenger of the *same* procedure is the champion's recipe refitted on
newer data (the daily retrain): both scores would be the same number, so no margin applies. A missing
(NaN) metric fails its check.

Any procedure may become champion, a baseline included: when the challenger is rejected and there is no
champion yet, the volatility baseline as a model (:data:`BASELINE_MODEL`, ``unconditional``: ``ewma_vol``
as a registered model) becomes champion (:func:`baseline_decision`), since publishing it is the honest
forecast. The caller applies the decision (registry aliases and tags); a rejected challenger changes
nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stockml.registry import tags as T


class GateConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    margin: float = Field(default=0.01, ge=0.0, lt=1.0)  # relative CRPS improvement required
    coverage_band: tuple[float, float] = (0.85, 0.95)
    min_skill_t: float = 2.0  # Newey-West t of the CRPS gain over the best baseline required
    kupiec_alpha: float = Field(default=0.05, ge=0.0, lt=1.0)  # Kupiec's 95% VaR test must not reject here

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
    """One candidate's out-of-sample scores at horizon 1 (the report's top-level metrics, under the same
    names); NaN where not measured."""

    crps: float
    coverage_90: float
    skill_crps_best: float = math.nan  # CRPS skill against the run's best baseline
    skill_crps_best_t: float = math.nan  # Newey-West t of the per-date CRPS gain over it
    kupiec_p_95: float = math.nan  # p-value of Kupiec's test of the 95% VaR breach rate

    @classmethod
    def from_metrics(cls, metrics: dict) -> Scores:
        def value(key: str) -> float:
            v = metrics.get(key)
            return math.nan if v is None else float(v)

        return cls(**{f.name: value(f.name) for f in fields(cls)})


UNSCORED = Scores(math.nan, math.nan)  # a procedure not scored on the window
BASELINE_MODEL = "unconditional"  # ewma_vol as a model: the first champion when no challenger passes
VOL_BASELINE = "ewma_vol"  # the baseline BASELINE_MODEL equals with volatility-standardised targets


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: tuple[str, ...]  # every check, passed and failed
    failed: tuple[str, ...] = ()  # the failed ones among them

    def tags(self) -> dict[str, str]:
        """Registry version tags recording the decision and why."""
        return {
            T.PROMOTION: "promoted" if self.promote else "rejected",
            T.PROMOTION_REASONS: "; ".join(self.reasons),
        }


Check = tuple[bool, str]  # passed, and the reason spelled out


def decide(
    challenger: Scores,
    best_baseline: str | None,
    cfg: GateConfig,
    champion: Scores | None = None,
    same_procedure: bool = False,
) -> Decision:
    """Promote ``challenger`` or not, with every reason (passed and failed checks) spelled out.
    ``best_baseline`` names the report's best baseline, the one ``challenger``'s skill is against."""
    checks = [
        _beats_best_baseline(challenger, best_baseline, cfg),
        _coverage(challenger, cfg),
        _kupiec(challenger, cfg),
        _against_champion(challenger, cfg, champion, same_procedure),
    ]
    failed = tuple(text for ok, text in checks if not ok)
    return Decision(not failed, tuple(text for _, text in checks), failed)


def _beats_best_baseline(challenger: Scores, best_baseline: str | None, cfg: GateConfig) -> Check:
    skill, t = challenger.skill_crps_best, challenger.skill_crps_best_t
    beats = math.isfinite(skill) and math.isfinite(t) and skill > 0 and t >= cfg.min_skill_t
    verdict = "beats" if beats else "does not beat"
    return beats, (
        f"{verdict} the best baseline {best_baseline or '(none scored)'}: CRPS skill {skill:+.4f}, "
        f"Newey-West t {t:.2f} (needs skill > 0 and t >= {cfg.min_skill_t})"
    )


def _coverage(challenger: Scores, cfg: GateConfig) -> Check:
    lo, hi = cfg.coverage_band
    cov = challenger.coverage_90
    inside = math.isfinite(cov) and lo <= cov <= hi
    return inside, f"coverage_90 {cov:.3f} {'inside' if inside else 'outside'} [{lo}, {hi}]"


def _kupiec(challenger: Scores, cfg: GateConfig) -> Check:
    p = challenger.kupiec_p_95
    passes = math.isfinite(p) and p > cfg.kupiec_alpha
    verdict, above = ("passes", ">") if passes else ("fails", "not >")
    return passes, f"95% VaR {verdict} Kupiec's test: p {p:.3f} {above} {cfg.kupiec_alpha}"


def _against_champion(
    challenger: Scores, cfg: GateConfig, champion: Scores | None, same_procedure: bool
) -> Check:
    if champion is None:
        return True, "no champion yet: no margin to meet"
    if same_procedure:
        return True, "same procedure as the champion (refit): no margin, both scores would be the same number"
    if not math.isfinite(champion.crps):
        return False, "the champion's procedure has no CRPS on this window"
    bar = champion.crps * (1.0 - cfg.margin)
    beats = math.isfinite(challenger.crps) and challenger.crps < bar
    verdict = "beats" if beats else "does not beat"
    return beats, (
        f"CRPS {challenger.crps:.6f} {verdict} champion {champion.crps:.6f} by the {cfg.margin:.1%} margin "
        f"(needs < {bar:.6f})"
    )


def baseline_decision(
    challenger: str, rejected: Decision, baseline: Scores, best_baseline: str | None
) -> Decision:
    """Why :data:`BASELINE_MODEL` becomes the first champion after ``challenger`` (its label) was
    ``rejected``: when no model beats the best baseline, publishing the volatility baseline is the honest
    forecast. ``baseline`` is its own scores on the window (reported, not gated); when the run's best
    baseline is another one (it has no registrable model), the reasons say so."""
    honest = (
        f"no champion yet: the honest forecast is the volatility baseline {VOL_BASELINE}, published as the "
        f"model {BASELINE_MODEL} (the training targets' quantiles times sigma_t*sqrt(h))"
    )
    if best_baseline not in (None, VOL_BASELINE):
        honest += f"; the run's best baseline, {best_baseline}, has no registrable model"
    return Decision(
        True,
        (
            f"challenger {challenger} rejected: {'; '.join(rejected.failed)}",
            honest,
            f"{BASELINE_MODEL} on this window: CRPS {baseline.crps:.6f}, "
            f"coverage_90 {baseline.coverage_90:.3f}, Kupiec p {baseline.kupiec_p_95:.3f}",
        ),
    )
