"""The active-learning benchmark: how many labels does AIFT save on real data?

    python -m benchmarks.active_learning                    # digits, 5 seeds
    python -m benchmarks.active_learning --quick            # smoke run, 1-2 minutes
    python -m benchmarks.active_learning --dataset breast_cancer --jobs 2
    python -m benchmarks.active_learning --methods aift random --policies all

A pool-based run of the loop the server and trainer implement (see
``benchmarks/active/README.md``): from a random seed set, each selection method
picks ``--batch`` labels per round from the unlabelled pool, the model is fine-tuned
from its current weights under each policy (``all``, ``hq``), and its test accuracy
is recorded until ``--budget`` labels are spent. An all-labels reference, trained on
the whole pool, sets the target: ``target_fraction`` (99%) of its accuracy. Prints a
table and writes ``active_learning.json`` and ``active_learning.png`` to
``--output-dir`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.active.datasets import BUILTIN, Dataset, load_builtin
from benchmarks.active.loop import Curve, LoopSettings, run_reference, run_trial
from benchmarks.active.methods import METHODS
from benchmarks.active.output import (
    format_table,
    plot_curves,
    results_document,
    write_json,
)
from benchmarks.active.summary import summarise
from benchmarks.machine import cpu_model, load_average_1m, memory_gib, package_version

logger = logging.getLogger(__name__)

# Run as __main__, this module's own logger is not under "benchmarks".
_BENCHMARK_LOGGER = logging.getLogger("benchmarks")

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

#: Distributions whose versions shape the numbers.
PACKAGES = ("torch", "numpy", "scikit-learn", "activeserve")

POLICIES = ("all", "hq")

DEFAULT_SEEDS = 5
QUICK_SEEDS = 2

#: The protocol per built-in data set (the defaults of a full run).
DATASET_SETTINGS: dict[str, LoopSettings] = {
    "digits": LoopSettings(),
    "breast_cancer": LoopSettings(
        seed_labels=10, batch=10, budget=200, epochs=20, reference_epochs=40
    ),
}

#: What ``--quick`` changes, per data set: a small label cap and short training.
#: Its figures only show that the loop runs; they are not the benchmark's.
QUICK_CHANGES: dict[str, dict[str, int]] = {
    "digits": {"budget": 100, "epochs": 10, "reference_epochs": 10},
    "breast_cancer": {"budget": 60, "epochs": 10, "reference_epochs": 20},
}


@dataclass(frozen=True)
class RunPlan:
    """What to run: the data set, the protocol, and which seeds, methods, policies."""

    dataset: Dataset
    settings: LoopSettings
    seeds: tuple[int, ...]
    methods: tuple[str, ...]
    policies: tuple[str, ...]
    jobs: int = 1


@dataclass(frozen=True)
class RunResult:
    references: tuple[float, ...]
    curves: tuple[Curve, ...]
    wall_time_s: float
    torch_threads: int


#: Intra-op threads of each worker's torch. The models are small (a batch of 32
#: 8x8 images is a few million multiply-adds): a second thread gains little, and on
#: a shared machine it loses much to contention, so cores go to ``--jobs`` instead.
TORCH_THREADS = 1


def configure_logging(verbose: bool) -> None:
    """WARNING for everything; with ``verbose``, INFO from the benchmark (one line
    per trial) while the trainer's per-round lines stay quiet."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    if verbose:
        _BENCHMARK_LOGGER.setLevel(logging.INFO)


def _init_worker(threads: int, verbose: bool) -> None:
    torch.set_num_threads(threads)
    configure_logging(verbose)


def _task(
    kind: str, dataset: Dataset, settings: LoopSettings, args: tuple[Any, ...]
) -> float | Curve:
    if kind == "reference":
        return run_reference(dataset, args[0], settings)
    return run_trial(dataset, args[0], args[1], args[2], settings)


def run(plan: RunPlan) -> RunResult:
    """Every reference and trial of ``plan``, in ``plan.jobs`` processes."""
    threads = TORCH_THREADS
    tasks: list[tuple[str, tuple[Any, ...]]] = [
        ("reference", (seed,)) for seed in plan.seeds
    ]
    tasks += [
        ("trial", (method, policy, seed))
        for seed in plan.seeds
        for policy in plan.policies
        for method in plan.methods
    ]
    started = time.perf_counter()

    if plan.jobs == 1:
        torch.set_num_threads(threads)
        outcomes = [
            _task(kind, plan.dataset, plan.settings, args) for kind, args in tasks
        ]
    else:
        # spawn, not fork: a forked copy of an initialised torch can deadlock.
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=plan.jobs,
            mp_context=context,
            initializer=_init_worker,
            initargs=(threads, _BENCHMARK_LOGGER.isEnabledFor(logging.INFO)),
        ) as pool:
            futures = [
                pool.submit(_task, kind, plan.dataset, plan.settings, args)
                for kind, args in tasks
            ]
            outcomes = [future.result() for future in futures]

    references = tuple(float(x) for x in outcomes if not isinstance(x, Curve))
    curves = tuple(x for x in outcomes if isinstance(x, Curve))
    return RunResult(
        references=references,
        curves=curves,
        wall_time_s=time.perf_counter() - started,
        torch_threads=threads,
    )


def describe_machine() -> dict[str, Any]:
    try:
        usable_cores: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        usable_cores = None
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores,
        "memory_gib": memory_gib(),
        "load_average_1m_before_run": load_average_1m(),
        "python": sys.version.split()[0],
    }


def results_stem(dataset_name: str, *, quick: bool = False) -> str:
    """The results' file name without suffix: ``active_learning`` for digits,
    ``active_learning-<dataset>`` otherwise, ``-quick`` added for a smoke run (so
    that it never overwrites a full run's results)."""
    stem = "active_learning"
    if dataset_name != "digits":
        stem += f"-{dataset_name}"
    return stem + "-quick" if quick else stem


def benchmark(
    plan: RunPlan, output_dir: Path, *, quick: bool = False
) -> dict[str, Any]:
    """Run ``plan``, print the table, write the JSON and the plot (named by
    :func:`results_stem`) into ``output_dir``; return the JSON document."""
    machine = describe_machine()
    result = run(plan)

    reference = float(np.mean(result.references))
    target = plan.settings.target_fraction * reference
    summaries = summarise(result.curves, target, plan.settings.batch)

    dataset = plan.dataset
    header = {
        "benchmark": "active_learning",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "dataset": {
            "name": dataset.name,
            "pool_size": dataset.pool_size,
            "test_size": int(dataset.test_inputs.shape[0]),
            "input_shape": list(dataset.input_shape),
            "classes": list(dataset.classes),
            "factory": dataset.factory,
            "factory_kwargs": dict(dataset.factory_kwargs),
            "views": dataclasses.asdict(dataset.views),
        },
        "settings": {
            **dataclasses.asdict(plan.settings),
            "seeds": list(plan.seeds),
            "methods": list(plan.methods),
            "policies": list(plan.policies),
            "jobs": plan.jobs,
            "torch_threads": result.torch_threads,
        },
        "machine": machine,
        "versions": {name: package_version(name) for name in PACKAGES},
        "wall_time_s": round(result.wall_time_s, 1),
        "label_grid": list(result.curves[0].labels),
    }
    document = results_document(
        summaries=summaries,
        curves=result.curves,
        references=result.references,
        target=target,
        header=header,
    )

    stem = results_stem(dataset.name, quick=quick)
    write_json(output_dir / f"{stem}.json", document)
    plot_curves(output_dir / f"{stem}.png", result.curves, target, dataset.name)

    print(format_table(summaries, target, reference))
    print(
        f"{len(result.curves)} trials, {len(plan.seeds)} seeds, "
        f"{result.wall_time_s / 60:.1f} min with {plan.jobs} job(s) x "
        f"{result.torch_threads} torch thread(s); wrote {output_dir}/{stem}.json, .png"
    )
    return document


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.active_learning",
        description="Labels saved by active selection, pool-based, over seeds.",
    )
    parser.add_argument("--dataset", choices=tuple(BUILTIN), default="digits")
    parser.add_argument("--seeds", type=int, help=f"seeds (default {DEFAULT_SEEDS})")
    parser.add_argument(
        "--methods", nargs="+", choices=tuple(METHODS), default=list(METHODS)
    )
    parser.add_argument("--policies", nargs="+", choices=POLICIES, default=POLICIES)
    parser.add_argument("--budget", type=int, help="label cap")
    parser.add_argument("--batch", type=int, help="labels added per round (b)")
    parser.add_argument("--seed-labels", type=int, help="labels before round 1")
    parser.add_argument("--epochs", type=int, help="epochs per round")
    parser.add_argument("--views", type=int, help="views m the AIFT methods score")
    parser.add_argument("--alpha", type=float, help="majority-selection fraction")
    parser.add_argument("--omega", type=float, help="aift-random's pool factor")
    parser.add_argument(
        "--train-views", type=int, help="views per candidate in training"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_SEEDS} seeds and a small budget: a smoke run of 1 to 2 minutes",
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("-v", "--verbose", action="store_true", help="log each trial")
    return parser.parse_args(argv)


def plan_from_args(args: argparse.Namespace) -> RunPlan:
    """The run ``args`` ask for: the data set's defaults, ``--quick``, then flags."""
    settings = DATASET_SETTINGS[args.dataset]
    if args.quick:
        settings = dataclasses.replace(settings, **QUICK_CHANGES[args.dataset])

    overrides = {
        "budget": args.budget,
        "batch": args.batch,
        "seed_labels": args.seed_labels,
        "epochs": args.epochs,
        "views": args.views,
        "alpha": args.alpha,
        "omega": args.omega,
        "train_views": args.train_views,
    }
    settings = dataclasses.replace(
        settings,
        **{key: value for key, value in overrides.items() if value is not None},
    )

    seeds = args.seeds or (QUICK_SEEDS if args.quick else DEFAULT_SEEDS)
    if seeds < 1 or args.jobs < 1:
        raise ValueError(
            f"--seeds {seeds!r} and --jobs {args.jobs!r} must both be at least 1"
        )
    return RunPlan(
        dataset=load_builtin(args.dataset),
        settings=settings,
        seeds=tuple(range(seeds)),
        methods=tuple(dict.fromkeys(args.methods)),
        policies=tuple(dict.fromkeys(args.policies)),
        jobs=args.jobs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    configure_logging(args.verbose)
    try:
        plan = plan_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    benchmark(plan, args.output_dir, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
