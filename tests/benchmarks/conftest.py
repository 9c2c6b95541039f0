"""Make the repository's ``benchmarks`` folder importable for these tests.

``benchmarks`` is not part of the installed distribution; it is imported from the
repository root, as ``python -m benchmarks.serving`` does.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
