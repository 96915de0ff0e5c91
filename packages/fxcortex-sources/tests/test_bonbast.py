"""bonbast.com: the token flow, toman to rial per one unit, sell and buy, Tehran time.

The reply is built from the keys SOURCES.md documents (``<code>1`` sell, ``<code>2`` buy, coins,
gold, ``last_modified``) with realistic 2026 prices in toman; HTTP is an httpx.MockTransport.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import attrs
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import FetchContext, FetchWindow, Pair, Quote, QuoteKind, SourceError
from fxcortex.sources.bonbast import (
    BonbastSource,
    decode_reply,
    extract_token,
    fxcortex_register_sources,
    parse,
    read_last_modified,
)

RECEIVED = datetime(2026, 10, 3, 12, 0, tzinfo=UTC)  # 15:30 in Tehran
LAST_MODIFIED = datetime(2026, 10, 3, 11, 34, tzinfo=UTC)  # 15:04 in Tehran
FIELDS: dict[str, Any] = {
    "usd1": "106200",
    "usd2": "106000",
    "eur1": "124300",
    "eur2": "123900",
    "jpy1": "7150",
    "jpy2": "7100",
    "iqd1": "8100",
    "iqd2": "8000",
    "amd1": "2750",
    "amd2": "2700",
    "try1": "2915",
    "try2": "0",
    "emami1": "118500000",
    "emami12": "118000000",
    "azadi1": "110000000",
    "azadi1g": "61000000",
    "azadi1_2": "59000000",
    "azadi1_4": "33000000",
    "mithqal": "42270000",
    "gol18": "9758000",
    "ounce": "4144.74",
    "bitcoin": "121345",
    "last_modified": "October 3, 2026 15:04",
}


def reply(**changes: Any) -> bytes:
    fields = {**FIELDS, **changes}
    return json.dumps({k: v for k, v in fields.items() if v is not None}).encode()


REPLY = reply()
HOME = (
    b"<!DOCTYPE html><html><head><title>Bonbast</title></head><body><table id='usd'></table>"
    b"<script>$(function(){ $.post('/json', {param: \"tQ7vX2bL9kZp\", webdriver: false},"
    b" update); });</script></body></html>"
)


def rates(quotes: list[Quote]) -> dict[tuple[str, str], Decimal]:
    return {(str(q.pair), q.kind.value): q.rate for q in quotes}


# The reply


def test_prices_in_toman_become_rial_per_one_unit_as_sell_and_buy() -> None:
    quotes = parse(REPLY, received_at=RECEIVED)

    assert rates(quotes) == {
        ("USD/IRR", "sell"): Decimal(1062000),
        ("USD/IRR", "buy"): Decimal(1060000),
        ("EUR/IRR", "sell"): Decimal(1243000),
        ("EUR/IRR", "buy"): Decimal(1239000),
        ("JPY/IRR", "sell"): Decimal(7150),  # 7,150 toman per 10 yen
        ("JPY/IRR", "buy"): Decimal(7100),
        ("IQD/IRR", "sell"): Decimal(810),  # 8,100 toman per 100 dinars
        ("IQD/IRR", "buy"): Decimal(800),
        ("AMD/IRR", "sell"): Decimal(2750),  # 2,750 toman per 10 drams
        ("AMD/IRR", "buy"): Decimal(2700),
        ("TRY/IRR", "sell"): Decimal(29150),  # try2 is 0: no buy price
    }
    assert {q.observed_at for q in quotes} == {LAST_MODIFIED}
    assert {q.source for q in quotes} == {"bonbast"}


def test_the_usd_sell_quote_in_full() -> None:
    quotes = parse(REPLY, received_at=RECEIVED)

    assert (
        Quote(
            pair=Pair.of("USD", "IRR"),
            rate=Decimal(1062000),
            observed_at=LAST_MODIFIED,
            source="bonbast",
            kind=QuoteKind.SELL,
        )
        in quotes
    )


def test_coins_gold_ounce_and_bitcoin_are_not_read() -> None:
    only_metals = reply(
        **{key: None for key in FIELDS if key[:3] in {"usd", "eur", "jpy", "iqd", "amd", "try"}}
    )

    with pytest.raises(SourceError, match="holds no currency prices"):
        parse(only_metals, received_at=RECEIVED)


def test_numbers_persian_digits_commas_and_blanks_are_read() -> None:
    quotes = parse(
        reply(usd1=106200, usd2="۱۰۶٬۰۰۰", eur1="124,300", eur2="", jpy1="-"), received_at=RECEIVED
    )

    table = rates(quotes)
    assert table[("USD/IRR", "sell")] == Decimal(1062000)
    assert table[("USD/IRR", "buy")] == Decimal(1060000)
    assert table[("EUR/IRR", "sell")] == Decimal(1243000)
    assert ("EUR/IRR", "buy") not in table and ("JPY/IRR", "sell") not in table


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("October 3, 2026 15:04", datetime(2026, 10, 3, 11, 34, tzinfo=UTC)),
        ("October 3, 2026 - 15:04", datetime(2026, 10, 3, 11, 34, tzinfo=UTC)),
        ("2026-10-03 15:04:30", datetime(2026, 10, 3, 11, 34, 30, tzinfo=UTC)),
        ("2026/10/03 15:04", datetime(2026, 10, 3, 11, 34, tzinfo=UTC)),
        ("۲۰۲۶-۱۰-۰۳ ۱۵:۰۴", datetime(2026, 10, 3, 11, 34, tzinfo=UTC)),
        ("2026-10-03T15:04:00+03:30", datetime(2026, 10, 3, 11, 34, tzinfo=UTC)),
        ("July 1, 2021 12:00", datetime(2021, 7, 1, 7, 30, tzinfo=UTC)),  # old summer time
        ("3 Mehr 1405", None),
        ("", None),
        (1696334640, None),
    ],
)
def test_last_modified_is_read_in_tehran_time_when_its_layout_is_known(
    text: object, instant: datetime | None
) -> None:
    assert read_last_modified(text) == instant


def test_without_a_readable_last_modified_the_receive_time_is_used() -> None:
    unreadable = parse(reply(last_modified="Saturday noon"), received_at=RECEIVED)
    missing = parse(reply(last_modified=None), received_at=RECEIVED)

    assert {q.observed_at for q in unreadable + missing} == {RECEIVED}


REFUSALS = [
    (b"", "expected JSON, got an empty body"),
    (b"<!DOCTYPE html><html><body>Access denied</body></html>", "an HTML page"),
    (REPLY[:40], "malformed JSON"),
    (b"[1, 2]", "expected a JSON object, got list"),
    (b'{"reset": 1}', "the token expired"),
    (reply(xyz1="1000"), "unknown currency code 'XYZ'"),
    (reply(irr1="10"), "a rial price of the rial itself"),
    (reply(usd1="106.200.0"), "is not a number"),
    (reply(usd1="-106200"), "not a positive number"),
    (reply(usd1="1e99999"), "not a plausible price"),
    (reply(usd1=None, usd2=None, eur1=[124300]), "expected a price, got list"),
    (reply(usd1=True), "expected a price, got True"),
    (reply(last_modified="October 9, 2026 15:04"), "is in the future"),
]


@pytest.mark.parametrize(("payload", "reason"), REFUSALS)
def test_a_broken_reply_is_a_source_error(payload: bytes, reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse(payload, received_at=RECEIVED, label="json")

    assert caught.value.source == "bonbast"
    assert caught.value.location and caught.value.location.startswith("json")
    assert reason in caught.value.reason


# The token


def test_the_token_is_taken_from_the_pages_script() -> None:
    assert extract_token(HOME) == "tQ7vX2bL9kZp"
    assert extract_token(b"var data = {param = 'a1-b2'};") == "a1-b2"


def test_a_page_without_a_token_is_a_source_error() -> None:
    with pytest.raises(SourceError) as caught:
        extract_token(b"<!DOCTYPE html><html><body>Under maintenance</body></html>")

    assert "no token" in caught.value.reason and "an HTML page" in caught.value.reason
    assert caught.value.location == "https://bonbast.com/"


# Fetching


@attrs.define
class Site:
    """bonbast.com as a mock: the home page's tokens in turn, and replies to each POST."""

    tokens: list[str]
    replies: list[bytes]
    requests: list[httpx.Request] = attrs.Factory(list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "GET" and str(request.url) == "https://bonbast.com/":
            token = self.tokens.pop(0)
            return httpx.Response(200, content=HOME.replace(b"tQ7vX2bL9kZp", token.encode()))
        if request.method == "POST" and str(request.url) == "https://bonbast.com/json":
            return httpx.Response(200, content=self.replies.pop(0))
        return httpx.Response(404)

    def posted_tokens(self) -> list[str]:
        return [
            parse_qs(request.content.decode())["param"][0]
            for request in self.requests
            if request.method == "POST"
        ]


def source(**options: str) -> BonbastSource:
    return attrs.evolve(
        BonbastSource().configure(**options), now=lambda: RECEIVED, sleep=lambda _: None
    )


def serve(handler: Callable[[httpx.Request], httpx.Response]) -> FetchContext:
    return FetchContext(http_transport=httpx.MockTransport(handler))


def test_a_fetch_takes_a_token_and_posts_it_with_the_sites_headers() -> None:
    site = Site(tokens=["tok-1"], replies=[REPLY])

    quotes = list(source().fetch(FetchWindow(), serve(site)))

    assert len(quotes) == 11
    assert site.posted_tokens() == ["tok-1"]
    get, post = site.requests
    for request in (get, post):
        assert request.headers["cookie"] == "cookieconsent_status=true; st_bb=0"
        assert "Mobile" in request.headers["user-agent"]
    assert post.headers["x-requested-with"] == "XMLHttpRequest"
    assert post.headers["origin"] == "https://bonbast.com"
    assert post.headers["referer"] == "https://bonbast.com/"
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"


def test_a_reset_reply_fetches_a_new_token_and_retries_once() -> None:
    site = Site(tokens=["old", "new"], replies=[b'{"reset": true}', REPLY])

    quotes = list(source().fetch(FetchWindow(), serve(site)))

    assert site.posted_tokens() == ["old", "new"]
    assert rates(quotes)[("USD/IRR", "sell")] == Decimal(1062000)


def test_a_second_reset_is_a_source_error() -> None:
    site = Site(tokens=["old", "new"], replies=[b'{"reset": 1}', b'{"reset": 1}'])

    with pytest.raises(SourceError, match="refused twice"):
        source().fetch(FetchWindow(), serve(site))

    assert site.posted_tokens() == ["old", "new"]


def test_a_fetch_keeps_the_window_by_tehran_day() -> None:
    def fresh() -> Site:
        return Site(tokens=["t"], replies=[REPLY])

    assert list(source().fetch(FetchWindow(until=date(2026, 10, 2)), serve(fresh()))) == []
    assert len(list(source().fetch(FetchWindow(since=date(2026, 10, 3)), serve(fresh())))) == 11


@pytest.mark.parametrize(
    ("status", "reason"), [(403, "HTTP 403"), (404, "HTTP 404"), (502, "after 2 attempts")]
)
def test_http_failures_are_source_errors(status: int, reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        source(max_attempts="2").fetch(FetchWindow(), serve(lambda r: httpx.Response(status)))

    assert caught.value.source == "bonbast"
    assert caught.value.location == "https://bonbast.com/"
    assert reason in caught.value.reason


def test_an_html_page_in_place_of_the_reply_is_a_source_error() -> None:
    site = Site(tokens=["t"], replies=[b"<html><body>Checking your browser</body></html>"])

    with pytest.raises(SourceError, match="an HTML page"):
        source().fetch(FetchWindow(), serve(site))


@pytest.mark.parametrize(
    ("options", "reason"),
    [({"max_attempts": "0"}, "too small"), ({"unit": "toman"}, "unknown options ['unit']")],
)
def test_bad_options_are_refused(options: dict[str, str], reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        BonbastSource().configure(**options)

    assert reason in caught.value.reason


def test_the_plugin_registers_the_bonbast_source() -> None:
    registered: list[BonbastSource] = []
    fxcortex_register_sources(registered.append)

    (bonbast,) = registered
    assert bonbast.name == "bonbast"
    assert len(bonbast.currencies) == 29 and "IRR" in bonbast.currencies
    assert bonbast.schedule.timezone == "Asia/Tehran"


# Fuzzing


@st.composite
def mutated(draw: st.DrawFn, payload: bytes) -> bytes:
    data = bytearray(payload)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        token = draw(
            st.sampled_from([b"", b"0", b"-", b'"', b",", b"}", b"\xdb\xb1", b"\xff", b"1e9", b"x"])
        )
        data[at : at + draw(st.integers(0, 3))] = token
    return bytes(data)


@given(st.one_of(st.binary(max_size=200), mutated(REPLY)))
def test_any_reply_bytes_parse_or_raise_a_source_error(payload: bytes) -> None:
    try:
        quotes = parse(payload, received_at=RECEIVED)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == "bonbast"
    assert all(q.rate > 0 and q.pair.quote.code == "IRR" for q in quotes)
    assert all(q.kind in (QuoteKind.SELL, QuoteKind.BUY) for q in quotes)


@given(st.binary(max_size=300))
def test_any_page_bytes_give_a_token_or_a_source_error(page: bytes) -> None:
    try:
        token = extract_token(page)
    except SourceError as error:
        refused: SourceError | None = error
        token = ""
    else:
        refused = None
    if refused is not None:
        assert refused.source == "bonbast"
    else:
        assert token and '"' not in token and "'" not in token


def test_decode_reply_reads_numbers_as_decimals() -> None:
    assert decode_reply(b'{"usd1": 106200.5}') == {"usd1": Decimal("106200.5")}
