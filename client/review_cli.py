"""`activeserve review` and `activeserve queue stats`: the label queue in a terminal."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from activeserve.client.client import Client
from activeserve.client.errors import ClientError
from activeserve.client.review import ReviewItem
from activeserve.client.terminal import render_input, render_prediction, render_scores

PROMPT = "label (class id or name), [s]kip, [u]nclassifiable, [q]uit: "


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    review = subparsers.add_parser(
        "review",
        help="label flagged samples in the terminal",
        description="Lease flagged samples of MODEL one batch at a time, show each "
        "one, and read its label from the keyboard.",
    )
    _server_arguments(review)
    review.add_argument("--model", required=True)
    review.add_argument("--batch", type=int, default=8, help="samples leased at once")
    review.add_argument(
        "--lease-s", type=float, default=300.0, help="lease length in seconds"
    )
    review.add_argument("--reviewer", default=None, help="name recorded with labels")
    review.set_defaults(handler=_review)

    queue = subparsers.add_parser("queue", help="the label queue")
    queue_commands = queue.add_subparsers(dest="queue_command", metavar="COMMAND")
    queue_commands.required = True
    stats = queue_commands.add_parser("stats", help="counts, agreement, stopping")
    _server_arguments(stats)
    stats.add_argument("--model", required=True)
    stats.set_defaults(handler=_stats)


def _server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", default="127.0.0.1:8001", help="HOST:PORT (default: %(default)s)"
    )
    parser.add_argument("--timeout-s", type=float, default=30.0)


def _review(args: argparse.Namespace) -> int:
    with Client(args.server, timeout_s=args.timeout_s) as client:
        return review_loop(
            client,
            args.model,
            batch=args.batch,
            lease_s=args.lease_s,
            reviewer=args.reviewer,
            stdin=sys.stdin,
            stdout=sys.stdout,
        )


def review_loop(
    client: Client,
    model: str,
    *,
    batch: int,
    lease_s: float,
    reviewer: str | None,
    stdin: TextIO,
    stdout: TextIO,
) -> int:
    """Show each leased sample and apply the answer typed for it; returns 0."""
    answered = 0
    items = client.review(model, batch=batch, lease_s=lease_s, reviewer=reviewer)
    try:
        for item in items:
            _show(item, stdout)
            if not _ask(item, stdin, stdout):
                break
            answered += 1
    finally:
        items.close()
    print(f"{answered} sample(s) answered.", file=stdout)
    return 0


def _show(item: ReviewItem, out: TextIO) -> None:
    print(
        f"\nsample {item.sample_id}  (model {item.model} version {item.model_version})",
        file=out,
    )
    print(render_input(item.input), file=out)
    print(f"predicted {item.predicted_class!r}:", file=out)
    print(render_prediction(item.probabilities, item.class_labels), file=out)
    print(render_scores(item.scores), file=out)


def _ask(item: ReviewItem, stdin: TextIO, out: TextIO) -> bool:
    """Read answers until one is applied; False means quit."""
    while True:
        print(PROMPT, end="", file=out, flush=True)
        answer = stdin.readline()
        if not answer:
            return False
        answer = answer.strip()
        if answer in ("q", "quit"):
            return False
        if answer in ("s", "skip"):
            item.skip()
            print("skipped", file=out)
            return True
        if answer in ("u", "unclassifiable"):
            item.unclassifiable()
            print("marked unclassifiable", file=out)
            return True
        try:
            recorded = item.submit(answer)
        except (ValueError, ClientError) as error:
            print(f"not recorded: {error}", file=out)
            continue
        print("labelled" if recorded else "already labelled", file=out)
        return True


def _stats(args: argparse.Namespace) -> int:
    with Client(args.server, timeout_s=args.timeout_s) as client:
        stats = client.queue_stats(args.model)
    print(f"model {stats.model}")
    for state, count in sorted(stats.counts.items()):
        print(f"  {state:<16}{count:>8}")
    agreement = "-" if stats.agreement is None else f"{stats.agreement:.3f}"
    unclassifiable = (
        "-"
        if stats.unclassifiable_fraction is None
        else f"{stats.unclassifiable_fraction:.3f}"
    )
    print(f"  flagged total   {stats.flagged_total:>8}")
    print(f"  labels total    {stats.labels_total:>8}")
    print(f"  evictions       {stats.evictions:>8}")
    print(f"  flag rate       {stats.flag_rate:>8.3f}")
    print(f"  oldest pending  {stats.oldest_pending_age_s:>7.1f}s")
    print(f"  agreement       {agreement:>8}")
    print(f"  unclassifiable  {unclassifiable:>8}")
    reasons = ", ".join(stats.stopping.reasons) or "none"
    print(f"  stop            {'yes' if stats.stopping.stop else 'no':>8} ({reasons})")
    return 0
