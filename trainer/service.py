"""The training service: read labels as reviewers give them, and train in rounds.

:class:`TrainerService` is what ``activeserve train`` runs. It is a client of the
server like any other, so it may run on another machine (a GPU box):

- it streams labelled samples (``Client.labelled``, following the stream for at most
  ``poll_s`` at a time so that it notices a stop request), and keeps them in its
  state folder (:mod:`.state`), saved after each read, so that a restart resumes from
  the last cursor;
- a round is due once ``[training] min_new_labels`` labels have arrived since the last
  one. Before a round it asks the server's stopping criteria (``queue_stats``); while
  they hold, it logs their reasons and trains nothing, unless ``force``;
- a round (:mod:`.rounds`) fine-tunes the served version and publishes the new one
  when it validates no worse than ``epsilon`` below the served one. Trained or
  rejected, its labels count as used: the next round waits for new ones.

Failures: the server being unreachable (``Unavailable``) is waited out, ``retry_s``
at a time. The server refusing a trained version (``Conflict``: its probe check
failed, or the served version changed meanwhile) is logged and the round's labels
count as used, so the same round is not retrained in a loop. Anything else (a bad
config, labels the model cannot take, an export that fails) would fail again the same
way, so it ends the service with the error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

from activeserve.client import Client, Conflict, Unavailable
from activeserve.core.config import ModelConfig
from activeserve.trainer.errors import TrainerError
from activeserve.trainer.rounds import (
    LabelledArrays,
    RoundOptions,
    RoundResult,
    run_round,
)
from activeserve.trainer.served import fetch_config
from activeserve.trainer.state import TrainerState

logger = logging.getLogger(__name__)

# How often a wait between retries looks for a stop request.
_STOP_CHECK_S = 0.2


@dataclass(frozen=True)
class ServiceOptions:
    """How ``activeserve train`` runs.

    ``state_dir``: the state folder (see :mod:`.state`). ``force``: train even while
    a stopping criterion holds. ``validation_file``: an ``.npz`` of ``inputs`` and
    ``labels`` added to every round's validation data. ``train_file``: the same
    format, added to every round's training data (the labels version 1 was trained
    on, which the queue never saw). ``poll_s``: longest one read
    of the label stream lasts, hence the longest a stop request waits while no round
    runs. ``read_timeout_s``: deadline of a one-off read of every label after the
    cursor (``--once``). ``retry_s``: wait after a transient failure. ``rounds``:
    options of each round.
    """

    state_dir: Path
    force: bool = False
    validation_file: Path | None = None
    train_file: Path | None = None
    poll_s: float = 5.0
    read_timeout_s: float = 600.0
    retry_s: float = 10.0
    rounds: RoundOptions = field(default_factory=RoundOptions)

    def __post_init__(self) -> None:
        for name in ("poll_s", "read_timeout_s"):
            if not getattr(self, name) > 0.0:
                raise TrainerError(
                    f"{name} must be a number of seconds > 0, got "
                    f"{getattr(self, name)!r}"
                )
        if not self.retry_s >= 0.0:
            raise TrainerError(f"retry_s must be >= 0 seconds, got {self.retry_s!r}")


class TrainerService:
    """Reads labels for one model and trains it in rounds; see the module doc.

    Call :meth:`run` (until :meth:`stop`) or :meth:`run_once`. ``state`` defaults
    to the one saved in ``options.state_dir``.
    """

    def __init__(
        self,
        client: Client,
        model_name: str,
        options: ServiceOptions,
        *,
        state: TrainerState | None = None,
    ) -> None:
        self.client = client
        self.model_name = model_name
        self.options = options
        self.state = (
            state
            if state is not None
            else TrainerState.load(options.state_dir, model_name)
        )
        self._validation = (
            None
            if options.validation_file is None
            else LabelledArrays.from_file(options.validation_file)
        )
        self._seed_data = (
            None
            if options.train_file is None
            else LabelledArrays.from_file(options.train_file)
        )
        # A plain flag, not a threading.Event: setting an Event takes a lock, which
        # a signal handler must not do while the interrupted code may hold it.
        self._stop_requested = False
        self._config: ModelConfig | None = None
        # Labels held when a round was last put off (stopping, or too few to
        # split): it is not tried again before more arrive.
        self._put_off_at: int | None = None
        self._stopping_reasons: tuple[str, ...] = ()

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current read or round. Thread-safe
        and safe to call from a signal handler."""
        self._stop_requested = True

    @property
    def stopped(self) -> bool:
        return self._stop_requested

    def _sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when a stop is requested meanwhile."""
        deadline = time.monotonic() + seconds
        while not self.stopped and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, _STOP_CHECK_S))

    def read_labels(self, *, follow: bool) -> int:
        """Read the labels after the state's cursor into the state; return how many.

        With ``follow``, wait up to ``poll_s`` for new ones (returning early when a
        stop is requested); without, read what is there. The state is saved
        afterwards, also when the read fails part way.
        """
        timeout_s = self.options.poll_s if follow else self.options.read_timeout_s
        stream = self.client.labelled(
            self.model_name, after=self.state.cursor, follow=follow, timeout_s=timeout_s
        )
        read = 0
        try:
            for sample in stream:
                self.state.add(sample)
                read += 1
                if follow and self.stopped:
                    break
        finally:
            # Close the stream now, not when the generator is collected: a
            # following read must not leave a call open on the server.
            if isinstance(stream, Generator):
                stream.close()
            self.state.save()

        if read:
            logger.info(
                "model %s: read %s labelled samples (cursor %s): %s labels held, %s "
                "new, %s unclassifiable",
                self.model_name,
                read,
                self.state.cursor,
                len(self.state),
                self.state.new_labels,
                self.state.unclassifiable,
            )
        return read

    def _round_due(self) -> bool:
        if self._config is None or self.state.new_labels == 0:
            return False
        if self._put_off_at is not None and len(self.state) <= self._put_off_at:
            return False
        return self.state.new_labels >= self._config.training.min_new_labels

    def stopping_holds(self) -> bool:
        """Whether the server's stopping criteria say stop (False with ``force``).

        Logs the reasons at INFO when they change, so a service waiting on them
        does not repeat itself every poll.
        """
        if self.options.force:
            return False
        stopping = self.client.queue_stats(self.model_name).stopping
        reasons = tuple(stopping.reasons) if stopping.stop else ()
        if reasons != self._stopping_reasons:
            if reasons:
                logger.info(
                    "model %s: stopping criteria hold (%s; %s); not training "
                    "(pass --force to train anyway)",
                    self.model_name,
                    ", ".join(reasons),
                    ", ".join(
                        f"{k} {v:.4g}" for k, v in sorted(stopping.detail.items())
                    ),
                )
            else:
                logger.info(
                    "model %s: stopping criteria no longer hold", self.model_name
                )
        self._stopping_reasons = reasons
        return stopping.stop

    def train_round(self) -> RoundResult | None:
        """Run one round on the labels held now, unless the stopping criteria hold.

        Returns None when no round ran (stopping, or no labels held) or the server
        refused the version it trained. A round that trained (published, rejected
        or refused) marks the labels used and saves the state; a skipped one puts
        rounds off until more labels arrive.
        """
        if len(self.state) == 0:
            logger.info("model %s: no labels held yet; no round", self.model_name)
            return None
        if self.stopping_holds():
            self._put_off_at = len(self.state)
            return None

        try:
            result = run_round(
                self.client,
                self.model_name,
                self.state.labelled(),
                options=self.options.rounds,
                validation=self._validation,
                seed_data=self._seed_data,
            )
        except Conflict as exc:
            logger.error(
                "model %s: the server refused the new version: %s; its %s new "
                "labels count as used, the next round waits for new ones",
                self.model_name,
                exc,
                self.state.new_labels,
            )
            self.state.mark_round()
            self.state.save()
            return None
        self._config = result.config
        if result.outcome == "skipped":
            self._put_off_at = len(self.state)
            return result

        self._put_off_at = None
        self.state.mark_round()
        self.state.save()
        return result

    def run_once(self) -> RoundResult | None:
        """Read every label after the cursor, run one round with what is held."""
        self.read_labels(follow=False)
        return self.train_round()

    def run(self) -> int:
        """Read labels and train in rounds until :meth:`stop`; returns 0.

        Transient failures are logged and retried after ``retry_s``; any other
        error propagates (the state is saved first).
        """
        logger.info(
            "model %s: trainer started on %s (state %s, %s labels held, cursor %s)",
            self.model_name,
            self.client.address,
            self.options.state_dir,
            len(self.state),
            self.state.cursor,
        )
        try:
            while not self.stopped:
                try:
                    self._step()
                except Unavailable as exc:
                    logger.warning(
                        "model %s: %s; trying again in %s s",
                        self.model_name,
                        exc,
                        self.options.retry_s,
                    )
                    self._sleep(self.options.retry_s)
        finally:
            self.state.save()
        logger.info(
            "model %s: trainer stopped (%s labels held, cursor %s)",
            self.model_name,
            len(self.state),
            self.state.cursor,
        )
        return 0

    def _step(self) -> None:
        if self._config is None:
            self._config = fetch_config(self.client, self.model_name)
            logger.info(
                "model %s: a round starts every %s new labels",
                self.model_name,
                self._config.training.min_new_labels,
            )

        self.read_labels(follow=True)
        if not self.stopped and self._round_due():
            self.train_round()
