"""Ingest one date range: fetch -> validate -> upsert -> manifest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow

from stockml.config import Settings, SourceName, settings_for
from stockml.sources.factory import make_source
from stockml.store.ingest import Chunk, IngestJob
from tasks.ingest import fetch_chunk, finish_job, open_job, record_chunk, validate_chunk, write_chunk


def ingest_chunk(settings: Settings, job: IngestJob, chunk: Chunk, reference: bool = True) -> dict:
    """The four ingestion tasks for one chunk of ``job``; returns its manifest entry. With
    ``reference`` the chunk also carries the job's reference tables (stock_basic, macro)."""
    fetch = fetch_chunk.with_options(
        retries=settings.ingest.fetch_retries, retry_delay_seconds=settings.ingest.fetch_retry_delay_s
    )
    data = fetch(job, chunk, reference)
    label = f"{job.source.name}_{chunk.start:%Y%m%d}_{chunk.end:%Y%m%d}"
    clean = validate_chunk(data, dt.date.today(), job.lake.root / "_reports", label)
    results = write_chunk(job.lake, clean)
    return record_chunk(job.lake, job.id, job.source_key, chunk, clean, results)


@flow(name="ingest", log_prints=True)
def ingest(
    start: dt.date,
    end: dt.date,
    source: SourceName | None = None,
    symbols: list[str] | None = None,
    data_dir: Path | None = None,
    local_dir: Path | None = None,
) -> dict:
    """Ingest [start, end] from a source into the lake in one batch."""
    settings = settings_for(source, data_dir, local_dir)
    job = open_job(settings, make_source(settings), start, end, symbols)
    entry = ingest_chunk(settings, job, Chunk(start, end))
    finish_job(job)
    return entry
