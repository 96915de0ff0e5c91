"""The SQLite rate store and its change feed: idempotent loads, revisions, deletes, positions."""

from __future__ import annotations

from pathlib import Path

import pytest

from fxcortex.core import ChangeOp, StoreError
from fxcortex.core.testing import quote
from fxcortex.runtime.adapters.sqlite import SqliteChangeFeed, SqliteRateStore, canonical_rate


@pytest.fixture
def store(tmp_path: Path) -> SqliteRateStore:
    return SqliteRateStore(tmp_path / "rates.sqlite")


def test_loading_the_same_quotes_twice_inserts_once_and_logs_no_second_change(
    store: SqliteRateStore,
) -> None:
    quotes = [quote(pair="EUR/USD"), quote(pair="EUR/JPY", rate="160.5")]
    first = store.upsert(quotes)
    second = store.upsert(quotes)
    assert (first.inserted, first.revised) == (2, 0)
    assert (second.inserted, second.revised, second.unchanged) == (0, 0, 2)
    feed = SqliteChangeFeed(store.path)
    assert [c.op for c in feed.poll(100)] == [ChangeOp.CREATE, ChangeOp.CREATE]


def test_the_same_number_written_differently_is_not_a_revision(store: SqliteRateStore) -> None:
    store.upsert([quote(rate="1.10")])
    assert store.upsert([quote(rate="1.1000")]).revised == 0
    assert canonical_rate(quote(rate="100").rate) == "100"


def test_a_revised_rate_is_one_update_carrying_before_and_after(store: SqliteRateStore) -> None:
    store.upsert([quote(rate="1.10")])
    result = store.upsert([quote(rate="1.12")])
    assert (result.inserted, result.revised) == (0, 1)
    changes = SqliteChangeFeed(store.path).poll(100)
    update = changes[-1]
    assert update.op is ChangeOp.UPDATE
    assert update.before is not None and update.after is not None
    assert (str(update.before.rate), str(update.after.rate)) == ("1.1", "1.12")
    assert [c.position for c in changes] == sorted(c.position for c in changes)


def test_a_delete_is_logged_with_its_before_image(store: SqliteRateStore) -> None:
    fix = quote()
    store.upsert([fix])
    assert store.delete([fix, quote(pair="EUR/GBP")]) == 1
    deletion = SqliteChangeFeed(store.path).poll(100)[-1]
    assert deletion.op is ChangeOp.DELETE and deletion.after is None
    assert deletion.before == fix
    assert store.count() == 0


def test_quotes_read_back_equal_the_quotes_loaded(store: SqliteRateStore) -> None:
    loaded = [
        quote(pair="EUR/USD", rate="1.0845"),
        quote(pair="USD/IRR", rate="1045000", kind="sell"),
    ]
    store.upsert(loaded)
    assert sorted(store.quotes(), key=repr) == sorted(loaded, key=repr)
    assert list(store.quotes(source="elsewhere")) == []


def test_the_feed_resumes_after_its_committed_position_and_rereads_the_rest(
    store: SqliteRateStore,
) -> None:
    store.upsert([quote(pair=pair) for pair in ("EUR/USD", "EUR/JPY", "EUR/GBP", "EUR/CHF")])
    feed = SqliteChangeFeed(store.path)
    first = feed.poll(2)
    feed.commit(first[-1].position)
    feed.poll(2)  # read but never committed: a crash here must not lose these
    reopened = SqliteChangeFeed(store.path)
    assert reopened.pending() == 2
    assert [c.position for c in reopened.poll(10)] == [3, 4]


def test_a_failed_load_stores_nothing_of_itself(store: SqliteRateStore) -> None:
    store.upsert([quote()])
    store._connection.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON rates"
        " WHEN NEW.quote = 'JPY' BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with pytest.raises(StoreError, match="refused"):
        store.upsert([quote(pair="EUR/GBP"), quote(pair="EUR/JPY")])
    assert store.count() == 1
    assert SqliteChangeFeed(store.path).pending() == 1


def test_canonical_text_keeps_every_digit_and_drops_only_trailing_zeros() -> None:
    from decimal import Decimal

    assert (
        canonical_rate(Decimal("1.00000000000000000000000000001"))
        == "1.00000000000000000000000000001"
    )
    assert canonical_rate(Decimal("1.2300")) == "1.23"
    assert canonical_rate(Decimal("1E+2")) == "100"
    assert canonical_rate(Decimal("2.8e-06")) == "0.0000028"
