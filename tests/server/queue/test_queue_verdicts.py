from __future__ import annotations

from collections.abc import Callable

import pytest

from activeserve.server.queue import (
    InvalidLabel,
    LabelConflict,
    LeaseConflict,
    ManualClock,
    NewSample,
    QueueStore,
    Sample,
    SampleNotFound,
    SampleState,
)

MakeSample = Callable[..., NewSample]


def _leased(store: QueueStore, new_sample: MakeSample, n: int = 1) -> Sample:
    store.add(new_sample(n))
    (sample,) = store.lease("digits", 1, 60.0, "ann")
    return sample


def test_label_with_the_lease_token_is_recorded(
    store: QueueStore, new_sample: MakeSample, clock: ManualClock
) -> None:
    sample = _leased(store, new_sample)

    result = store.submit_label(sample.id, 2, "ann", sample.lease_token)

    assert result.recorded
    assert result.sample.state is SampleState.LABELLED
    assert (result.sample.label, result.sample.reviewer) == (2, "ann")
    assert result.sample.labelled_at == clock.now
    assert result.sample.label_seq is not None
    assert result.sample.lease_token is None


def test_duplicate_submission_counts_once(
    store: QueueStore, new_sample: MakeSample
) -> None:
    sample = _leased(store, new_sample)
    first = store.submit_label(sample.id, 1, "ann", sample.lease_token)

    second = store.submit_label(sample.id, 1, "ann", sample.lease_token)

    assert not second.recorded
    assert second.sample.label_seq == first.sample.label_seq
    assert store.stats("digits").labels_total == 1
    assert len(store.labelled_after("digits", 0, 10)) == 1


def test_different_label_for_a_labelled_sample_is_a_conflict(
    store: QueueStore, new_sample: MakeSample
) -> None:
    sample = _leased(store, new_sample)
    store.submit_label(sample.id, 1, "ann", sample.lease_token)

    with pytest.raises(LabelConflict, match=r"already labelled 1 by 'ann'.*label 2"):
        store.submit_label(sample.id, 2, "bob")


def test_label_after_the_lease_was_taken_over_is_a_lease_conflict(
    store: QueueStore, new_sample: MakeSample, clock: ManualClock
) -> None:
    first = _leased(store, new_sample)
    clock.advance(61.0)
    (second,) = store.lease("digits", 1, 60.0, "bob")
    assert second.id == first.id

    with pytest.raises(LeaseConflict, match=r"no longer valid.*'bob'"):
        store.submit_label(first.id, 0, "ann", first.lease_token)


def test_label_on_an_expired_lease_nobody_took_is_accepted(
    store: QueueStore, new_sample: MakeSample, clock: ManualClock
) -> None:
    sample = _leased(store, new_sample)
    clock.advance(61.0)

    assert store.submit_label(sample.id, 0, "ann", sample.lease_token).recorded


def test_label_without_token_while_another_holds_the_lease_is_a_conflict(
    store: QueueStore, new_sample: MakeSample
) -> None:
    sample = _leased(store, new_sample)

    with pytest.raises(LeaseConflict, match=r"leased by 'ann'.*'bob'"):
        store.submit_label(sample.id, 0, "bob")


def test_label_without_lease_on_a_pending_sample_is_accepted(
    store: QueueStore, new_sample: MakeSample
) -> None:
    sample_id = store.add(new_sample(1)).sample_id
    assert sample_id is not None

    assert store.submit_label(sample_id, 0, "ann").recorded


@pytest.mark.parametrize(
    ("label", "num_classes", "message"),
    [
        (3, 3, r"label 3 is not a class of this model; expected 0\.\.2"),
        (-1, None, r"label -1 must be a class index"),
        (True, None, r"label True must be a class index"),
    ],
)
def test_invalid_labels_are_refused(
    store: QueueStore,
    new_sample: MakeSample,
    label: int,
    num_classes: int | None,
    message: str,
) -> None:
    sample = _leased(store, new_sample)

    with pytest.raises(InvalidLabel, match=message):
        store.submit_label(sample.id, label, "ann", num_classes=num_classes)


def test_label_for_an_unknown_sample_is_not_found(store: QueueStore) -> None:
    with pytest.raises(SampleNotFound, match=r"id 12345"):
        store.submit_label(12345, 0, "ann")


def test_skip_takes_the_sample_out_of_the_queue(
    store: QueueStore, new_sample: MakeSample
) -> None:
    sample = _leased(store, new_sample)

    skipped = store.skip(sample.id, "ann", sample.lease_token)

    assert skipped.state is SampleState.SKIPPED
    assert store.skip(sample.id, "ann").state is SampleState.SKIPPED
    assert store.lease("digits", 1, 60.0, "bob") == []
    assert store.stats("digits").counts["skipped"] == 1
    assert store.submit_label(sample.id, 1, "bob").recorded


def test_unclassifiable_is_idempotent_and_final(
    store: QueueStore, new_sample: MakeSample
) -> None:
    sample = _leased(store, new_sample)

    first = store.mark_unclassifiable(sample.id, "ann", sample.lease_token)
    second = store.mark_unclassifiable(sample.id, "ann")

    assert first.recorded and not second.recorded
    assert first.sample.state is SampleState.UNCLASSIFIABLE
    assert first.sample.label is None and first.sample.label_seq is not None
    with pytest.raises(LabelConflict, match=r"marked unclassifiable by 'ann'"):
        store.submit_label(sample.id, 0, "bob")
    with pytest.raises(LabelConflict, match=r"cannot be skipped"):
        store.skip(sample.id, "bob")


def test_labelled_sample_cannot_be_marked_unclassifiable(
    store: QueueStore, new_sample: MakeSample
) -> None:
    sample = _leased(store, new_sample)
    store.submit_label(sample.id, 1, "ann", sample.lease_token)

    with pytest.raises(LabelConflict, match=r"cannot also be marked unclassifiable"):
        store.mark_unclassifiable(sample.id, "bob")


def test_labelled_after_pages_in_label_order_and_resumes(
    store: QueueStore, new_sample: MakeSample
) -> None:
    ids = [store.add(new_sample(n)).sample_id for n in range(7)]
    store.add(new_sample(0, model_name="letters"))
    order = [ids[3], ids[0], ids[6], ids[1], ids[5]]
    for sample_id in order:
        assert sample_id is not None
        if sample_id == ids[6]:
            store.mark_unclassifiable(sample_id, "ann")
        else:
            store.submit_label(sample_id, 0, "ann")
    letters_id = store.lease("letters", 1, 60.0, "ann")[0].id
    store.submit_label(letters_id, 1, "ann")

    seen: list[int] = []
    cursor = 0
    while page := store.labelled_after("digits", cursor, 2):
        assert len(page) <= 2
        seen.extend(s.id for s in page)
        cursor = page[-1].label_seq or 0

    assert seen == order
    assert store.labelled_after("digits", cursor, 2) == []
    store.submit_label(ids[2] or 0, 2, "bob")
    assert [s.id for s in store.labelled_after("digits", cursor, 2)] == [ids[2]]


def test_labelled_after_rejects_a_negative_cursor(store: QueueStore) -> None:
    with pytest.raises(ValueError, match=r"cursor must be >= 0"):
        store.labelled_after("digits", -1, 10)


def test_recent_verdicts_are_the_last_ones_oldest_first(
    store: QueueStore, new_sample: MakeSample
) -> None:
    ids = [store.add(new_sample(n)).sample_id or 0 for n in range(5)]
    for sample_id in ids[:4]:
        store.submit_label(sample_id, 1, "ann")
    store.mark_unclassifiable(ids[4], "ann")

    recent = store.recent_verdicts("digits", 3)

    assert [s.id for s in recent] == ids[2:5]
    assert recent[-1].state.value == "unclassifiable"
    assert store.recent_verdicts("letters", 3) == []
