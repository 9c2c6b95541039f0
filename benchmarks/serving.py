"""The serving benchmark: one command, one load generator, every target, same payloads.

    python -m benchmarks.serving                 # the full run (about 20 minutes)
    python -m benchmarks.serving --rounds 1      # one round (about 6 minutes)
    python -m benchmarks.serving --quick         # a smoke run (about 30 s)
    python -m benchmarks.serving --targets onnxruntime oip-stub --models small_cnn
    python -m benchmarks.serving --views 8       # adds activeserve with 8 views
    python -m benchmarks.serving --server-cpus 1 # servers on CPU 1, load elsewhere

Targets: ``onnxruntime`` (a, in-process, the compute limit), ``oip-stub`` (b, a
Python OIP server without a model, the transport limit), ``activeserve`` (c, dynamic
batching), ``activeserve-nobatch`` (d), ``mlserver`` and ``pytriton`` (e, the peers,
from ``benchmarks/peers/setup.sh``), and ``activeserve-m<M>`` with ``--views M``.
Every target is measured ``--rounds`` times (3), the targets taking turns, and each
cell is the median round: one window on a shared machine can be off by a third.
Beside rows/s and latencies, each cell records the server's CPU time per request
(the server's whole process group, from /proc), which moves less than throughput
when something else shares the machine. Prints the tables and writes JSON with the
machine's description
(``benchmarks/results/serving.json`` by default). The load generator runs on the same
cores as the server it measures, unless ``--server-cpus`` splits them; the numbers
are for comparing targets with each other on one machine, not capacities.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from benchmarks.cpu_split import (
    CpuSplit,
    CpuSplitError,
    format_cpu_list,
    parse_cpu_list,
    pin_this_process,
)
from benchmarks.loadgen import LoadResult, LoadSpec, RequestSender, generate_load
from benchmarks.machine import describe_machine, load_average_1m, peer_venvs
from benchmarks.models import MODELS, ModelSpec, export_models, make_payloads
from benchmarks.report import Cell, Report, Skip, format_report
from benchmarks.targets.activeserve import ActiveserveTarget, BatchingConfig
from benchmarks.targets.base import RunContext, Target
from benchmarks.targets.oip_stub import StubTarget
from benchmarks.targets.onnxruntime_local import OnnxRuntimeTarget
from benchmarks.targets.peers import MLServerTarget, PeerBatching, PyTritonTarget

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

#: A one-minute load average above this many per core before the run is warned of.
BUSY_LOAD_PER_CORE = 0.5

SHARED_CORES_NOTE = (
    "The load generator (Python, asyncio, tritonclient) runs on the same cores as "
    "the server it measures: on a small machine it takes a large share of the CPU, "
    "so every number is a lower bound, fit for comparing targets with each other."
)

SPLIT_CORES_NOTE = (
    "Every server ran on CPUs {server} (its child processes too) and the load "
    "generator (Python, asyncio, tritonclient) on CPUs {client}: each target had the "
    "same cores, and the load generator's work was not charged to it. The in-process "
    "ONNX Runtime target ran on the server's CPUs."
)


@dataclass(frozen=True)
class Settings:
    """One run's choices; the defaults are the full run."""

    models: tuple[str, ...] = ("small_cnn", "resnet18")
    targets: tuple[str, ...] | None = None
    concurrencies: tuple[int, ...] | None = None
    warmup_s: float | None = None
    duration_s: float | None = None
    views: int = 1
    payload_count: int = 64
    seed: int = 0
    max_batch_size: int = 64
    max_queue_delay_ms: float = 2.0
    activeserve_queue_delay_ms: float | None = None
    startup_timeout_s: float = 120.0
    # Each target is measured this many times, targets taking turns; a cell is the
    # median round. On a shared machine one window can be off by a third.
    rounds: int = 3
    quick: bool = False
    # The servers' CPUs, the load generator keeping the rest; None shares them all.
    server_cpus: tuple[int, ...] | None = None


#: What --quick changes: the small model, two concurrencies, sub-second windows.
QUICK = Settings(
    models=("small_cnn",),
    concurrencies=(1, 8),
    warmup_s=0.2,
    duration_s=0.7,
    rounds=1,
    quick=True,
)


def build_targets(settings: Settings) -> list[Target]:
    """Every target of the run, in the order they are measured."""
    batching = BatchingConfig(
        enabled=True,
        max_batch_size=settings.max_batch_size,
        max_queue_delay_ms=settings.activeserve_queue_delay_ms,
    )
    peer_batching = PeerBatching(
        max_batch_size=settings.max_batch_size,
        max_queue_delay_ms=settings.max_queue_delay_ms,
    )
    targets: list[Target] = [
        OnnxRuntimeTarget(),
        StubTarget(),
        ActiveserveTarget("activeserve", batching),
        ActiveserveTarget("activeserve-nobatch", replace(batching, enabled=False)),
    ]
    if settings.views > 1:
        targets.append(
            ActiveserveTarget(
                f"activeserve-m{settings.views}", batching, settings.views
            )
        )
    targets += [MLServerTarget(peer_batching), PyTritonTarget(peer_batching)]

    if settings.targets is None:
        return targets
    known = {target.name for target in targets}
    unknown = sorted(set(settings.targets) - known)
    if unknown:
        raise SystemExit(
            f"unknown targets {unknown!r}; expected some of {sorted(known)!r}"
            " (activeserve-m<M> needs --views M)"
        )
    return [target for target in targets if target.name in settings.targets]


def model_plan(spec: ModelSpec, settings: Settings) -> ModelSpec:
    """The model's default cells, overridden by what the command line chose."""
    return replace(
        spec,
        concurrencies=settings.concurrencies or spec.concurrencies,
        warmup_s=spec.warmup_s if settings.warmup_s is None else settings.warmup_s,
        duration_s=(
            spec.duration_s if settings.duration_s is None else settings.duration_s
        ),
    )


async def measure(
    targets: Sequence[Target],
    settings: Settings,
    workdir: Path,
    split: CpuSplit | None = None,
) -> Report:
    """Export the models, then drive every target on every model; collect cells.
    With a `split`, servers run on its server CPUs and this process on the rest."""
    specs = [model_plan(MODELS[name], settings) for name in settings.models]
    exported = export_models(specs, workdir / "models", settings.seed)
    if split is not None:
        pin_this_process(split.client)
    context = RunContext(
        workdir=workdir,
        max_concurrency=max(c for spec in specs for c in spec.concurrencies),
        startup_timeout_s=settings.startup_timeout_s,
        cpu_split=split,
    )

    cells: list[Cell] = []
    skips: list[Skip] = []
    for model in exported:
        payloads = make_payloads(model.spec, settings.payload_count, settings.seed)
        runs: dict[tuple[str, int], list[Measured]] = {}
        skipped: set[str] = set()
        for round_number in range(1, settings.rounds + 1):
            for target in targets:
                if target.name in skipped:
                    continue
                reason = target.unavailable_reason(context)
                if reason is not None:
                    logger.warning("skipping %s: %s", target.name, reason)
                    skips.append(Skip(target.name, model.spec.name, reason))
                    skipped.add(target.name)
                    continue

                try:
                    async with target.open(model, payloads, context) as sender:
                        for concurrency in model.spec.concurrencies:
                            window = await measure_cell(
                                sender, model.spec, concurrency, len(payloads)
                            )
                            runs.setdefault((target.name, concurrency), []).append(
                                window
                            )
                            result = window.result
                            logger.info(
                                "round %d, %s %s c=%s: %.1f rows/s, p50 %.2f ms, "
                                "p99 %.2f ms, CPU us/request: server %s, load "
                                "generator %s",
                                round_number,
                                target.name,
                                model.spec.name,
                                concurrency,
                                result.rows_per_s,
                                result.p50_ms,
                                result.p99_ms,
                                fmt_us(window.server_cpu_us),
                                fmt_us(window.client_cpu_us),
                            )
                except Exception as exc:  # one broken target must not end the run
                    logger.error(
                        "%s on %s failed: %s", target.name, model.spec.name, exc
                    )
                    skips.append(Skip(target.name, model.spec.name, f"failed: {exc}"))
                    skipped.add(target.name)

        for (target_name, _), measured in runs.items():
            cells.append(median_cell(target_name, model.spec.name, measured))

    multi = f"activeserve-m{settings.views}" if settings.views > 1 else None
    return Report(
        cells=cells, skips=skips, views=settings.views, multi_view_target=multi
    )


@dataclass(frozen=True)
class Measured:
    """One window, and the CPU microseconds per answered request that the server's
    processes and the load generator's own process spent over it."""

    result: LoadResult
    server_cpu_us: float | None
    client_cpu_us: float | None


async def measure_cell(
    sender: RequestSender, spec: ModelSpec, concurrency: int, payload_count: int
) -> Measured:
    """One window at one concurrency, with the CPU spent per request over it."""
    load = LoadSpec(
        concurrency=concurrency, duration_s=spec.duration_s, warmup_s=spec.warmup_s
    )
    cpu = getattr(sender, "server_cpu_s", None)
    before = cpu() if cpu is not None else None
    client_before = time.process_time()
    result = await generate_load(sender, load, payload_count)
    client_after = time.process_time()
    after = cpu() if cpu is not None else None
    return Measured(
        result,
        cpu_us_per_request(before, after, result.completed),
        cpu_us_per_request(client_before, client_after, result.completed),
    )


def median_cell(target: str, model: str, measured: Sequence[Measured]) -> Cell:
    """The cell of the round with the median rows/s (the lower middle of an even
    count), with every round's rows/s and the median CPU figures beside it."""
    ordered = sorted(measured, key=lambda run: run.result.rows_per_s)
    return Cell(
        target,
        model,
        ordered[(len(ordered) - 1) // 2].result,
        server_cpu_us=median([run.server_cpu_us for run in measured]),
        client_cpu_us=median([run.client_cpu_us for run in measured]),
        rounds_rows_per_s=tuple(run.result.rows_per_s for run in measured),
    )


def median(values: Sequence[float | None]) -> float | None:
    """The (lower) median of the values that are known, or None."""
    known = sorted(value for value in values if value is not None)
    return known[(len(known) - 1) // 2] if known else None


def fmt_us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def cpu_split(settings: Settings) -> CpuSplit | None:
    """The run's CPU split, or None when servers and load generator share."""
    if settings.server_cpus is None:
        return None
    try:
        return CpuSplit.for_server(frozenset(settings.server_cpus))
    except CpuSplitError as error:
        raise SystemExit(f"--server-cpus: {error}") from None


def cpu_us_per_request(
    before: float | None, after: float | None, completed: int
) -> float | None:
    """CPU microseconds per answered request over one load, warm-up included
    (the CPU clock cannot tell the window from the warm-up)."""
    if before is None or after is None or completed == 0:
        return None
    return (after - before) / completed * 1e6


def warn_if_busy() -> None:
    """Say so when other work already loads the machine: it skews every cell."""
    load = load_average_1m()
    cores = os.cpu_count() or 1
    if load is not None and load > BUSY_LOAD_PER_CORE * cores:
        logger.warning(
            "the one-minute load average is %.2f on %s cores before the run; other "
            "processes will skew the numbers (the JSON records it)",
            load,
            cores,
        )


def write_json(path: Path, document: dict[str, object]) -> None:
    """Write ``document`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2, default=str) + "\n")
    os.replace(temporary, path)


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, Path, Path | None]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serving",
        description="Serving benchmark of activeserve against its limits and peers.",
    )
    parser.add_argument("--quick", action="store_true", help="a ~30 s smoke run")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS))
    parser.add_argument("--targets", nargs="+", metavar="NAME")
    parser.add_argument("--concurrency", nargs="+", type=int, dest="concurrencies")
    parser.add_argument("--warmup-s", type=float)
    parser.add_argument("--duration-s", type=float, help="timed window per cell")
    parser.add_argument(
        "--views", type=int, default=1, help="also run activeserve with M views"
    )
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument(
        "--max-queue-delay-ms",
        type=float,
        default=2.0,
        help="the peers' batching delay (default: %(default)s)",
    )
    parser.add_argument(
        "--activeserve-queue-delay-ms",
        type=float,
        default=None,
        help="activeserve's batching delay (default: its own default)",
    )
    parser.add_argument("--startup-timeout-s", type=float, default=120.0)
    parser.add_argument(
        "--rounds",
        type=int,
        help="measure every target this many times, taking turns; a cell is the "
        "median round (default 3, --quick 1)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--server-cpus",
        type=parse_cpu_list,
        metavar="LIST",
        help="run every server on these CPUs (taskset list, e.g. 1) and the load "
        "generator on the others (default: all share every CPU)",
    )
    parser.add_argument(
        "--output", type=Path, help="JSON path (default benchmarks/results/...)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep models, repositories and server logs here"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.views < 1:
        parser.error(f"--views {args.views!r} is below 1; pass 1 or more")
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds {args.rounds!r} is below 1; pass 1 or more")

    base = QUICK if args.quick else Settings()
    settings = replace(
        base,
        models=tuple(args.models) if args.models else base.models,
        targets=tuple(args.targets) if args.targets else None,
        concurrencies=(
            tuple(args.concurrencies) if args.concurrencies else base.concurrencies
        ),
        warmup_s=base.warmup_s if args.warmup_s is None else args.warmup_s,
        duration_s=base.duration_s if args.duration_s is None else args.duration_s,
        views=args.views,
        max_batch_size=args.max_batch_size,
        max_queue_delay_ms=args.max_queue_delay_ms,
        activeserve_queue_delay_ms=args.activeserve_queue_delay_ms,
        startup_timeout_s=args.startup_timeout_s,
        rounds=base.rounds if args.rounds is None else args.rounds,
        seed=args.seed,
        server_cpus=(
            None if args.server_cpus is None else tuple(sorted(args.server_cpus))
        ),
    )

    name = "serving-quick.json" if args.quick else "serving.json"
    return settings, args.output or RESULTS_DIR / name, args.workdir


def main(argv: Sequence[str] | None = None) -> int:
    settings, output, workdir = parse_args(argv)
    targets = build_targets(settings)
    started = datetime.datetime.now(datetime.timezone.utc)
    warn_if_busy()

    # Described before the run, so that the load average is other processes' alone.
    machine = describe_machine(peer_venvs())
    split = cpu_split(settings)
    note = (
        SHARED_CORES_NOTE
        if split is None
        else SPLIT_CORES_NOTE.format(
            server=format_cpu_list(split.server), client=format_cpu_list(split.client)
        )
    )

    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(measure(targets, settings, workdir, split))
    else:
        with tempfile.TemporaryDirectory(prefix="activeserve-bench-") as scratch:
            report = asyncio.run(measure(targets, settings, Path(scratch), split))

    arguments = list(argv) if argv is not None else sys.argv[1:]
    document: dict[str, object] = {
        "created": started.isoformat(timespec="seconds"),
        "command": ["python", "-m", "benchmarks.serving", *arguments],
        "note": note,
        "cpu_split": None if split is None else split.as_dict(),
        "machine": machine,
        "settings": asdict(settings),
        "targets": {target.name: target.description for target in targets},
        **report.as_dict(),
    }
    write_json(output, document)

    print(
        f"{machine['cpu_model']}, {machine['usable_cores']} usable cores, "
        f"{machine['memory_gib']} GiB, {machine['python']}; one-row requests"
    )
    print(note)
    print()
    print(format_report(report))
    print(f"\nwrote {output}")
    return 0 if report.cells else 1


if __name__ == "__main__":
    raise SystemExit(main())
