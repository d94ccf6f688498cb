"""Ingestion tasks: set up, fetch (retried on transient errors only), validate, write, record.

The source's reads (calendar, index members, bars) retry on transient errors; the lake's never do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from prefect import task
from prefect.logging import get_run_logger

from stockml.config import Settings
from stockml.sources.base import DataSource, FatalSourceError, MarketData
from stockml.sources.factory import universe_for
from stockml.store import ingest
from stockml.store.lake import Lake, UpsertResult
from tasks import PLAIN

SOURCE_RETRIES = {"retries": 3, "retry_delay_seconds": 2}


def _retry_helps(task_obj: object, task_run: object, state: object) -> bool:
    """Retry a failed fetch unless the error is one no retry can fix."""
    return not isinstance(getattr(state, "data", None), FatalSourceError | FileNotFoundError)


@task(name="trading-calendar", retry_condition_fn=_retry_helps, **SOURCE_RETRIES, **PLAIN)
def trading_calendar(source: DataSource, start: dt.date, end: dt.date) -> list[dt.date]:
    return source.trading_days(start, end)


@task(name="universe", retry_condition_fn=_retry_helps, **SOURCE_RETRIES, **PLAIN)
def universe(settings: Settings, source: DataSource, symbols: Sequence[str] | None) -> list[str] | None:
    return universe_for(settings, source, symbols)


@task(name="open-ingest-job", retry_condition_fn=_retry_helps, **SOURCE_RETRIES, **PLAIN)
def open_job(
    settings: Settings, source: DataSource, start: dt.date, end: dt.date, symbols: Sequence[str] | None
) -> ingest.IngestJob:
    return ingest.ingest_job(settings, source, start, end, symbols)


@task(name="ingest-start", **PLAIN)
def ingest_start(lake: Lake, history_start: dt.date) -> dt.date:
    return ingest.incremental_start(lake, history_start)


@task(name="pending-chunks", **PLAIN)
def pending_chunks(
    job: ingest.IngestJob, forced: int | None, configured: int | None
) -> tuple[list[ingest.Chunk], int]:
    """The chunks still to write, cut as the source needs (``--chunk-days``: ``forced``)."""
    days = ingest.chunk_days_for(job.source, forced, configured)
    return ingest.pending_chunks(job.lake, job.id, job.start, job.end, days)


# The chunk tasks pass frames: PLAIN, or Prefect hashes every input frame to make a cache key.
@task(retry_condition_fn=_retry_helps, **SOURCE_RETRIES, **PLAIN)
def fetch_chunk(job: ingest.IngestJob, chunk: ingest.Chunk, reference: bool) -> MarketData:
    data = ingest.fetch_batch(job, chunk, reference)
    sizes = {k: len(v) for k, v in data.tables().items()}
    get_run_logger().info("fetched %s..%s: %s", chunk.start, chunk.end, sizes)
    return data


@task(**PLAIN)
def validate_chunk(data: MarketData, today: dt.date, report_dir: Path, label: str) -> MarketData:
    return ingest.validate_batch(data, today, report_dir, label)


@task(**PLAIN)
def write_chunk(lake: Lake, clean: MarketData) -> list[UpsertResult]:
    results = ingest.write_batch(lake, clean)
    get_run_logger().info("upserted: %s", [(r.table, r.inserted, r.updated) for r in results])
    return results


@task(**PLAIN)
def record_chunk(
    lake: Lake, job: str, source: str, chunk: ingest.Chunk, clean: MarketData, results: list[UpsertResult]
) -> dict:
    return ingest.record_chunk(lake, job=job, source=source, chunk=chunk, clean=clean, results=results)


@task(name="finish-ingest-job", **PLAIN)
def finish_job(job: ingest.IngestJob) -> dict:
    return ingest.record_job_done(job.lake, job=job.id, source=job.source_key, start=job.start, end=job.end)
