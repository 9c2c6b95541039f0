"""CPU time used by a server and every process of its group, read from /proc.

Throughput on a small shared machine moves with whatever else runs on it; the CPU
a server spends per request moves much less, so the benchmark records both. Linux
only: elsewhere the reading is None and the benchmark leaves the column empty.
"""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")


def process_group_cpu_s(group: int) -> float | None:
    """User plus system CPU seconds of every live process in process group `group`
    (a server started in a session of its own, with its children), or None where
    /proc cannot tell."""
    if not _PROC.is_dir():
        return None
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended between the listing and the read
        # The command name (field 2) may hold spaces: split after its ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == group:  # field 5, the process group
            total += int(fields[11]) + int(fields[12])  # fields 14 and 15
    return total / ticks_per_s
