"""Result rows, the markdown table and the files a run writes."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["STATUSES", "Report", "Row", "render_markdown", "write_report"]

STATUSES = ("met", "missed", "info", "unavailable")
"""``met``/``missed`` a target, ``info`` (no target), ``unavailable`` (a peer package is missing)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One measured figure, optionally compared with another measured in the same run.

    ``compare`` is the sentence shown for ``ratio``, with ``{ratio}`` where the
    number goes, e.g. ``"Session.feed takes {ratio}× its time"``.
    """

    key: str
    """Stable identifier of the row (e.g. ``core.book10.feed``), the same in quick and full runs."""
    benchmark: str
    case: str
    value: float
    unit: str
    ratio: float | None = None
    compare: str = ""
    target: str = ""
    status: str = "info"
    note: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")

    @property
    def finite(self) -> bool:
        """Whether the value (and the ratio, when there is one) are finite numbers."""
        numbers = [self.value] + ([] if self.ratio is None else [self.ratio])
        return all(isinstance(x, (int, float)) and math.isfinite(x) for x in numbers)


@dataclass(slots=True)
class Report:
    """Rows of one benchmark plus free-form markdown details (per-level tables, profiles)."""

    name: str
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _ratio_cell(row: Row) -> str:
    if row.ratio is None:
        return ""
    return row.compare.replace("{ratio}", _number(row.ratio))


def render_markdown(reports: Sequence[Report], header: str = "") -> str:
    """The summary table of every row, followed by each benchmark's details."""
    lines = [header, ""] if header else []
    lines += [
        "| Benchmark | Case | Value | Compared with | Target | Status |",
        "|---|---|---:|---|---|---|",
    ]
    for report in reports:
        for row in report.rows:
            value = f"{_number(row.value)} {row.unit}".strip()
            status = row.status if not row.note else f"{row.status} ({row.note})"
            lines.append(
                f"| {row.benchmark} | {row.case} | {value} | {_ratio_cell(row)} | {row.target} | {status} |"
            )
    for report in reports:
        if report.details:
            lines += ["", f"### {report.name} ({report.seconds:.0f} s)", "", *report.details]
    return "\n".join(lines) + "\n"


def write_report(reports: Sequence[Report], directory: Path, header: str, meta: dict[str, Any]) -> Path:
    """Write ``latest.md`` and ``latest.json`` into ``directory``; return the markdown path."""
    directory.mkdir(parents=True, exist_ok=True)
    markdown = directory / "latest.md"
    markdown.write_text(render_markdown(reports, header), encoding="utf-8")
    payload = {
        "meta": meta,
        "rows": [asdict(row) for report in reports for row in report.rows],
        "benchmarks": {report.name: {"seconds": report.seconds, "data": report.data} for report in reports},
    }
    (directory / "latest.json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return markdown
