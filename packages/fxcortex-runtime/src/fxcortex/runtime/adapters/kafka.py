"""The distributed change feed: Debezium's events of ``fxcortex.rates`` read from Kafka.

`KafkaChangeFeed` is a confluent-kafka consumer in a consumer group with auto-commit off. `poll`
reads a batch bounded by size and time — it returns once ``max_changes`` are in hand, once
``batch_timeout`` passed, or, with something in hand, once the topic is read to its end (a wait
of ``linger`` seconds brought fewer messages than asked for, and no assigned partition has more
known), so a backlog is read in full
batches and a trickle with a delay of at most ``linger`` (``linger=None``: always fill the batch
or wait out ``batch_timeout``) — and returns the decoded changes in
the order of their partitions (one pair's changes are all in one partition: the message key is
the pair). `commit` commits the offsets of everything polled so far — the analyzer calls it only
after the batch's writes landed, so a crash re-delivers, and the analytics store's versioned
tables make a re-delivery change nothing. A message that does not decode goes
to the dead-letter topic, with the reason, topic, partition and offset in headers, and the stream
goes on; the dead letters are flushed before the offsets that pass them are committed.

When the group is about to take partitions away, the changes in hand (polled in the current
`poll`, not yet returned) are first handed to the callback the analyzer registered with
`flush_before_revoke`, which analyzes, writes and commits them: the new owner starts after them,
so a rebalance neither repeats work nor leaves one pair's state in two consumers. Without a
callback, or when the partitions are lost (the group already gave them away), what was polled of
them is forgotten and their new owner reads it again.

A change an analyzer rejects goes to the same dead-letter topic (`dead_letter`), with the
analyzer's reason: the analyzer calls it after its bounded retries.

Analytics that combine pairs (cross rates, spreads) are right only in a consumer that reads every
partition. The analyzer names them with `require_every_partition`; whenever the group then gives
this consumer only some of the partitions, `poll` logs a warning saying so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from fxcortex.core import FxCortexError
from fxcortex.core.batch import ChangeRows
from fxcortex.core.models import RateChange
from fxcortex.runtime.adapters.debezium import OFFSET_BITS, DecodeError, decode_row, position_of

log = logging.getLogger(__name__)

_SLICE_SECONDS = 0.5  # without a linger: how long one consume call waits at most


def _position(message: Message) -> int:
    """A polled message's change position (its partition and offset, as `decode_row` makes it)."""
    partition, offset = message.partition(), message.offset()
    assert partition is not None and offset is not None
    return position_of(partition, offset)


FETCH_SETTINGS: Mapping[str, Any] = {"fetch.queue.backoff.ms": 10}
"""Consumer settings for reading a topic as fast as the analyzer applies it.

librdkafka prefetches into a bounded local queue (``queued.min.messages``,
``queued.max.messages.kbytes``); when the queue is over those bounds it postpones the next fetch
by ``fetch.queue.backoff.ms``, 1,000 ms by default. A consumer that spends its time applying
batches keeps the queue full, so every batch then waited out most of that second: a bare
consume-and-decode loop read 122k events/s with it and 480-515k with 10 ms (the bounds, and so
the memory, stay as they are; only the re-check comes sooner).
"""


class ChangeFeedError(FxCortexError):
    """Kafka failed in a way the feed cannot ride out (a fatal consumer error, a failed commit)."""


class KafkaChangeFeed:
    """The ``ChangeFeed`` port on a Kafka topic of Debezium JSON envelopes."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        group_id: str = "fxcortex-analyzer",
        dead_letter_topic: str | None = None,
        batch_timeout: float = 1.0,
        linger: float | None = 0.05,
        consumer_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.dead_letter_topic = dead_letter_topic or f"{topic}.dead-letter"
        self.batch_timeout = batch_timeout
        self.linger = linger
        self.dead_lettered = 0
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
                **FETCH_SETTINGS,
                **(consumer_config or {}),
            }
        )
        self._bootstrap_servers = bootstrap_servers
        # Made on the first dead letter: most feeds never need one, nor its broker connections.
        self._producer: Producer | None = None
        self._polled: dict[tuple[str, int], int] = {}  # next offset to commit per partition
        self._messages: list[Message] = []  # polled, not committed, with a change each
        self._in_hand: list[tuple[Any, ...]] = []  # rows decoded by the running poll
        self._flush: Callable[[Sequence[RateChange]], object] | None = None
        self._needing_every_partition: tuple[str, ...] = ()
        self._coverage_seen: frozenset[int] = frozenset()
        self.group_id = group_id
        self.revocations = 0
        self._consumer.subscribe([topic], on_revoke=self._on_revoke, on_lost=self._on_lost)

    def flush_before_revoke(self, flush: Callable[[Sequence[RateChange]], object]) -> None:
        """Have ``flush`` apply and commit the changes in hand before partitions are revoked."""
        self._flush = flush

    def require_every_partition(self, analyzers: Sequence[str]) -> None:
        """Warn whenever this consumer holds only some partitions while ``analyzers`` run on it."""
        self._needing_every_partition = tuple(analyzers)

    def coverage(self) -> tuple[int, int]:
        """(partitions of the topic assigned to this consumer, partitions the topic has)."""
        return len(self._assigned_partitions()), self._partition_count()

    def _assigned_partitions(self) -> frozenset[int]:
        return frozenset(p.partition for p in self._consumer.assignment() if p.topic == self.topic)

    def _partition_count(self) -> int:
        metadata = self._consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        return len(metadata.partitions) if metadata is not None else 0

    def _check_coverage(self) -> None:
        assigned = self._assigned_partitions()
        if assigned == self._coverage_seen:
            return  # said once per assignment, not once per batch
        if not assigned:
            self._coverage_seen = assigned
            return
        try:
            total = self._partition_count()
        except KafkaException as error:  # only a warning's worth: ask again at the next poll
            log.debug("partition count of %s not known yet: %s", self.topic, error)
            return
        self._coverage_seen = assigned
        held = len(assigned)
        if held < total:
            log.warning(
                "%s combine pairs and need every partition of %s, but this analyzer holds %d of"
                " %d (another analyzer in group %r?): their rows will be incomplete. Run them in"
                " a consumer group of their own with one process, and disable them in the others"
                " (FXCORTEX_DISABLED_PLUGINS).",
                ", ".join(self._needing_every_partition),
                self.topic,
                held,
                total,
                self.group_id,
            )

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.revocations += 1
        if self._flush is not None and self._in_hand:
            # Still the owner: apply what was polled and commit it, so the next owner of these
            # partitions starts after it. An error here propagates out of `consume`, and nothing
            # of the batch was committed: the new owner reads it again.
            self._flush(ChangeRows(list(self._in_hand)))
            self._in_hand.clear()
        self._forget(partitions)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.revocations += 1
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        gone = {(p.topic, p.partition) for p in partitions}
        for key in gone:
            self._polled.pop(key, None)
        numbers = {partition for topic, partition in gone if topic == self.topic}
        self._in_hand[:] = [row for row in self._in_hand if row[0] >> OFFSET_BITS not in numbers]

    def _dead_letter(
        self, message: Message, reason: str, extra: Sequence[tuple[str, str]] = ()
    ) -> None:
        headers: list[tuple[str, str | bytes | None]] = [
            ("fxcortex.reason", reason.encode()),
            ("fxcortex.topic", str(message.topic()).encode()),
            ("fxcortex.partition", str(message.partition()).encode()),
            ("fxcortex.offset", str(message.offset()).encode()),
            *((name, value.encode()) for name, value in extra),
        ]
        if self._producer is None:
            self._producer = Producer({"bootstrap.servers": self._bootstrap_servers, "acks": "all"})
        self._producer.produce(
            self.dead_letter_topic, value=message.value(), key=message.key(), headers=headers
        )
        self._producer.poll(0)
        self.dead_lettered += 1

    def dead_letter(self, change: RateChange, reason: str, *, analyzer: str) -> None:
        """Set a polled change aside to the dead-letter topic: ``analyzer`` rejected it."""
        # Rare (an analytic rejected a change): a scan, rather than a map kept for every message.
        message = next(
            (m for m in self._messages if _position(m) == change.position),
            None,
        )
        if message is None:
            raise ChangeFeedError(
                f"change at position {change.position} is not in hand: it cannot be dead-lettered"
            )
        self._dead_letter(message, reason, [("fxcortex.analyzer", analyzer)])

    def poll(self, max_changes: int) -> ChangeRows:
        """Up to ``max_changes`` changes, waiting at most ``batch_timeout`` seconds in all.

        The changes come as rows (`ChangeRows`), which the analytics read without building a
        `RateChange` per message.
        """
        changes: list[tuple[Any, ...]] = []
        self._in_hand = changes
        deadline = time.monotonic() + self.batch_timeout
        while len(changes) < max_changes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            revocations = self.revocations
            # Short slices: what is read is in hand (and flushed on a revoke) at once. With
            # something in hand, a slice that brings fewer messages than asked for at the end of
            # every assigned partition hands the batch over instead of waiting for more.
            want = min(max_changes - len(changes), 10_000)
            wait = _SLICE_SECONDS if self.linger is None else self.linger
            messages = self._consumer.consume(want, min(remaining, wait))
            caught_up = self.linger is not None and len(messages) < want and self._read_to_the_end()
            if self.revocations != revocations:
                # Messages of partitions revoked during this call came back after the revoke
                # callback: they are the new owner's now, and were not committed here.
                owned = {(p.topic, p.partition) for p in self._consumer.assignment()}
                messages = [m for m in messages if (m.topic(), m.partition()) in owned]
            # Per message this loop is most of what the feed costs beside decoding: locals only.
            topic, polled, kept, keep = self.topic, self._polled, self._messages, changes.append
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF or not error.fatal():
                        continue
                    raise ChangeFeedError(f"Kafka consumer of {self.topic}: {error.str()}")
                # the one topic subscribed to; a message without an error has both
                partition, offset = message.partition(), message.offset()
                assert partition is not None and offset is not None
                try:
                    row = decode_row(
                        message.value(), topic=topic, partition=partition, offset=offset
                    )
                except DecodeError as decode_error:
                    self._dead_letter(message, decode_error.reason)
                    row = None
                polled[(topic, partition)] = offset + 1
                if row is not None:
                    keep(row)
                    kept.append(message)
            if caught_up and changes:
                break
        self._in_hand = []
        if self._needing_every_partition:
            self._check_coverage()
        return ChangeRows(changes)

    def commit(self, position: int) -> None:
        """Commit the offsets of everything polled (``position`` is the batch's last change)."""
        if self._producer is not None and self._producer.flush(30) > 0:
            raise ChangeFeedError(f"dead letters to {self.dead_letter_topic} not delivered")
        self._messages.clear()
        if not self._polled:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._polled.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            raise ChangeFeedError(f"commit of {self.topic} offsets failed: {error}") from error
        self._polled.clear()

    def _read_to_the_end(self) -> bool:
        """Whether every assigned partition is read up to its last known offset (no broker call).

        A partition not read yet counts as read: nothing of it is known to be waiting.
        """
        assigned = self._consumer.assignment()
        if not assigned:
            return True
        for partition in self._consumer.position(assigned):
            if partition.offset < 0:
                continue
            _low, high = self._consumer.get_watermark_offsets(partition, cached=True)
            if high >= 0 and partition.offset < high:
                return False
        return True

    def rewind(self) -> None:
        """Forget what was polled and not committed: the next poll starts after the commit.

        Seeks every assigned partition back to its committed offset (the earliest when the group
        has none), so a caller that goes on after a failed batch reads the batch again.
        """
        assigned = self._consumer.assignment()
        self._polled.clear()
        self._messages.clear()
        self._in_hand = []
        if not assigned:
            return
        for partition in self._consumer.committed(assigned, timeout=10):
            if partition.offset < 0:  # nothing committed yet: back to the start
                low, _high = self._consumer.get_watermark_offsets(partition, timeout=10)
                partition.offset = low
            self._consumer.seek(partition)

    def assigned(self) -> int:
        """How many partitions the group gives this consumer now (0 before the first assignment)."""
        return len(self._consumer.assignment())

    def pending(self) -> int:
        """Messages after the committed offsets of the assigned partitions (high watermarks)."""
        assigned = self._consumer.assignment()
        if not assigned:
            return 0
        committed = self._consumer.committed(assigned, timeout=10)
        total = 0
        for partition in committed:
            low, high = self._consumer.get_watermark_offsets(partition, timeout=10)
            start = self._polled.get((partition.topic, partition.partition), partition.offset)
            total += max(0, high - (start if start >= 0 else low))
        return total

    def close(self) -> None:
        """Deliver the dead letters and leave the group (the uncommitted is re-read later)."""
        if self._producer is not None:
            self._producer.flush(30)
            self._producer = None
        self._flush = None  # the analyzer's callback holds the feed: let both go
        self._consumer.close()
