from __future__ import annotations

import ast
import sys
from pathlib import Path

import activeserve.core

CORE = Path(activeserve.core.__file__).resolve().parent

# tomli stands in for tomllib on Python 3.10 only.
ALLOWED = {"numpy", "tomli"}


def test_core_imports_only_numpy_and_the_standard_library() -> None:
    outside: list[str] = []
    for path in sorted(CORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in ALLOWED and top not in sys.stdlib_module_names:
                    outside.append(f"{path.name}: {name}")

    assert outside == []


def test_the_package_re_exports_its_public_names() -> None:
    for name in activeserve.core.__all__:
        assert getattr(activeserve.core, name) is not None
