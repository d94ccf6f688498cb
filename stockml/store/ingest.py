"""Ingestion steps: plan chunks, fetch and validate a batch, write it to the lake, record the manifest.

Each step is a plain function so that Prefect tasks (``tasks/ingest.py``) can wrap them one to one.
Chunks: as the source needs (``DataSource.chunk_days``): a folder or the demo market in one chunk, tushare
by trade dates. The reference tables (stock_basic, macro) come once per job, with its first pending chunk.
Resuming: every chunk written by a backfill job gets a manifest entry carrying the job id; a rerun of
the same job skips those chunks until the job is recorded as done.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from stockml.config import Settings, SettingsError
from stockml.sources.base import DATED_TABLES, REFERENCE_TABLES, DataSource, MarketData
from stockml.sources.factory import source_id, universe_for
from stockml.store.lake import Lake, UpsertResult, frame_hash, lake_summary
from stockml.store.validation import DataValidationError, validate_market_data

INCREMENTAL_DAYS = 7  # an incremental ingest re-reads this many calendar days before the lake's last day


@dataclass(frozen=True)
class Chunk:
    start: dt.date
    end: dt.date


@dataclass(frozen=True)
class IngestJob:
    """One ingest request of [start, end], set up: where from, what, where to, and its job id."""

    source: DataSource
    source_key: str  # :func:`~stockml.sources.factory.source_id` of the settings
    lake: Lake
    universe: list[str] | None  # ts_codes; None: everything the source has
    start: dt.date
    end: dt.date
    id: str  # :func:`job_id`: the same request resumes the same job


def ingest_job(
    settings: Settings, source: DataSource, start: dt.date, end: dt.date, symbols: Sequence[str] | None
) -> IngestJob:
    """Set up the ingest of [start, end] from ``source`` (built from ``settings`` by the caller) into the
    settings' lake: ``symbols`` (else the settings' universe) resolved against the source."""
    universe = universe_for(settings, source, symbols)
    key = source_id(settings)
    lake = Lake(settings.data_dir)
    check_one_market(lake, key)
    job = job_id(key, start, end, universe)
    return IngestJob(source, key, lake, universe, start, end, job)


SYNTHETIC = "demo"  # the source kind whose bars are simulated


def check_one_market(lake: Lake, source_key: str) -> None:
    """Refuse to write simulated bars into a lake of real ones, or real into simulated: the demo market's
    codes are real listed codes (``000001.SZ``), so the two would overwrite and mix silently, and every
    command without ``--symbols`` reads every symbol of its lake."""
    kind = source_key.split(":")[0]
    held = sorted({str(e.get("source", "")).split(":")[0] for e in lake.manifest()} - {""})
    clash = [k for k in held if (k == SYNTHETIC) != (kind == SYNTHETIC)]
    if clash:
        raise SettingsError(
            f"the lake {lake.root} holds {', '.join(held)} data and this ingest is {kind}: simulated and "
            "real bars share ts_codes, so they must not share a lake; give this one its own --data-dir "
            "(e.g. --data-dir data/ashare for the real sample)"
        )


def incremental_start(lake: Lake, history_start: dt.date) -> dt.date:
    """Where an incremental ingest begins: a few days before the lake's last bar when the lake already
    covers the history from ``history_start``, else ``history_start``."""
    summary = lake_summary(lake)
    first, last = summary["first_date"], summary["last_date"]
    if first is None or dt.date.fromisoformat(str(first)[:10]) > history_start:
        return history_start
    return max(history_start, dt.date.fromisoformat(str(last)[:10]) - dt.timedelta(days=INCREMENTAL_DAYS))


def chunk_days_for(source: DataSource, forced: int | None, configured: int | None) -> int | None:
    """Calendar days per backfill chunk (None: the whole range in one): ``forced`` (``--chunk-days``)
    for any source; else none for a source that serves a range in one pass (``source.chunk_days`` is
    None), and ``configured`` (the settings' ``ingest.chunk_days``) or the source's own for the others."""
    if forced is not None:
        return forced
    if source.chunk_days is None:
        return None
    return configured or source.chunk_days


def plan_chunks(start: dt.date, end: dt.date, chunk_days: int | None) -> list[Chunk]:
    """Consecutive calendar chunks of at most ``chunk_days`` days covering [start, end] (None: one)."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if chunk_days is None:
        return [Chunk(start, end)]
    chunks, lo = [], start
    while lo <= end:
        hi = min(lo + dt.timedelta(days=chunk_days - 1), end)
        chunks.append(Chunk(lo, hi))
        lo = hi + dt.timedelta(days=1)
    return chunks


def job_id(source_id: str, start: dt.date, end: dt.date, symbols: Sequence[str] | None) -> str:
    """A stable id for one backfill request: the same arguments resume the same job."""
    payload = json.dumps([source_id, str(start), str(end), sorted(symbols) if symbols else None])
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def done_chunks(lake: Lake, job: str) -> set[tuple[str, str]]:
    """Chunks this job already wrote since its last completion."""
    done: set[tuple[str, str]] = set()
    for entry in lake.manifest():
        if entry.get("job") != job:
            continue
        if entry.get("kind") == "job_done":
            done = set()
        elif entry.get("kind") == "chunk":
            done.add((entry["start"], entry["end"]))
    return done


def fetch_batch(job: IngestJob, chunk: Chunk, reference: bool) -> MarketData:
    """The dated tables of ``chunk`` and, with ``reference``, the reference tables over the whole job
    (a job asks for those once, with its first pending chunk, not again with every chunk)."""
    source, symbols = job.source, job.universe
    if reference and chunk == Chunk(job.start, job.end):
        return source.fetch(chunk.start, chunk.end, symbols)  # one pass: every table
    data = source.fetch(chunk.start, chunk.end, symbols, tables=DATED_TABLES)
    if not reference:
        return data
    ref = source.fetch(job.start, job.end, symbols, tables=REFERENCE_TABLES)
    tables = {t: getattr(ref, t) for t in REFERENCE_TABLES}
    return replace(data, **tables, read_errors=data.read_errors + ref.read_errors)


def validate_batch(data: MarketData, today: dt.date, report_dir: Path, label: str) -> MarketData:
    """Parse and check every table; on any failure write the full report and raise, writing nothing."""
    clean, report = validate_market_data(data, today)
    if not report.ok:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        path = report.write(report_dir / f"validation_{label}_{stamp}.csv")
        raise DataValidationError(report, path)
    return clean


def write_batch(lake: Lake, clean: MarketData) -> list[UpsertResult]:
    """Upsert every table of a validated batch."""
    with lake.lock():
        return [lake.upsert(table, frame) for table, frame in clean.tables().items() if not frame.empty]


def record_chunk(
    lake: Lake, *, job: str, source: str, chunk: Chunk, clean: MarketData, results: list[UpsertResult]
) -> dict:
    """Append the manifest entry of one written chunk (its lineage) and return it."""
    entry = {
        "kind": "chunk",
        "job": job,
        "source": source,
        "start": str(chunk.start),
        "end": str(chunk.end),
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "tables": {
            r.table: {
                "rows": r.rows_in,
                "inserted": r.inserted,
                "updated": r.updated,
                "content_hash": frame_hash(r.table, getattr(clean, r.table)),
            }
            for r in results
        },
    }
    lake.append_manifest(entry)
    return entry


def record_job_done(lake: Lake, *, job: str, source: str, start: dt.date, end: dt.date) -> dict:
    entry = {
        "kind": "job_done",
        "job": job,
        "source": source,
        "start": str(start),
        "end": str(end),
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "table_hashes": lake.table_hashes(),
    }
    lake.append_manifest(entry)
    return entry


def pending_chunks(
    lake: Lake, job: str, start: dt.date, end: dt.date, chunk_days: int | None
) -> tuple[list[Chunk], int]:
    """The chunks of [start, end] this job still has to write, and how many it already wrote."""
    chunks = plan_chunks(start, end, chunk_days)
    done = done_chunks(lake, job)
    todo = [c for c in chunks if (str(c.start), str(c.end)) not in done]
    return todo, len(chunks) - len(todo)


def ingest_range(
    lake: Lake,
    source: DataSource,
    source_key: str,
    start: dt.date,
    end: dt.date,
    symbols: Sequence[str] | None,
    chunk_days: int | None = None,
) -> list[dict]:
    """Backfill [start, end] without an orchestrator (the CLI's path; the flows use the same steps).
    ``chunk_days`` is the settings' ``ingest.chunk_days``: see :func:`chunk_days_for`."""
    universe = list(symbols) if symbols is not None else None
    check_one_market(lake, source_key)
    job = IngestJob(source, source_key, lake, universe, start, end, job_id(source_key, start, end, symbols))
    entries = []
    todo = pending_chunks(lake, job.id, start, end, chunk_days_for(source, None, chunk_days))[0]
    for i, chunk in enumerate(todo):
        data = fetch_batch(job, chunk, reference=i == 0)
        clean = validate_batch(
            data, dt.date.today(), lake.root / "_reports", f"{source.name}_{chunk.start:%Y%m%d}"
        )
        entries.append(
            record_chunk(
                lake,
                job=job.id,
                source=source_key,
                chunk=chunk,
                clean=clean,
                results=write_batch(lake, clean),
            )
        )
    record_job_done(lake, job=job.id, source=source_key, start=start, end=end)
    return entries
