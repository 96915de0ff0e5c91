"""The Kafka feed's partition-coverage warning, its consumer replaced (no broker needed).

The warning on a real broker is tested in tests/integration/test_kafka_change_feed.py.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from fxcortex.runtime.adapters.kafka import KafkaChangeFeed

TOPIC = "fxcortex.fxcortex.rates"


class Metadata:
    def __init__(self, partitions: int) -> None:
        self.topics = {TOPIC: type("Topic", (), {"partitions": dict.fromkeys(range(partitions))})}


class FakeConsumer:
    """Holds ``held`` of the topic's partitions; metadata fails while ``reachable`` is False."""

    def __init__(self, held: int, partitions: int) -> None:
        self.held, self.partitions, self.reachable = held, partitions, True

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, n) for n in range(self.held)]

    def list_topics(self, topic: str, timeout: float) -> Metadata:
        if not self.reachable:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        return Metadata(self.partitions)

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def feed() -> KafkaChangeFeed:
    # librdkafka connects lazily: nothing is reached before the consumer is used
    made = KafkaChangeFeed("127.0.0.1:9", TOPIC, group_id="g", batch_timeout=0.01, linger=None)
    made._consumer.close()
    made.require_every_partition(["cross_rates"])
    return made


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "combine pairs" in r.getMessage()]


def test_a_share_is_warned_once_per_assignment(
    feed: KafkaChangeFeed, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = FakeConsumer(held=2, partitions=4)
    feed._consumer = consumer  # type: ignore[assignment]
    caplog.set_level(logging.WARNING)
    feed.poll(10)
    feed.poll(10)
    assert len(warnings(caplog)) == 1 and "holds 2 of 4" in warnings(caplog)[0]
    consumer.held = 4  # the other consumer left: everything here, nothing to say
    feed.poll(10)
    consumer.held = 1
    feed.poll(10)
    assert len(warnings(caplog)) == 2 and "holds 1 of 4" in warnings(caplog)[1]


def test_metadata_out_of_reach_is_asked_again_not_raised(
    feed: KafkaChangeFeed, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = FakeConsumer(held=3, partitions=4)
    consumer.reachable = False
    feed._consumer = consumer  # type: ignore[assignment]
    caplog.set_level(logging.WARNING)
    assert list(feed.poll(10)) == []
    assert warnings(caplog) == []
    consumer.reachable = True
    feed.poll(10)
    assert len(warnings(caplog)) == 1 and "holds 3 of 4" in warnings(caplog)[0]
