"""The demo's loop, shortened: serve, traffic, oracle reviewer, trainer, swaps."""

from __future__ import annotations

from pathlib import Path

import pytest

from activeserve.trainer.demo import DemoOptions, run_demo


@pytest.mark.slow
def test_the_demo_learns_from_its_traffic_and_stops_its_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = DemoOptions(
        workdir=tmp_path, waves=2, traffic_limit=400, wave_timeout_s=120.0
    )

    reports = run_demo(options)

    out = capsys.readouterr().out
    assert [r.wave for r in reports] == [0, 1, 2]
    assert reports[-1].traffic == 400
    assert reports[-1].labels_used > 0
    assert reports[-1].version > 1
    assert reports[-1].accuracy >= reports[0].accuracy
    assert "stopped `activeserve serve` (exit 0)" in out
    assert "stopped `activeserve train` (exit 0)" in out
    assert (tmp_path / "learning_curve.png").stat().st_size > 0
