"""m augmented views per candidate, client-sent views, and the cascade."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import tomllib
import tritonclient.grpc as triton

from activeserve.core.config import ModelConfig
from activeserve.core.scores import score_patches, softmax
from activeserve.core.views import ViewConfig, make_views

VIEWS_CONFIG = """
[uncertainty]
views = 5
augmentations = ["shift"]
alpha = 0.5
"""


def _infer(client, batch, parameters=None):
    tensor = triton.InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)
    return client.infer("digits", [tensor], parameters=parameters)


def _expected(repository, batch, config_text):
    config = ModelConfig.from_dict(tomllib.loads(config_text))
    session = ort.InferenceSession(
        str(repository / "digits" / "1" / "model.onnx"),
        providers=["CPUExecutionProvider"],
    )
    m = config.uncertainty.views.count
    patches = make_views(batch, config.uncertainty.views)
    (logits,) = session.run(None, {"input": patches})
    probs = softmax(logits.astype(np.float64)).reshape(len(batch), m, -1)
    return logits, probs, score_patches(probs, config.uncertainty.scores)


def test_m_views_are_scored_as_in_core(make_repository, start_server) -> None:
    repository = make_repository(config=VIEWS_CONFIG, scale=0.3)
    server = start_server(repository)
    client = triton.InferenceServerClient(server.address)
    batch = np.random.default_rng(0).random((6, 1, 8, 8), dtype=np.float32)

    result = _infer(client, batch)

    logits, probs, scores = _expected(repository, batch, VIEWS_CONFIG)
    np.testing.assert_allclose(result.as_numpy("logits"), logits[::5], atol=1e-5)
    np.testing.assert_allclose(result.as_numpy("probabilities"), probs[:, 0], atol=1e-5)
    np.testing.assert_array_equal(result.as_numpy("views"), [5] * 6)
    for name in ("entropy", "diversity", "score", "mutual_information"):
        np.testing.assert_allclose(
            result.as_numpy(name), scores.get(name), rtol=1e-4, atol=1e-6
        )
    assert (result.as_numpy("diversity") > 0).all()


def test_client_views_are_scored_without_augmenting(
    make_repository, start_server
) -> None:
    repository = make_repository(config=VIEWS_CONFIG, scale=0.3)
    server = start_server(repository)
    client = triton.InferenceServerClient(server.address)
    batch = np.random.default_rng(1).random((3, 1, 8, 8), dtype=np.float32)
    own_views = make_views(batch, ViewConfig(count=5, augmentations=("shift",)))

    result = _infer(client, own_views, parameters={"candidate_views": 5})

    _, _, scores = _expected(repository, batch, VIEWS_CONFIG)
    assert result.as_numpy("score").shape == (3,)
    np.testing.assert_allclose(result.as_numpy("score"), scores.score, rtol=1e-4)


def test_client_views_must_divide_the_rows(make_repository, start_server) -> None:
    import pytest
    from tritonclient.utils import InferenceServerException

    server = start_server(make_repository(config=VIEWS_CONFIG))
    client = triton.InferenceServerClient(server.address)

    with pytest.raises(InferenceServerException, match="'candidate_views' is 3"):
        _infer(client, np.zeros((4, 1, 8, 8), np.float32), {"candidate_views": 3})


def test_cascade_runs_views_only_for_uncertain_inputs(
    make_repository, start_server
) -> None:
    config = VIEWS_CONFIG + 'cascade = true\ncascade_score = "entropy"\n'
    config += "cascade_threshold = 0.5\n"
    repository = make_repository(config=config, scale=0.5)
    server = start_server(repository)
    client = triton.InferenceServerClient(server.address)
    rng = np.random.default_rng(2)
    # Scaled-up inputs give confident logits; near-zero inputs give uncertain ones.
    confident = rng.random((4, 1, 8, 8), dtype=np.float32) * 20
    uncertain = np.full((4, 1, 8, 8), 0.01, np.float32)
    batch = np.concatenate([confident, uncertain])

    result = _infer(client, batch)

    views = result.as_numpy("views")
    entropy_single = _single_entropy(repository, batch)
    np.testing.assert_array_equal(views, np.where(entropy_single >= 0.5, 5, 1))
    assert 1 in views and 5 in views
    single_view = views == 1
    np.testing.assert_allclose(result.as_numpy("diversity")[single_view], 0.0)


def _single_entropy(repository, batch):
    session = ort.InferenceSession(
        str(repository / "digits" / "1" / "model.onnx"),
        providers=["CPUExecutionProvider"],
    )
    (logits,) = session.run(None, {"input": batch})
    p = np.clip(softmax(logits.astype(np.float64)), 1e-7, 1.0)
    return -(p * np.log(p)).sum(axis=1)
