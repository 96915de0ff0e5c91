"""The distributed change feed: Debezium's events of ``fxcortex.rates`` read from Kafka.

`KafkaChangeFeed` is a confluent-kafka consumer in a consumer group with auto-commit off. `poll`
reads a batch bounded by size and time and returns the decoded changes in the order of their
partitions (one pair's changes are all in one partition: the message key is the pair). `commit`
commits the offsets of everything polled so far — the analyzer calls it only after the batch's
writes landed, so a crash re-delivers, and the analytics store's versioned tables make a
re-delivery change nothing. A message that does not decode goes to the dead-letter topic, with
the reason, topic, partition and offset in headers, and the stream goes on; the dead letters are
flushed before the offsets that pass them are committed.

When the group takes partitions away, the offsets polled but not committed of those partitions
are forgotten: their new owner reads them again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from fxcortex.core import FxCortexError
from fxcortex.core.models import RateChange
from fxcortex.runtime.adapters.debezium import DecodeError, decode


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
        consumer_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.dead_letter_topic = dead_letter_topic or f"{topic}.dead-letter"
        self.batch_timeout = batch_timeout
        self.dead_lettered = 0
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
                **(consumer_config or {}),
            }
        )
        self._producer = Producer({"bootstrap.servers": bootstrap_servers, "acks": "all"})
        self._polled: dict[tuple[str, int], int] = {}  # next offset to commit per partition
        self._consumer.subscribe([topic], on_revoke=self._on_revoke, on_lost=self._on_revoke)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for partition in partitions:
            self._polled.pop((partition.topic, partition.partition), None)

    def _dead_letter(self, message: Message, error: DecodeError) -> None:
        headers: list[tuple[str, str | bytes | None]] = [
            ("fxcortex.reason", error.reason.encode()),
            ("fxcortex.topic", error.topic.encode()),
            ("fxcortex.partition", str(error.partition).encode()),
            ("fxcortex.offset", str(error.offset).encode()),
        ]
        self._producer.produce(
            self.dead_letter_topic, value=message.value(), key=message.key(), headers=headers
        )
        self._producer.poll(0)
        self.dead_lettered += 1

    def poll(self, max_changes: int) -> Sequence[RateChange]:
        """Up to ``max_changes`` changes, waiting at most ``batch_timeout`` seconds in all."""
        changes: list[RateChange] = []
        deadline = time.monotonic() + self.batch_timeout
        while len(changes) < max_changes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            messages = self._consumer.consume(min(max_changes - len(changes), 10_000), remaining)
            if not messages:
                break
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF or not error.fatal():
                        continue
                    raise ChangeFeedError(f"Kafka consumer of {self.topic}: {error.str()}")
                topic, partition, offset = message.topic(), message.partition(), message.offset()
                assert topic is not None and partition is not None and offset is not None
                try:
                    change = decode(
                        message.value(), topic=topic, partition=partition, offset=offset
                    )
                except DecodeError as decode_error:
                    self._dead_letter(message, decode_error)
                    change = None
                self._polled[(topic, partition)] = offset + 1
                if change is not None:
                    changes.append(change)
        return changes

    def commit(self, position: int) -> None:
        """Commit the offsets of everything polled (``position`` is the batch's last change)."""
        if self._producer.flush(30) > 0:
            raise ChangeFeedError(f"dead letters to {self.dead_letter_topic} not delivered")
        if not self._polled:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._polled.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            raise ChangeFeedError(f"commit of {self.topic} offsets failed: {error}") from error
        self._polled.clear()

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
        self._producer.flush(30)
        self._consumer.close()
