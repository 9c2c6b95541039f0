"""An MLServer runtime that serves one ONNX model with ONNX Runtime.

Runs inside MLServer's own environment (``.bench-venvs/mlserver``), never in the
project's: it imports only mlserver, onnxruntime and numpy. The benchmark writes a
``model-settings.json`` naming ``mlserver_runtime.OnnxRuntimeModel`` as the
implementation, the ONNX file as ``parameters.uri`` and the output to return as
``parameters.extra.output``, with MLServer's adaptive batching switched on; MLServer
then hands :meth:`OnnxRuntimeModel.predict` requests already merged along axis 0.
"""

from __future__ import annotations

import logging

import onnxruntime as ort
from mlserver import MLModel  # type: ignore[import-not-found]
from mlserver.codecs import NumpyCodec  # type: ignore[import-not-found]
from mlserver.types import (  # type: ignore[import-not-found]
    InferenceRequest,
    InferenceResponse,
)
from mlserver.utils import get_model_uri  # type: ignore[import-not-found]

logger = logging.getLogger(__name__)


class OnnxRuntimeModel(MLModel):  # type: ignore[misc]
    """One ONNX Runtime session; one input in, the configured output out."""

    async def load(self) -> bool:
        uri = await get_model_uri(self._settings)
        self._session = ort.InferenceSession(uri, providers=["CPUExecutionProvider"])
        self._input_name = self._session.get_inputs()[0].name

        extra = self._settings.parameters.extra or {}
        self._output_name = str(extra.get("output", "logits"))
        logger.info("loaded %s from %s", self.name, uri)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        batch = NumpyCodec.decode_input(payload.inputs[0])
        (logits,) = self._session.run([self._output_name], {self._input_name: batch})
        return InferenceResponse(
            model_name=self.name,
            outputs=[NumpyCodec.encode_output(self._output_name, logits)],
        )
