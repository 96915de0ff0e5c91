"""The settings the Kafka feed gives its consumer (the consumer replaced: no broker needed)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from fxcortex.runtime.adapters import kafka
from fxcortex.runtime.adapters.kafka import KafkaChangeFeed


class RecordingConsumer:
    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, config: dict[str, Any]) -> None:
        RecordingConsumer.made.append(config)

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        pass


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    RecordingConsumer.made = []
    monkeypatch.setattr(kafka, "Consumer", RecordingConsumer)
    return RecordingConsumer.made


def test_a_busy_consumer_is_not_held_back_by_the_fetch_backoff(made: list[dict[str, Any]]) -> None:
    # librdkafka's default postpones a fetch by a whole second once its queue is full, which a
    # consumer applying batches keeps it: the analyzer's throughput fell to a quarter
    KafkaChangeFeed("127.0.0.1:9", "rates", group_id="g")
    assert made[0]["fetch.queue.backoff.ms"] <= 50
    assert made[0]["enable.auto.commit"] is False


def test_the_operator_settings_win(made: list[dict[str, Any]]) -> None:
    KafkaChangeFeed(
        "127.0.0.1:9",
        "rates",
        group_id="g",
        consumer_config={"fetch.queue.backoff.ms": 500, "queued.min.messages": 1000},
    )
    assert made[0]["fetch.queue.backoff.ms"] == 500
    assert made[0]["queued.min.messages"] == 1000
