"""Ingestion tasks: fetch (retried on transient errors only), validate, write, record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from prefect import task
from prefect.logging import get_run_logger

from stockml.sources.base import DataSource, FatalSourceError, MarketData
from stockml.store import ingest
from stockml.store.lake import Lake, UpsertResult


def _retry_helps(task_obj: object, task_run: object, state: object) -> bool:
    """Retry a failed fetch unless the error is one no retry can fix."""
    return not isinstance(getattr(state, "data", None), FatalSourceError | FileNotFoundError)


@task(retries=3, retry_delay_seconds=2, retry_condition_fn=_retry_helps)
def fetch_chunk(
    source: DataSource, start: dt.date, end: dt.date, symbols: Sequence[str] | None
) -> MarketData:
    data = source.fetch(start, end, symbols)
    get_run_logger().info("fetched %s..%s: %s", start, end, {k: len(v) for k, v in data.tables().items()})
    return data


@task
def validate_chunk(data: MarketData, today: dt.date, report_dir: Path, label: str) -> MarketData:
    return ingest.validate_batch(data, today, report_dir, label)


@task
def write_chunk(lake: Lake, clean: MarketData) -> list[UpsertResult]:
    results = ingest.write_batch(lake, clean)
    get_run_logger().info("upserted: %s", [(r.table, r.inserted, r.updated) for r in results])
    return results


@task
def record_chunk(
    lake: Lake, job: str, source: str, chunk: ingest.Chunk, clean: MarketData, results: list[UpsertResult]
) -> dict:
    return ingest.record_chunk(lake, job=job, source=source, chunk=chunk, clean=clean, results=results)
