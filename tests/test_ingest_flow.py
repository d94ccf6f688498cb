"""The ingest flow retries a flaky fetch, never a fatal one, and writes nothing on failure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest
import requests

from stockml.sources.base import MarketData
from stockml.sources.demo import DemoConfig, DemoSource
from stockml.sources.tushare_errors import TushareAuthError
from stockml.store.lake import Lake

DAY = (dt.date(2023, 3, 1), dt.date(2023, 3, 31))


@dataclass
class FlakySource:
    """The demo market behind a fetch that fails ``failures`` times with ``error`` first."""

    chunk_days: ClassVar[int | None] = None

    error: Exception
    failures: int
    name: str = "flaky"
    calls: int = 0
    inner: DemoSource = field(
        default_factory=lambda: DemoSource(DemoConfig(n_symbols=5, start=DAY[0], end=DAY[1]))
    )

    def fetch(
        self,
        start: dt.date,
        end: dt.date,
        symbols: Sequence[str] | None = None,
        *,
        tables: Collection[str] | None = None,
    ) -> MarketData:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.inner.fetch(start, end, symbols, tables=tables)

    def trading_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        return self.inner.trading_days(start, end)

    def index_constituents(self, index_code: str) -> list[str]:
        return []


def _run(monkeypatch: pytest.MonkeyPatch, source: FlakySource, data_dir: Path) -> None:
    import flows.ingest

    monkeypatch.setattr(flows.ingest, "make_source", lambda settings: source)
    flows.ingest.ingest(start=DAY[0], end=DAY[1], data_dir=data_dir)


@pytest.mark.slow
def test_transient_fetch_error_is_retried(
    tmp_path: Path, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = FlakySource(requests.exceptions.ConnectionError("reset by peer"), failures=2)
    _run(monkeypatch, source, tmp_path)
    assert source.calls == 3
    assert len(Lake(tmp_path).read("bars")) == len(source.inner.fetch(*DAY).bars)


@pytest.mark.slow
def test_fatal_fetch_error_is_not_retried(
    tmp_path: Path, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = FlakySource(TushareAuthError("tushare rejected TUSHARE_TOKEN"), failures=5)
    with pytest.raises(TushareAuthError, match="TUSHARE_TOKEN"):
        _run(monkeypatch, source, tmp_path)
    assert source.calls == 1
    assert Lake(tmp_path).tables() == [] and Lake(tmp_path).manifest() == []
