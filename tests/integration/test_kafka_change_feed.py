"""KafkaChangeFeed on the real broker: decoded changes in order, offsets committed, dead letters."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from fxcortex.core import ChangeOp, RateChange
from fxcortex.runtime.adapters.kafka import KafkaChangeFeed

FIXTURES = Path(__file__).resolve().parents[2] / "packages/fxcortex-runtime/tests/fixtures/debezium"


def _envelope(op: str, rate: str, day: int) -> bytes:
    document = json.loads((FIXTURES / "bare-create.json").read_text())
    row = {**document["after"], "rate": rate, "observed_at": f"2024-01-{day:02d}T13:15:00Z"}
    document.update(op=op, after=row, before=row if op == "u" else None)
    return json.dumps(document).encode()


def _poll_all(feed: KafkaChangeFeed, want: int, timeout: float = 60) -> list[RateChange]:
    changes: list[RateChange] = []
    deadline = time.monotonic() + timeout
    while len(changes) < want and time.monotonic() < deadline:
        changes.extend(feed.poll(1000))
    return changes


def test_feed_decodes_in_order_commits_and_dead_letters(kafka: Any) -> None:
    topic = f"fxfeed-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    for future in admin.create_topics([NewTopic(topic, num_partitions=2)]).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    key = b'{"base":"GBP","quote":"USD"}'
    for day in range(1, 11):
        producer.produce(topic, key=key, value=_envelope("c", f"1.{day:04d}", day))
    producer.produce(topic, key=key, value=b'{"op": "c", "after": 1}')  # undecodable
    producer.produce(topic, key=key, value=None)  # a tombstone
    producer.produce(topic, key=key, value=_envelope("u", "2.0000", 1))
    producer.flush(30)

    feed = KafkaChangeFeed(kafka.bootstrap_servers, topic, group_id=f"g-{topic}")
    try:
        changes = _poll_all(feed, 11)
        assert [c.op for c in changes] == [ChangeOp.CREATE] * 10 + [ChangeOp.UPDATE]
        positions = [c.position for c in changes]
        assert positions == sorted(set(positions))
        assert feed.dead_lettered == 1
        assert feed.pending() == 0
        feed.commit(positions[-1])
    finally:
        feed.close()

    # the group resumes after the committed offsets: nothing again
    again = KafkaChangeFeed(
        kafka.bootstrap_servers, topic, group_id=f"g-{topic}", batch_timeout=3.0
    )
    try:
        assert again.poll(1000) == []
    finally:
        again.close()

    dead = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": f"dlq-{topic}",
            "auto.offset.reset": "earliest",
        }
    )
    dead.subscribe([f"{topic}.dead-letter"])
    try:
        deadline = time.monotonic() + 60
        message = None
        while message is None and time.monotonic() < deadline:
            message = dead.poll(0.5)
            if message is not None and message.error() is not None:
                message = None
        assert message is not None
        headers = dict(message.headers() or [])
        assert headers["fxcortex.topic"] == topic.encode()
        assert headers["fxcortex.offset"] == b"10"
        assert headers["fxcortex.reason"] == b"payload has no source block"
        assert message.value() == b'{"op": "c", "after": 1}'
    finally:
        dead.close()


def test_uncommitted_changes_are_delivered_again(kafka: Any) -> None:
    topic = f"fxfeed-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for day in range(1, 6):
        producer.produce(topic, key=b"k", value=_envelope("c", f"1.{day:04d}", day))
    producer.flush(30)
    group = f"g-{topic}"
    feed = KafkaChangeFeed(kafka.bootstrap_servers, topic, group_id=group)
    try:
        first = _poll_all(feed, 5)
    finally:
        feed.close()  # no commit: a crash before the writes landed
    feed = KafkaChangeFeed(kafka.bootstrap_servers, topic, group_id=group)
    try:
        second = _poll_all(feed, 5)
        assert second == first  # same changes, same positions
    finally:
        feed.close()
