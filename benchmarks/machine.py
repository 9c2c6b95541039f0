"""A description of the machine a benchmark ran on, for its JSON and its header."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

#: Distributions whose versions shape the numbers of the load generator's process.
LOCAL_PACKAGES = ("onnxruntime", "grpcio", "protobuf", "tritonclient", "numpy")

#: What each peer's environment is asked for, by venv name.
PEER_PACKAGES: Mapping[str, tuple[str, ...]] = {
    "mlserver": ("mlserver", "onnxruntime", "grpcio"),
    "pytriton": ("nvidia-pytriton", "onnxruntime"),
}


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's ``model name`` line, or the platform's processor string."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib(meminfo: Path = Path("/proc/meminfo")) -> float | None:
    """Total memory in GiB from ``MemTotal``, or ``None`` where it is not readable."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def load_average_1m() -> float | None:
    """The one-minute load average: other work on the machine skews every number."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def venv_versions(python: Path, packages: tuple[str, ...]) -> dict[str, str | None]:
    """Versions of ``packages`` as another interpreter (a peer's venv) sees them."""
    if not python.exists():
        return {}
    script = (
        "import importlib.metadata as m, json, sys\n"
        "def v(n):\n"
        "    try: return m.version(n)\n"
        "    except m.PackageNotFoundError: return None\n"
        "print(json.dumps({n: v(n) for n in sys.argv[1:]}))\n"
    )
    try:
        completed = subprocess.run(
            [str(python), "-c", script, *packages],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("could not read versions from %s: %s", python, exc)
        return {}

    versions: dict[str, str | None] = json.loads(completed.stdout)
    return versions


def peer_venvs() -> Path:
    """Where `benchmarks/peers/setup.sh` made the peers' virtual environments:
    `$BENCH_VENVS`, else `.bench-venvs/` at the repository root."""
    default = Path(__file__).resolve().parents[1] / ".bench-venvs"
    return Path(os.environ.get("BENCH_VENVS", default))


def describe_machine(venvs: Path) -> dict[str, object]:
    """CPU, cores, memory, OS, Python and the versions that matter, as JSON values."""
    try:
        usable_cores: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        usable_cores = None

    peers = {
        name: venv_versions(venvs / name / "bin" / "python", packages)
        for name, packages in PEER_PACKAGES.items()
    }
    return {
        "load_average_1m_before_run": load_average_1m(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores,
        "memory_gib": memory_gib(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: package_version(name) for name in LOCAL_PACKAGES},
        "peer_packages": {name: v for name, v in peers.items() if v},
    }
