"""Ratios and the m-view cost check of the benchmark's report."""

from __future__ import annotations

import pytest

from benchmarks.loadgen import LoadSpec, summarise
from benchmarks.report import Cell, Report, Skip, format_report


def cell(target: str, concurrency: int, requests: int) -> Cell:
    spec = LoadSpec(concurrency=concurrency, duration_s=1.0, warmup_s=0.0)
    result = summarise([0.001] * requests, errors=0, spec=spec)
    return Cell(target=target, model="small_cnn", result=result)


def test_ratios_compare_rows_per_second_at_the_same_concurrency() -> None:
    activeserve = cell("activeserve", 8, 300)
    report = Report(
        cells=[
            cell("onnxruntime", 8, 1200),
            cell("oip-stub", 8, 600),
            cell("mlserver", 8, 100),
            cell("oip-stub", 1, 50),
            activeserve,
        ]
    )

    assert report.ratio(activeserve, "oip-stub") == pytest.approx(0.5)
    assert report.ratio(activeserve, "onnxruntime") == pytest.approx(0.25)
    assert report.ratio(activeserve, "mlserver") == pytest.approx(3.0)
    assert report.ratio(activeserve, "pytriton") is None


def test_views_check_passes_within_the_limit_and_fails_beyond_it() -> None:
    report = Report(
        cells=[
            cell("activeserve", 8, 1000),
            cell("activeserve-m4", 8, 250),
            cell("activeserve", 32, 1000),
            cell("activeserve-m4", 32, 200),
        ],
        views=4,
        multi_view_target="activeserve-m4",
    )

    checks = {check.concurrency: check for check in report.views_checks()}

    assert checks[8].cost_ratio == pytest.approx(4.0)
    assert checks[8].limit == pytest.approx(4.8)
    assert checks[8].passed
    assert checks[32].cost_ratio == pytest.approx(5.0)
    assert not checks[32].passed


def test_table_lists_targets_that_were_not_measured() -> None:
    report = Report(
        cells=[cell("oip-stub", 1, 10)],
        skips=[Skip("mlserver", "small_cnn", "venv missing\nlog tail")],
    )

    table = format_report(report)

    assert "mlserver on small_cnn: venv missing" in table
    assert "log tail" not in table


def test_server_cpu_per_request_is_printed_and_kept() -> None:
    measured = Cell(
        target="activeserve",
        model="small_cnn",
        result=cell("activeserve", 8, 300).result,
        server_cpu_us=612.4,
        client_cpu_us=287.6,
    )
    report = Report(cells=[measured, cell("onnxruntime", 8, 1200)])

    table = format_report(report)
    results = report.as_dict()["results"]

    assert "server cpu us" in table and "loadgen cpu us" in table
    assert "612" in table and "288" in table
    assert isinstance(results, list)
    assert results[0]["server_cpu_us_per_request"] == 612.4
    assert results[0]["client_cpu_us_per_request"] == 287.6
    assert results[1]["server_cpu_us_per_request"] is None


def test_the_transport_limits_lead_over_each_peer_is_reported_beside_activeserves() -> (
    None
):
    report = Report(
        cells=[
            cell("oip-stub", 32, 700),
            cell("activeserve", 32, 560),
            cell("pytriton", 32, 500),
        ]
    )

    table = format_report(report)
    results = {entry["target"]: entry for entry in report.as_dict()["results"]}

    assert results["oip-stub"]["ratio_to_peer"]["pytriton"] == pytest.approx(1.4)
    assert results["activeserve"]["ratio_to_peer"]["pytriton"] == pytest.approx(1.12)
    assert "ratio_to_peer" not in results["pytriton"]
    stub_line = next(
        line
        for line in table.splitlines()
        if line.startswith("oip-stub ") and line.rstrip().endswith("1.40")
    )
    assert "32" in stub_line
