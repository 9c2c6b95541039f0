"""The label queue through the SDK: flagging, leasing, labels, statistics, streaming."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from activeserve.client import Client, InvalidArgument

FLAG_ALL = """
[flag]
policy = "threshold"
score = "entropy"
threshold = 0.0
"""


@pytest.fixture
def client(make_repository, start_server):
    server = start_server(make_repository(config=FLAG_ALL, scale=0.2))
    with Client(server.address, timeout_s=10) as client:
        yield client


def _inputs(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 1, 8, 8), dtype=np.float32)


def test_predict_returns_typed_results_with_flags(client) -> None:
    result = client.predict("digits", _inputs(4))

    assert result.model == "digits" and result.version == 1
    assert result.labels.shape == (4,) and result.labels.dtype == np.int64
    assert result.probabilities.shape == (4, 10)
    assert set(result.scores) == {
        "score",
        "entropy",
        "diversity",
        "least_confidence",
        "margin",
        "mutual_information",
    }
    assert result.flagged.all()
    assert len(set(result.sample_ids.tolist())) == 4 and (result.sample_ids > 0).all()


def test_flag_false_keeps_inputs_out_of_the_queue(client) -> None:
    result = client.predict("digits", _inputs(3), flag=False)

    assert not result.flagged.any()
    assert (result.sample_ids == -1).all()
    assert client.queue_stats("digits").flagged_total == 0


def test_the_same_input_is_queued_once(client) -> None:
    batch = _inputs(2)
    first = client.predict("digits", batch)
    second = client.predict("digits", batch[::-1].copy())

    np.testing.assert_array_equal(second.sample_ids, first.sample_ids[::-1])
    assert client.queue_stats("digits").flagged_total == 2


def test_review_items_carry_the_input_and_the_prediction(client) -> None:
    batch = _inputs(3)
    result = client.predict("digits", batch)

    items = list(client.review("digits", batch=10, reviewer="ann"))

    assert {item.sample_id for item in items} == set(result.sample_ids.tolist())
    by_id = {item.sample_id: item for item in items}
    for row, sample_id in enumerate(result.sample_ids):
        item = by_id[int(sample_id)]
        np.testing.assert_array_equal(item.input, batch[row])
        assert item.predicted_label == result.labels[row]
        assert item.model_version == "1"
        assert item.class_labels == [str(k) for k in range(10)]
    # Highest priority first.
    priorities = [item.scores["entropy"] for item in items]
    assert priorities == sorted(priorities, reverse=True)


def test_two_reviewers_leasing_at_once_never_share_a_sample(client) -> None:
    client.predict("digits", _inputs(40))
    leased: dict[str, list[int]] = {"ann": [], "bob": []}

    def work(name: str) -> None:
        with Client(client.address) as own:
            for item in own.review("digits", batch=3, reviewer=name):
                leased[name].append(item.sample_id)
                item.submit(1)

    threads = [threading.Thread(target=work, args=(n,)) for n in leased]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not set(leased["ann"]) & set(leased["bob"])
    assert len(leased["ann"]) + len(leased["bob"]) == 40


def test_an_expired_lease_returns_the_sample(client) -> None:
    client.predict("digits", _inputs(1))
    # Ann's session stays open (holding the lease) while it lapses.
    ann = client.review("digits", batch=1, lease_s=0.3, reviewer="ann")
    first = next(ann)

    assert list(client.review("digits", batch=1, reviewer="bob")) == []
    time.sleep(0.5)
    bob = client.review("digits", batch=1, reviewer="bob")
    again = next(bob)

    assert again.sample_id == first.sample_id
    bob.close()
    ann.close()


def test_a_duplicate_submission_counts_once(client) -> None:
    client.predict("digits", _inputs(1))
    item = next(client.review("digits", batch=1, reviewer="ann"))

    assert item.submit(3) is True
    assert item.submit(3) is False
    assert client.queue_stats("digits").labels_total == 1


def test_a_label_for_an_unknown_class_is_invalid(client) -> None:
    client.predict("digits", _inputs(1))
    item = next(client.review("digits", batch=1, reviewer="ann"))

    with pytest.raises(InvalidArgument, match=r"label 12 is not a class .*0 to 9"):
        item.submit(12)
    with pytest.raises(ValueError, match=r"label 'cat' is not a class"):
        item.submit("cat")
    assert item.submit("7") is True


def test_queue_stats_report_states_agreement_and_rates(client) -> None:
    result = client.predict("digits", _inputs(5))
    items = list(client.review("digits", batch=5, reviewer="ann"))
    by_id = {item.sample_id: item for item in items}
    predicted = dict(
        zip(result.sample_ids.tolist(), result.labels.tolist(), strict=True)
    )
    ids = list(by_id)
    by_id[ids[0]].submit(predicted[ids[0]])  # agrees
    by_id[ids[1]].submit((predicted[ids[1]] + 1) % 10)  # disagrees
    by_id[ids[2]].skip()
    by_id[ids[3]].unclassifiable()

    stats = client.queue_stats("digits")

    assert stats.counts["labelled"] == 2
    assert stats.counts["skipped"] == 1
    assert stats.counts["unclassifiable"] == 1
    assert stats.counts["pending"] == 1
    assert stats.flagged_total == 5 and stats.labels_total == 2
    assert stats.agreement == pytest.approx(0.5)
    assert stats.unclassifiable_fraction == pytest.approx(1 / 3)
    assert stats.flag_rate == pytest.approx(1.0)
    assert stats.oldest_pending_age_s >= 0
    assert stats.stopping.stop is False


def test_labelled_samples_stream_after_a_cursor(client) -> None:
    result = client.predict("digits", _inputs(4))
    for item in client.review("digits", batch=4, reviewer="ann"):
        item.submit(2)

    first_two = []
    for sample in client.labelled("digits"):
        first_two.append(sample)
        if len(first_two) == 2:
            break
    rest = list(client.labelled("digits", after=first_two[-1].cursor))

    ids = [s.sample_id for s in [*first_two, *rest]]
    assert sorted(ids) == sorted(result.sample_ids.tolist())
    assert all(s.label == 2 and s.reviewer == "ann" for s in rest)
    assert rest[0].input.shape == (1, 8, 8)


def test_eviction_keeps_the_highest_scores(make_repository, start_server) -> None:
    config = FLAG_ALL + "max_pending = 3\n"
    server = start_server(make_repository(config=config, scale=0.2))
    with Client(server.address) as client:
        result = client.predict("digits", _inputs(12, seed=5))
        stats = client.queue_stats("digits")
        kept = sorted(item.scores["entropy"] for item in client.review("digits"))

    assert stats.counts["pending"] == 3
    assert stats.evictions + (~result.flagged).sum() == 9
    assert kept == pytest.approx(sorted(result.scores["entropy"])[-3:], rel=1e-5)
