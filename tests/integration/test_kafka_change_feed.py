"""KafkaChangeFeed on the real broker: decoded changes in order, offsets committed, dead letters."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
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


def _topic(kafka: Any, partitions: int) -> str:
    topic = f"fxfeed-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions)]).values():
        future.result(timeout=30)
    return topic


def _produce_pairs(kafka: Any, topic: str, pairs: int, days: int) -> int:
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for pair in range(pairs):
        key = json.dumps({"base": "EUR", "quote": f"X{pair:02d}"}).encode()
        for day in range(1, days + 1):
            producer.produce(topic, key=key, value=_envelope("c", f"1.{day:04d}", day))
    producer.flush(30)
    return pairs * days


def test_a_rebalance_flushes_the_changes_in_hand_before_partitions_are_revoked(kafka: Any) -> None:
    topic = _topic(kafka, partitions=4)
    total = _produce_pairs(kafka, topic, pairs=12, days=25)
    group = f"g-{topic}"
    # No linger: the first consumer's poll holds what it read until the batch timeout, so the
    # second consumer joins while the first has every change in hand.
    first = KafkaChangeFeed(
        kafka.bootstrap_servers, topic, group_id=group, batch_timeout=20.0, linger=None
    )
    flushed: list[RateChange] = []

    def flush(changes: Any) -> None:  # what the analyzer does: apply, then commit
        flushed.extend(changes)
        first.commit(changes[-1].position)

    first.flush_before_revoke(flush)
    taken: list[RateChange] = []
    second_assigned: list[int] = []

    def second_consumer() -> None:
        time.sleep(5.0)
        second = KafkaChangeFeed(kafka.bootstrap_servers, topic, group_id=group, batch_timeout=1.0)
        try:
            until = time.monotonic() + 12.0
            while time.monotonic() < until:
                taken.extend(second.poll(1000))
            second_assigned.append(second.assigned())
        finally:
            second.close()

    joining = threading.Thread(target=second_consumer)
    joining.start()
    try:
        returned = first.poll(1_000_000)
        joining.join(60)
        assert first.revocations >= 1 and second_assigned and second_assigned[0] > 0
        # Everything in hand was applied and committed by its first owner before the revoke: the
        # new owner of the revoked partitions has nothing to read again, and the poll returns
        # nothing twice.
        assert len(flushed) == total and list(returned) == []
        assert taken == []
    finally:
        joining.join(60)
        first.close()


def test_a_change_an_analyzer_rejects_is_dead_lettered_with_its_message(kafka: Any) -> None:
    topic = _topic(kafka, partitions=1)
    _produce_pairs(kafka, topic, pairs=1, days=3)
    feed = KafkaChangeFeed(kafka.bootstrap_servers, topic, group_id=f"g-{topic}")
    try:
        changes = _poll_all(feed, 3)
        feed.dead_letter(changes[1], "ValueError: refuses 1.0002", analyzer="picky")
        feed.commit(changes[-1].position)
        assert feed.dead_lettered == 1
    finally:
        feed.close()
    dead = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": f"dlq-{topic}",
            "auto.offset.reset": "earliest",
        }
    )
    dead.subscribe([f"{topic}.dead-letter"])
    try:
        message = None
        deadline = time.monotonic() + 60
        while message is None and time.monotonic() < deadline:
            message = dead.poll(0.5)
            if message is not None and message.error() is not None:
                message = None
        assert message is not None
        headers = dict(message.headers() or [])
        assert headers["fxcortex.analyzer"] == b"picky"
        assert headers["fxcortex.reason"] == b"ValueError: refuses 1.0002"
        assert headers["fxcortex.offset"] == b"1"
        assert message.value() == _envelope("c", "1.0002", 2)
    finally:
        dead.close()


def test_rewind_hands_out_the_uncommitted_changes_again(kafka: Any) -> None:
    topic = _topic(kafka, partitions=2)
    total = _produce_pairs(kafka, topic, pairs=4, days=10)
    feed = KafkaChangeFeed(kafka.bootstrap_servers, topic, group_id=f"g-{topic}")
    try:
        head = _poll_all(feed, total)
        feed.commit(head[-1].position)  # everything so far is done
        _produce_pairs(kafka, topic, pairs=4, days=3)
        tail = _poll_all(feed, 12)
        feed.rewind()  # the tail's batch failed: it must come again, and nothing before it
        again = _poll_all(feed, 12)
        assert sorted(c.position for c in again) == sorted(c.position for c in tail)
        assert len(again) == 12
    finally:
        feed.close()


def test_a_consumer_holding_some_partitions_warns_for_analytics_that_combine_pairs(
    kafka: Any, caplog: pytest.LogCaptureFixture
) -> None:
    topic = _topic(kafka, partitions=4)
    total = _produce_pairs(kafka, topic, pairs=12, days=5)
    caplog.set_level(logging.WARNING, logger="fxcortex.runtime.adapters.kafka")

    alone = KafkaChangeFeed(kafka.bootstrap_servers, topic, group_id=f"alone-{topic}")
    alone.require_every_partition(["cross_rates"])
    try:
        assert len(_poll_all(alone, total)) == total
        assert alone.coverage() == (4, 4)
    finally:
        alone.close()
    assert not [r for r in caplog.records if "combine pairs" in r.getMessage()]

    group = f"split-{topic}"
    feeds = [KafkaChangeFeed(kafka.bootstrap_servers, topic, group_id=group) for _ in range(2)]
    try:
        for feed in feeds:
            feed.require_every_partition(["cross_rates", "triangulation"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(0 < f.coverage()[0] < 4 for f in feeds):
            for feed in feeds:  # both keep polling, so the group's rebalance completes
                feed.poll(100)
        assert sorted(f.coverage()[0] for f in feeds) == [2, 2]
        for feed in feeds:  # the warning comes with the poll after an assignment changes
            feed.poll(100)
    finally:
        for feed in feeds:
            feed.close()
    warnings = [r.getMessage() for r in caplog.records if "combine pairs" in r.getMessage()]
    assert len(warnings) >= 2  # each consumer, once per assignment it was given
    assert all(
        w.startswith("cross_rates, triangulation combine pairs")
        and re.search(rf"holds [123] of 4 \(another analyzer in group '{group}'\?\)", w)
        for w in warnings
    )
