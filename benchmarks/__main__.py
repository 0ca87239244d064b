"""``python -m benchmarks [--quick] [--only NAME ...]``: run the benchmarks, print and save the table."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import kraken_nb
from benchmarks.results import Report, render_markdown, write_report
from benchmarks.settings import Settings

__all__ = ["BENCHMARKS", "build_parser", "main"]

BENCHMARKS: dict[str, str] = {
    "core": "benchmarks.core_throughput",
    "e2e": "benchmarks.end_to_end",
    "ceiling": "benchmarks.ceiling",
    "responsive": "benchmarks.responsive",
    "dataframes": "benchmarks.dataframes",
    "widgets": "benchmarks.widget_bandwidth",
    "serve": "benchmarks.serve",
    "history": "benchmarks.history",
    "relay": "benchmarks.relay",
}
"""Benchmark names and the modules whose ``run(settings)`` measures them, in running order."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny corpus and short runs (smoke test)")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for latest.md/latest.json")
    parser.add_argument("--corpus-dir", type=Path, default=None, help="folder caching generated corpora")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated market (default 7)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings(quick=args.quick, seed=args.seed)
    if args.out is not None:
        settings = replace(settings, out_dir=args.out)
    if args.corpus_dir is not None:
        settings = replace(settings, corpus_dir=args.corpus_dir)
    return settings


def _runner(name: str) -> Callable[[Settings], Report]:
    return importlib.import_module(BENCHMARKS[name]).run


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks; print the markdown table; write the result files."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = _settings(args)
    names = [name for name in BENCHMARKS if not args.only or name in args.only]
    reports: list[Report] = []
    for name in names:
        started = time.perf_counter()
        sys.stderr.write(f"running {name}…\n")
        report = _runner(name)(settings)
        report.seconds = time.perf_counter() - started
        reports.append(report)
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": settings.quick,
        "seed": settings.seed,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "kraken_nb": kraken_nb.__version__,
        "benchmarks": names,
    }
    header = (
        f"## kraken_nb benchmarks ({'quick' if settings.quick else 'full'} run, {meta['date']}, "
        f"Python {meta['python']}, {meta['machine']})"
    )
    write_report(reports, settings.out_dir, header, meta)
    sys.stdout.write(render_markdown(reports, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
