"""Backfill a date range in chunks, resumably: ``python -m flows.backfill --source demo --start D --end D``.

A rerun of the same request after a crash skips the chunks already written (the manifest records
them) and finishes the job; upserts make any repeated chunk harmless.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from prefect import flow

from flows.ingest import ingest_chunk, settings_for
from stockml.config import SourceName
from stockml.data.sources import make_source, resolve_universe, source_id
from stockml.ingest import done_chunks, job_id, plan_chunks, record_job_done
from stockml.lake import Lake, lake_summary


@flow(name="backfill", log_prints=True)
def backfill(
    start: dt.date,
    end: dt.date,
    source: SourceName | None = None,
    symbols: list[str] | None = None,
    data_dir: Path | None = None,
    local_dir: Path | None = None,
    chunk_days: int | None = None,
) -> dict:
    """Ingest [start, end] chunk by chunk; returns a summary of the job and of the lake."""
    began = time.perf_counter()
    settings = settings_for(source, data_dir, local_dir)
    src = make_source(settings)
    universe = resolve_universe(src, symbols or list(settings.universe))
    lake = Lake(settings.data_dir)
    key = source_id(settings)
    job = job_id(key, start, end, universe)
    chunks = plan_chunks(start, end, chunk_days or settings.ingest.chunk_days)
    done = done_chunks(lake, job)
    todo = [c for c in chunks if (str(c.start), str(c.end)) not in done]
    print(f"backfill {key} {start}..{end}: {len(chunks)} chunks, {len(chunks) - len(todo)} already done")
    entries = [ingest_chunk(settings, src, lake, job, chunk, universe) for chunk in todo]
    record_job_done(lake, job=job, source=key, start=start, end=end)
    summary = {
        "job": job,
        "source": key,
        "chunks_run": len(todo),
        "chunks_skipped": len(chunks) - len(todo),
        "rows_inserted": sum(t["inserted"] for e in entries for t in e["tables"].values()),
        "rows_updated": sum(t["updated"] for e in entries for t in e["tables"].values()),
        "tables_used": sorted({t for e in entries for t in e["tables"]}),
        "lake": lake_summary(lake),
        "seconds": round(time.perf_counter() - began, 1),
    }
    return summary


def format_summary(summary: dict) -> str:
    lake = summary["lake"]
    return "\n".join(
        [
            f"backfill done in {summary['seconds']} s: {summary['chunks_run']} chunk(s) run, "
            f"{summary['chunks_skipped']} skipped; {summary['rows_inserted']} rows inserted, "
            f"{summary['rows_updated']} updated",
            f"tables used this run: {', '.join(summary['tables_used']) or 'none'}",
            f"lake {lake['root']}: {lake['symbols']} symbols, {lake['bars']} bars, "
            f"{lake['first_date']}..{lake['last_date']}; tables {', '.join(lake['tables'])}",
        ]
    )


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flows.backfill", description=__doc__)
    parser.add_argument("--source", choices=["demo", "local", "tushare"], default=None)
    parser.add_argument("--data-dir", type=Path, default=None, help="lake root (default: settings)")
    parser.add_argument("--local-dir", type=Path, default=None, help="folder of tushare files (local)")
    parser.add_argument("--start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--end", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--symbols", nargs="*", default=None, help="ts_codes or index codes")
    parser.add_argument("--chunk-days", type=int, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    summary = backfill(
        start=args.start,
        end=args.end,
        source=args.source,
        symbols=args.symbols,
        data_dir=args.data_dir,
        local_dir=args.local_dir,
        chunk_days=args.chunk_days,
    )
    print(format_summary(summary))


if __name__ == "__main__":
    main()
