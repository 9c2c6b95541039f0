"""The committed protobuf artefacts match their sources, and the Open Inference
Protocol definition matches the published one that tritonclient carries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_committed_stubs_are_not_stale(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "generate_proto.py"),
            "--check",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )

    generated = sorted(path.name for path in tmp_path.iterdir())
    assert generated, "the generator wrote nothing"
    stale = [
        name
        for name in generated
        if (ROOT / "proto" / name).read_bytes() != (tmp_path / name).read_bytes()
    ]
    assert not stale, f"run `make proto` and commit: {stale} differ from their sources"


def test_inference_messages_match_tritonclients_field_numbers() -> None:
    from tritonclient.grpc import service_pb2

    from activeserve.proto import inference as oip

    for method in oip.METHODS:
        for ours in (method.request.DESCRIPTOR, method.response.DESCRIPTOR):
            theirs = service_pb2.DESCRIPTOR.message_types_by_name[ours.name]
            _assert_same_fields(ours, theirs)
    theirs_service = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert theirs_service.full_name == oip.SERVICE_NAME


def _assert_same_fields(ours, theirs) -> None:
    assert ours.full_name == theirs.full_name
    for field in ours.fields:
        other = theirs.fields_by_name[field.name]
        assert (field.number, field.type) == (other.number, other.type), field.full_name
    for nested in ours.nested_types:
        _assert_same_fields(nested, theirs.nested_types_by_name[nested.name])


@pytest.mark.parametrize(
    "imports",
    [
        "import tritonclient.grpc; import activeserve.client; "
        "from activeserve.proto import inference",
        "from activeserve.proto import inference; import activeserve.client; "
        "import tritonclient.grpc",
    ],
    ids=["tritonclient-first", "activeserve-first"],
)
def test_tritonclient_and_activeserve_share_a_process(imports: str) -> None:
    code = (
        f"{imports}\n"
        "from tritonclient.grpc import service_pb2\n"
        "from activeserve.proto import inference\n"
        "wire = inference.ModelInferRequest(model_name='m').SerializeToString()\n"
        "assert service_pb2.ModelInferRequest.FromString(wire).model_name == 'm'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
