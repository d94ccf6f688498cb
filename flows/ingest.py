"""Ingest one date range: fetch -> validate -> upsert -> manifest."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from prefect import flow

from stockml.config import Settings, SourceName, load_settings
from stockml.sources.base import DataSource
from stockml.sources.factory import make_source, resolve_universe, source_id
from stockml.store.ingest import Chunk, job_id, record_job_done
from stockml.store.lake import Lake
from tasks.ingest import fetch_chunk, record_chunk, validate_chunk, write_chunk


def settings_for(source: SourceName | None, data_dir: Path | None, local_dir: Path | None) -> Settings:
    """Settings from file and environment, with the flow's parameters on top."""
    overrides = {"source": source, "data_dir": data_dir, "local_dir": local_dir}
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def ingest_chunk(
    settings: Settings,
    source: DataSource,
    lake: Lake,
    job: str,
    chunk: Chunk,
    symbols: Sequence[str] | None,
) -> dict:
    """The four ingestion tasks for one chunk; returns its manifest entry."""
    fetch = fetch_chunk.with_options(
        retries=settings.ingest.fetch_retries, retry_delay_seconds=settings.ingest.fetch_retry_delay_s
    )
    data = fetch(source, chunk.start, chunk.end, symbols)
    label = f"{source.name}_{chunk.start:%Y%m%d}_{chunk.end:%Y%m%d}"
    clean = validate_chunk(data, dt.date.today(), lake.root / "_reports", label)
    results = write_chunk(lake, clean)
    return record_chunk(lake, job, source_id(settings), chunk, clean, results)


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
    src = make_source(settings)
    universe = resolve_universe(src, symbols or list(settings.universe))
    lake = Lake(settings.data_dir)
    key = source_id(settings)
    job = job_id(key, start, end, universe)
    entry = ingest_chunk(settings, src, lake, job, Chunk(start, end), universe)
    record_job_done(lake, job=job, source=key, start=start, end=end)
    return entry
