"""The benchmark's findings: cells, ratios, the printed table and the JSON document.

A *cell* is one target measured on one model at one concurrency. Ratios compare
rows/s at the same model and concurrency: every target against the transport limit
(the OIP stub) and the compute limit (in-process ONNX Runtime), and each activeserve
target against each peer. The m-view check compares activeserve's cost per row with
``m`` views to its cost with one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from benchmarks.loadgen import LoadResult

#: Target names the ratios are taken against.
STUB = "oip-stub"
ORT = "onnxruntime"
PEERS = ("mlserver", "pytriton")
ACTIVESERVE_PREFIX = "activeserve"

#: The m-view target's cost per row may be at most this many times ``m`` times the
#: single-view cost.
VIEWS_COST_FACTOR = 1.2


@dataclass(frozen=True)
class Cell:
    """One target, one model, one concurrency."""

    target: str
    model: str
    result: LoadResult
    # CPU microseconds the server's processes spent per answered request; None for
    # the in-process target and where /proc cannot tell.
    server_cpu_us: float | None = None
    # CPU microseconds the load generator's own process spent per answered request
    # (for the in-process target, that is the model's runs too).
    client_cpu_us: float | None = None
    # Rows/s of every round, in the order measured; `result` is the median round.
    rounds_rows_per_s: tuple[float, ...] = ()


@dataclass(frozen=True)
class Skip:
    """A target that did not run (or failed) on a model, and why."""

    target: str
    model: str
    reason: str


@dataclass(frozen=True)
class ViewsCheck:
    """activeserve's cost of ``views`` views against one, at one model/concurrency.

    ``cost_ratio`` is single-view rows/s over m-view rows/s (how many times more a
    row costs with m views); ``limit`` is ``VIEWS_COST_FACTOR * views``.
    """

    model: str
    concurrency: int
    views: int
    single_rows_per_s: float
    multi_rows_per_s: float
    cost_ratio: float
    limit: float

    @property
    def passed(self) -> bool:
        return self.cost_ratio <= self.limit


@dataclass(frozen=True)
class Report:
    """Everything one run found, in the order it was measured."""

    cells: Sequence[Cell]
    skips: Sequence[Skip] = field(default_factory=tuple)
    views: int = 1
    multi_view_target: str | None = None

    def rows_per_s(self, target: str, model: str, concurrency: int) -> float | None:
        for cell in self.cells:
            if (cell.target, cell.model, cell.result.concurrency) == (
                target,
                model,
                concurrency,
            ):
                return cell.result.rows_per_s
        return None

    def ratio(self, cell: Cell, against: str) -> float | None:
        """``cell``'s rows/s over ``against``'s at the same model and concurrency."""
        other = self.rows_per_s(against, cell.model, cell.result.concurrency)
        if other is None or other == 0 or math.isnan(other):
            return None
        return cell.result.rows_per_s / other

    def models(self) -> list[str]:
        return list(dict.fromkeys(cell.model for cell in self.cells))

    def views_checks(self) -> list[ViewsCheck]:
        """The m-view cost against single view, wherever both were measured."""
        if self.multi_view_target is None or self.views <= 1:
            return []
        checks = []
        for cell in self.cells:
            if cell.target != self.multi_view_target:
                continue
            single = self.rows_per_s(
                ACTIVESERVE_PREFIX, cell.model, cell.result.concurrency
            )
            multi = cell.result.rows_per_s
            if single is None or multi <= 0:
                continue
            checks.append(
                ViewsCheck(
                    model=cell.model,
                    concurrency=cell.result.concurrency,
                    views=self.views,
                    single_rows_per_s=single,
                    multi_rows_per_s=multi,
                    cost_ratio=single / multi,
                    limit=VIEWS_COST_FACTOR * self.views,
                )
            )
        return checks

    def as_dict(self) -> dict[str, object]:
        """The results part of the JSON document."""
        results = []
        for cell in self.cells:
            entry: dict[str, object] = {
                "target": cell.target,
                "model": cell.model,
                **cell.result.as_dict(),
                "server_cpu_us_per_request": cell.server_cpu_us,
                "client_cpu_us_per_request": cell.client_cpu_us,
                "rows_per_s_rounds": list(cell.rounds_rows_per_s),
                "ratio_to_oip_stub": self.ratio(cell, STUB),
                "ratio_to_onnxruntime": self.ratio(cell, ORT),
            }
            if compared_with_peers(cell.target):
                entry["ratio_to_peer"] = {p: self.ratio(cell, p) for p in PEERS}
            results.append(entry)

        return {
            "results": results,
            "skipped": [vars(skip) for skip in self.skips],
            "views_check": [
                {**vars(check), "passed": check.passed} for check in self.views_checks()
            ],
        }


def compared_with_peers(target: str) -> bool:
    """Whether a target's rows/s are set against each peer's: activeserve's, and
    the transport limit's, which bounds what any server on it can lead them by."""
    return target.startswith(ACTIVESERVE_PREFIX) or target == STUB


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A plain-text table: the first column left-aligned, the others right."""
    rows = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = []
    for number, row in enumerate(rows):
        cells = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i])
            for i in range(len(row))
        ]
        lines.append("  ".join(cells))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def format_report(report: Report) -> str:
    """The tables a person reads after a run."""
    sections = []
    for model in report.models():
        cells = [cell for cell in report.cells if cell.model == model]
        rows = [
            [
                cell.target,
                str(cell.result.concurrency),
                fmt(cell.result.requests_per_s),
                fmt(cell.result.rows_per_s),
                fmt(cell.result.p50_ms, 2),
                fmt(cell.result.p99_ms, 2),
                str(cell.result.errors),
                fmt(cell.server_cpu_us, 0),
                fmt(cell.client_cpu_us, 0),
                fmt(report.ratio(cell, STUB), 2),
                fmt(report.ratio(cell, ORT), 2),
            ]
            for cell in cells
        ]
        headers = ["target", "conc", "req/s", "rows/s", "p50 ms", "p99 ms"]
        headers += ["errors", "server cpu us", "loadgen cpu us", "x stub", "x ort"]
        sections.append(f"model {model}\n" + render_table(headers, rows))

        peers_measured = {cell.target for cell in cells} & set(PEERS)
        peer_rows = [
            [
                cell.target,
                str(cell.result.concurrency),
                *(fmt(report.ratio(cell, peer), 2) for peer in PEERS),
            ]
            for cell in cells
            if compared_with_peers(cell.target)
        ]
        if peer_rows and peers_measured:
            headers = ["rows/s ratio to the peers", "conc"]
            headers += [f"x {peer}" for peer in PEERS]
            sections.append(render_table(headers, peer_rows))

    checks = report.views_checks()
    if checks:
        rows = [
            [
                check.model,
                str(check.concurrency),
                fmt(check.single_rows_per_s),
                fmt(check.multi_rows_per_s),
                fmt(check.cost_ratio, 2),
                fmt(check.limit, 2),
                "yes" if check.passed else "NO",
            ]
            for check in checks
        ]
        headers = ["m-view cost check", "conc", "rows/s 1 view"]
        headers += [f"rows/s {report.views} views", "cost x", "limit x", "within"]
        sections.append(render_table(headers, rows))

    if report.skips:
        sections.append(
            "not measured:\n"
            + "\n".join(
                f"  {skip.target} on {skip.model}: {first_line(skip.reason)}"
                for skip in report.skips
            )
        )
    return "\n\n".join(sections)


def first_line(text: str) -> str:
    """The first line of a (possibly multi-line) reason; the JSON keeps it whole."""
    lines = text.strip().splitlines()
    return lines[0] if lines else ""
