"""Build the configured data source, and resolve a universe against it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from stockml.config import Settings, SettingsError
from stockml.sources.base import DataSource

# Every command (stockml, flows.backfill, flows.daily) builds its source here, so all say the same.
LOCAL_DIR_MISSING = (
    "source 'local' needs the folder of tushare files: --local-dir PATH (or STOCKML_LOCAL_DIR, or "
    "local_dir in the config file); --data-dir is the lake, not the source. e.g. "
    "python -m flows.backfill --source local --local-dir ../shared/data/ashare_sample --data-dir data"
)


def make_source(settings: Settings) -> DataSource:
    """The source named by ``settings.source``, configured from its settings section."""
    if settings.source == "demo":
        from stockml.sources.demo import DemoConfig, DemoSource

        return DemoSource(DemoConfig.model_validate(settings.demo))
    if settings.source == "local":
        from stockml.sources.local import LocalSource

        if settings.local_dir is None:
            raise SettingsError(LOCAL_DIR_MISSING)
        return LocalSource(settings.local_dir)
    if settings.source == "akshare":
        from stockml.sources.akshare_source import AkshareConfig, AkshareSource

        progress = settings.data_dir / "_progress" / "akshare"  # resumes a fetch that died part-way
        return AkshareSource(AkshareConfig.model_validate(settings.akshare), progress_dir=progress)
    if settings.source == "yfinance":
        from stockml.sources.yfinance_source import YfinanceConfig, YfinanceSource

        return YfinanceSource(YfinanceConfig.model_validate(settings.yfinance))
    from stockml.sources.tushare_source import TushareConfig, TushareSource

    return TushareSource(TushareConfig.model_validate(settings.tushare))


def source_id(settings: Settings) -> str:
    """Identifies what a source would return, so a resumed job knows it reads the same thing."""
    detail: object = {
        "demo": settings.demo,
        "local": str(settings.local_dir),
        "tushare": None,
        "akshare": _akshare_adjust(settings) if settings.source == "akshare" else None,
        "yfinance": None,
    }[settings.source]
    digest = hashlib.sha256(json.dumps(detail, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{settings.source}:{digest}"


def _akshare_adjust(settings: Settings) -> str:
    """The one akshare setting that changes what it returns (rates and retries do not)."""
    from stockml.sources.akshare_source import AkshareConfig

    return AkshareConfig.model_validate(settings.akshare).adjust


def resolve_universe(source: DataSource, spec: Sequence[str]) -> list[str] | None:
    """ts_codes of a universe given as codes and/or index codes; empty spec -> None (everything)."""
    if not spec:
        return None
    codes: list[str] = []
    for item in spec:
        members = source.index_constituents(item)
        codes.extend(members if members else [item])
    return sorted(set(codes))


def universe_for(settings: Settings, source: DataSource, symbols: Sequence[str] | None) -> list[str] | None:
    """A run's universe: ``symbols`` when given, else the settings' universe, resolved against ``source``."""
    return resolve_universe(source, symbols or list(settings.universe))
