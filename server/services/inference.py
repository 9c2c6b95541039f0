"""The Open Inference Protocol service (`inference.GRPCInferenceService`).

ModelInfer answers with the model's own outputs for the inputs as given, then the
uncertainty outputs named in `activeserve.proto.names` (probabilities, label, the
scores, and the queue's flagged/sample_id), always as `raw_output_contents`. A request
that lists `outputs` gets those, in its order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import grpc
import numpy as np

from activeserve.proto import inference as oip
from activeserve.proto import names
from activeserve.proto.codec import (
    decode_raw,
    decode_typed,
    has_typed_contents,
)
from activeserve.server.errors import InvalidRequest
from activeserve.server.flagging import unflagged
from activeserve.server.registry import ModelRegistry
from activeserve.server.runtime.model import LoadedModel, Prediction
from activeserve.server.services.guard import unary
from activeserve.server.services.responses import ResponseEncoder

logger = logging.getLogger(__name__)

SERVER_NAME = "activeserve"
EXTENSIONS = ("model_repository", "uncertainty", "feedback")


class Flagger(Protocol):
    """Decides which candidates go to the label queue, and queues them durably."""

    async def flag(
        self,
        model: LoadedModel,
        candidates: np.ndarray,
        datatype: str,
        prediction: Prediction,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(flagged `[N]` bool, sample ids `[N]` int64, -1 where not flagged)."""
        ...


class InferenceService:
    """Handlers for every RPC of the service that activeserve implements."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        version: str,
        flagger: Flagger | None = None,
        is_ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self._registry = registry
        self._version = version
        self._flagger = flagger
        self._is_ready = is_ready
        self._responses = ResponseEncoder()

    def handlers(self) -> dict[str, Callable[..., Any]]:
        return {method.name: getattr(self, method.name) for method in oip.METHODS}

    def add_to(self, server: grpc.aio.Server) -> None:
        oip.add_servicer(server, self.handlers())

    @unary
    async def ServerLive(self, request: Any, context: Any) -> Any:
        return oip.ServerLiveResponse(live=True)

    @unary
    async def ServerReady(self, request: Any, context: Any) -> Any:
        return oip.ServerReadyResponse(ready=self._is_ready())

    @unary
    async def ModelReady(self, request: Any, context: Any) -> Any:
        self._registry.repository.model_dir(request.name)
        ready = self._registry.is_ready(request.name, request.version)
        return oip.ModelReadyResponse(ready=ready)

    @unary
    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        providers = [f"execution_provider:{p}" for p in self._registry.providers]
        return oip.ServerMetadataResponse(
            name=SERVER_NAME,
            version=self._version,
            extensions=[*EXTENSIONS, *providers],
        )

    @unary
    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        model = await self._registry.get(request.name, request.version)
        versions = [str(v) for v in self._registry.repository.versions(model.name)]
        response = oip.ModelMetadataResponse(
            name=model.name, versions=versions, platform="onnxruntime_onnx"
        )
        response.inputs.add(
            name=model.input.name,
            datatype=model.input.datatype,
            shape=list(model.input.shape),
        )
        for spec in model.session.outputs:
            response.outputs.add(
                name=spec.name, datatype=spec.datatype, shape=list(spec.shape)
            )
        for name, datatype, shape in _extra_output_specs(model):
            response.outputs.add(name=name, datatype=datatype, shape=shape)
        return response

    @unary
    async def ModelInfer(self, request: Any, context: Any) -> Any:
        model = await self._registry.get(request.model_name, request.model_version)
        candidates, datatype = _decode_input(model, request)
        client_views = _int_parameter(request, names.CANDIDATE_VIEWS)
        prediction = await model.predict(candidates, client_views=client_views)

        count = len(prediction.labels)
        if self._flagger is not None and _bool_parameter(request, names.FLAG, True):
            firsts = candidates if client_views is None else candidates[::client_views]
            flagged, sample_ids = await self._flagger.flag(
                model, firsts, datatype, prediction
            )
        else:
            flagged, sample_ids = unflagged(count)

        outputs = _outputs(model, prediction, flagged, sample_ids)
        response = self._responses.encode(
            model,
            outputs,
            _requested(request, outputs),
            model_name=model.name,
            model_version=str(model.version),
            request_id=request.id,
        )
        logger.debug(
            "model %s version %d: %d candidates served",
            model.name,
            model.version,
            count,
        )
        return response

    @unary
    async def RepositoryIndex(self, request: Any, context: Any) -> Any:
        response = oip.RepositoryIndexResponse()
        for entry in self._registry.index():
            if request.ready and entry.state != "READY":
                continue
            response.models.add(
                name=entry.name,
                version=entry.version,
                state=entry.state,
                reason=entry.reason,
            )
        return response

    @unary
    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        await self._registry.load(request.model_name)
        return oip.RepositoryModelLoadResponse()

    @unary
    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        await self._registry.unload(request.model_name)
        return oip.RepositoryModelUnloadResponse()


def _decode_input(model: LoadedModel, request: Any) -> tuple[np.ndarray, str]:
    if len(request.inputs) != 1:
        given = [tensor.name for tensor in request.inputs]
        raise InvalidRequest(
            f"model {model.name!r} takes one input, {model.input.name!r}; "
            f"the request has {len(given)}: {given!r}"
        )
    tensor = request.inputs[0]
    model.check_input(tensor.name, tensor.datatype, tensor.shape)

    raw = request.raw_input_contents
    if raw:
        if tensor.HasField("contents") and has_typed_contents(tensor.contents):
            raise InvalidRequest(
                f"input {tensor.name!r} has typed contents and the request also has "
                "raw_input_contents; send one or the other"
            )
        if len(raw) != 1:
            raise InvalidRequest(
                f"the request has {len(raw)} raw_input_contents for 1 input; expected "
                "one entry per input"
            )
        array = decode_raw(tensor.datatype, tensor.shape, raw[0], tensor=tensor.name)
    else:
        array = decode_typed(
            tensor.datatype, tensor.shape, tensor.contents, tensor=tensor.name
        )

    if len(array) == 0:
        raise InvalidRequest(
            f"input {tensor.name!r} has shape {list(tensor.shape)!r}: no rows; "
            "expected at least one candidate"
        )
    model.check_finite(tensor.name, array)
    return array, str(tensor.datatype)


def _outputs(
    model: LoadedModel,
    prediction: Prediction,
    flagged: np.ndarray,
    sample_ids: np.ndarray,
) -> dict[str, np.ndarray]:
    scores = prediction.scores
    outputs = dict(prediction.outputs)
    # A graph output that already bears one of these names wins: it is what the
    # model says, and for a graph that outputs probabilities it is the same tensor.
    for name, value in (
        (names.PROBABILITIES, prediction.probabilities),
        (names.LABEL, prediction.labels),
        *((name, getattr(scores, name)) for name in names.SCORE_OUTPUTS),
        (names.VIEWS, prediction.views),
        (names.FLAGGED, flagged),
        (names.SAMPLE_ID, sample_ids),
    ):
        if name not in outputs:
            wire = _WIRE_DTYPES.get(name, value.dtype)
            outputs[name] = value.astype(wire, copy=False)
    return outputs


# Outputs whose wire datatype differs from what may be computed (float64 scores of
# a call's own views, say).
_WIRE_DTYPES: dict[str, np.dtype[Any]] = {
    **{name: np.dtype(np.float32) for name in names.SCORE_OUTPUTS},
    names.PROBABILITIES: np.dtype(np.float32),
    names.VIEWS: np.dtype(np.int32),
}


def _extra_output_specs(model: LoadedModel) -> list[tuple[str, str, list[int]]]:
    graph = {spec.name for spec in model.session.outputs}
    specs = [
        (names.PROBABILITIES, "FP32", [-1, model.num_classes]),
        (names.LABEL, "INT64", [-1]),
        *((name, "FP32", [-1]) for name in names.SCORE_OUTPUTS),
        (names.VIEWS, "INT32", [-1]),
        (names.FLAGGED, "BOOL", [-1]),
        (names.SAMPLE_ID, "INT64", [-1]),
    ]
    return [spec for spec in specs if spec[0] not in graph]


def _requested(request: Any, outputs: dict[str, np.ndarray]) -> list[str]:
    if not request.outputs:
        return list(outputs)
    wanted = [output.name for output in request.outputs]
    unknown = [name for name in wanted if name not in outputs]
    if unknown:
        raise InvalidRequest(
            f"requested output(s) {unknown!r} do not exist; "
            f"available: {list(outputs)!r}"
        )
    return wanted


def _int_parameter(request: Any, key: str) -> int | None:
    if key not in request.parameters:
        return None
    parameter = request.parameters[key]
    choice = parameter.WhichOneof("parameter_choice")
    if choice not in ("int64_param", "uint64_param"):
        raise InvalidRequest(
            f"parameter {key!r} is a {choice}; expected an int64_param"
        )
    return int(getattr(parameter, choice))


def _bool_parameter(request: Any, key: str, default: bool) -> bool:
    if key not in request.parameters:
        return default
    parameter = request.parameters[key]
    if parameter.WhichOneof("parameter_choice") != "bool_param":
        raise InvalidRequest(f"parameter {key!r} must be a bool_param")
    return bool(parameter.bool_param)
