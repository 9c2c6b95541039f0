"""Who may give a sample a verdict, and which labels are acceptable.

A verdict is a label, "unclassifiable" or a skip. These checks run inside the
verdict's transaction, on the sample row as locked there, so a concurrent lease
cannot slip between the check and the write.
"""

from __future__ import annotations

from activeserve.server.queue.errors import InvalidLabel, LeaseConflict
from activeserve.server.queue.model import Sample, SampleState

__all__ = ["check_label", "check_lease", "verdict_of"]


def check_label(label: int, num_classes: int | None) -> None:
    """Raise InvalidLabel unless ``label`` is a class index (below ``num_classes``)."""
    if isinstance(label, bool) or not isinstance(label, int) or label < 0:
        raise InvalidLabel(f"label {label!r} must be a class index, an int >= 0")
    if num_classes is not None and label >= num_classes:
        raise InvalidLabel(
            f"label {label!r} is not a class of this model; expected "
            f"0..{num_classes - 1}"
        )


def check_lease(
    sample: Sample, lease_token: str | None, reviewer: str, now: float
) -> None:
    """Raise LeaseConflict unless the caller may give ``sample`` a verdict now.

    With a token: it must be the sample's latest lease token. Every new lease
    replaces the token, so an old one fails once someone else has leased the sample;
    an expired lease nobody took over still counts. Without a token: refused only
    while another reviewer holds an unexpired lease.
    """
    if lease_token is not None:
        if lease_token != sample.lease_token:
            raise LeaseConflict(
                f"lease token {lease_token!r} is no longer valid for sample "
                f"{sample.id} (now {sample.state.value}, last leased by "
                f"{sample.leased_by!r}); lease the sample again"
            )
        return

    if sample.state is SampleState.LEASED and sample.leased_by != reviewer:
        remaining_s = (sample.lease_expires_at or now) - now
        raise LeaseConflict(
            f"sample {sample.id} is leased by {sample.leased_by!r} for another "
            f"{remaining_s:.0f}s; {reviewer!r} may give a verdict with that lease's "
            f"token or after it expires"
        )


def verdict_of(sample: Sample) -> str:
    """The sample's verdict in words, for error messages."""
    if sample.state is SampleState.UNCLASSIFIABLE:
        return f"marked unclassifiable by {sample.reviewer!r}"
    return f"labelled {sample.label!r} by {sample.reviewer!r}"
