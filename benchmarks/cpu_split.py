"""Which cores the servers get and which the load generator keeps.

On a small machine the load generator competes with the server it measures: a
server that spreads over several processes (tritonserver beside its Python model
process) takes cores the load generator then lacks, and one bound to a single
interpreter leaves them to it, so shared-core figures mix the server's cost with the
load generator's. A split gives every server target the same cores (its process
group, children included, through ``taskset``) and keeps the load generator on the
rest; the in-process ONNX Runtime target, which *is* its server, runs on the
server's cores. Linux only.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


class CpuSplitError(ValueError):
    """Raised when a requested split cannot be made on this machine."""


def parse_cpu_list(text: str) -> frozenset[int]:
    """Read a CPU list as taskset writes it: ``1``, ``0,2`` or ``2-3``."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if last else low
        except ValueError:
            raise CpuSplitError(
                f"CPU list {text!r} is not like '1', '0,2' or '2-3'"
            ) from None
        if low < 0 or high < low:
            raise CpuSplitError(f"CPU range {part!r} in {text!r} is empty or negative")
        cpus.update(range(low, high + 1))
    return frozenset(cpus)


def format_cpu_list(cpus: Iterable[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


@dataclass(frozen=True)
class CpuSplit:
    """The server's cores and the load generator's, disjoint."""

    server: frozenset[int]
    client: frozenset[int]

    @classmethod
    def for_server(
        cls, server: frozenset[int], available: frozenset[int] | None = None
    ) -> CpuSplit:
        """Give the server ``server`` and the load generator every other core this
        process may use."""
        usable = available if available is not None else usable_cpus()
        outside = sorted(server - usable)
        if outside:
            raise CpuSplitError(
                f"server CPUs {outside!r} are not usable here; expected some of "
                f"{sorted(usable)!r}"
            )
        client = usable - server
        if not server or not client:
            raise CpuSplitError(
                f"server CPUs {sorted(server)!r} leave "
                f"{sorted(client)!r} of {sorted(usable)!r} for the load generator; "
                "both need at least one"
            )
        if shutil.which("taskset") is None:
            raise CpuSplitError(
                "taskset (util-linux) is not on PATH; it starts the servers on their "
                "cores"
            )
        return cls(server=server, client=client)

    def server_command(self, command: Sequence[str]) -> list[str]:
        """``command`` started on the server's cores; its children inherit them."""
        return ["taskset", "--cpu-list", format_cpu_list(self.server), *command]

    def as_dict(self) -> dict[str, list[int]]:
        return {"server_cpus": sorted(self.server), "client_cpus": sorted(self.client)}


def usable_cpus() -> frozenset[int]:
    """The cores this process may run on."""
    return frozenset(os.sched_getaffinity(0))


def pin_this_process(cpus: frozenset[int]) -> None:
    """Move every thread of this process onto ``cpus``; threads started later
    inherit the set from the thread that starts them."""
    for task in Path("/proc/self/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except (ProcessLookupError, FileNotFoundError):
            continue  # the thread ended between the listing and the call
