"""Generate the committed protobuf artefacts in `proto/` from the `.proto` sources.

One command, one source of truth: `python scripts/generate_proto.py` (or `make proto`).

- activeserve's own services (`tensor.proto`, `feedback.proto`, `models.proto`, package
  `activeserve.v1`) become ordinary `*_pb2.py`, `*_pb2.pyi` and `*_pb2_grpc.py` modules.
  protoc runs with the virtual include path `-Iactiveserve/proto=proto`, so generated
  modules import each other as `activeserve.proto.x_pb2`.
- The Open Inference Protocol (`inference.proto`) becomes a serialized descriptor,
  `inference.binpb`, which `activeserve.proto.inference` loads into a private descriptor
  pool (see that module for why).

`--check DIR` writes into DIR instead of `proto/`; the test suite uses it to fail when
the committed files are stale.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
SERVICE_SOURCES = ("tensor.proto", "feedback.proto", "models.proto")
OIP_SOURCE = "inference.proto"
OIP_DESCRIPTOR = "inference.binpb"
VIRTUAL_ROOT = "activeserve/proto"


def _protoc(args: list[str]) -> None:
    include = str(Path(protoc.__file__).parent / "_proto")
    includes = [f"-I{VIRTUAL_ROOT}={PROTO_DIR}", f"-I{include}"]
    code = protoc.main(["protoc", *includes, *args])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code} for {args!r}")


def generate(out_dir: Path) -> list[Path]:
    """Write every generated file into `out_dir`; returns their paths."""
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)

        sources = [f"{VIRTUAL_ROOT}/{name}" for name in SERVICE_SOURCES]
        _protoc(
            [
                f"--python_out={scratch}",
                f"--pyi_out={scratch}",
                f"--grpc_python_out={scratch}",
                *sources,
            ]
        )
        _protoc(
            [
                f"--descriptor_set_out={scratch / OIP_DESCRIPTOR}",
                f"{VIRTUAL_ROOT}/{OIP_SOURCE}",
            ]
        )

        # protoc mirrors the virtual path; the package's files live flat in proto/.
        written = []
        out_dir.mkdir(parents=True, exist_ok=True)
        generated = [*(scratch / VIRTUAL_ROOT).iterdir(), scratch / OIP_DESCRIPTOR]
        for path in sorted(generated):
            target = out_dir / path.name
            shutil.copyfile(path, target)
            written.append(target)
        return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", type=Path, help="write into this folder instead")
    args = parser.parse_args(argv)

    out_dir = args.check or PROTO_DIR
    for path in generate(out_dir):
        print(path.relative_to(out_dir.parent) if not args.check else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
