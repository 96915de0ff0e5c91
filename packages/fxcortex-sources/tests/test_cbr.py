"""The Central Bank of Russia source: the recorded files, and every way a payload can be bad."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import FetchContext, FetchWindow, Pair, Quote, QuoteKind, Source, SourceError
from fxcortex.sources.cbr import (
    CbrSource,
    fxcortex_register_sources,
    listed_currencies,
    parse_daily,
    parse_dynamic,
)
from fxcortex.sources.testing import recorded_transport

FIXTURES = Path(__file__).parent / "fixtures" / "http" / "cbr"
DAILY = (FIXTURES / "000.body").read_bytes()
DYNAMIC_AUD = (FIXTURES / "001.body").read_bytes()
DAILY_URL = "https://www.cbr.ru/scripts/XML_daily.asp"
TODAY = date(2026, 11, 28)
# The seven currencies the recorded backfill asked for, in the daily file's order.
RECORDED = ("AUD", "AZN", "DZD", "GBP", "AMD", "BHD", "BYN")
MARCH = FetchWindow(since=date(2026, 3, 1), until=date(2026, 3, 5))

Valute = tuple[str, str, str, str, str | None]  # id, code, nominal, value, vunit rate


def daily_xml(
    day: str, valutes: list[Valute], *, declaration: bool = True, encoding: str = "windows-1251"
) -> bytes:
    """A daily file shaped like the recorded one, encoded (and declared) in ``encoding``."""
    body = "".join(
        f'<Valute ID="{valute_id}"><NumCode>000</NumCode><CharCode>{code}</CharCode>'
        f"<Nominal>{nominal}</Nominal><Name>Доллар США</Name><Value>{value}</Value>"
        + (f"<VunitRate>{unit}</VunitRate>" if unit is not None else "")
        + "</Valute>"
        for valute_id, code, nominal, value, unit in valutes
    )
    head = f'<?xml version="1.0" encoding="{encoding}"?>' if declaration else ""
    text = f'{head}<ValCurs Date="{day}" name="Foreign Currency Market">{body}</ValCurs>'
    return text.encode(encoding)


def dynamic_xml(valute_id: str, records: list[tuple[str, str, str, str | None]]) -> bytes:
    """A dynamic file of one currency: (date, nominal, value, vunit rate) per record."""
    body = "".join(
        f'<Record Date="{day}" Id="{valute_id}"><Nominal>{nominal}</Nominal><Value>{value}</Value>'
        + (f"<VunitRate>{unit}</VunitRate>" if unit is not None else "")
        + "</Record>"
        for day, nominal, value, unit in records
    )
    return (
        '<?xml version="1.0" encoding="windows-1251"?>'
        f'<ValCurs ID="{valute_id}" DateRange1="01.03.2026" DateRange2="05.03.2026" '
        f'name="Foreign Currency Market Dynamic">{body}</ValCurs>'
    ).encode("windows-1251")


USD: Valute = ("R01235", "USD", "1", "75,5273", "75,5273")
JPY: Valute = ("R01820", "JPY", "100", "47,2636", "0,472636")
GOOD = daily_xml("25.04.2026", [USD, JPY])
GOOD_DYNAMIC = dynamic_xml(
    "R01820", [("03.03.2026", "100", "49,1234", "0,491234"), ("04.03.2026", "100", "49,5", None)]
)


def fetch_recorded(source: CbrSource, window: FetchWindow) -> tuple[list[Quote], list[str]]:
    """Fetch through the recordings; also returns the URLs asked for, in order."""
    replay = recorded_transport(FIXTURES)
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return replay.handle_request(request)

    context = FetchContext(http_transport=httpx.MockTransport(handler))
    return list(source.fetch(window, context)), asked


def serving(handler: Callable[[httpx.Request], httpx.Response]) -> FetchContext:
    return FetchContext(http_transport=httpx.MockTransport(handler))


def xml_response(body: bytes) -> httpx.Response:
    return httpx.Response(
        200, headers={"Content-Type": "text/xml; charset=windows-1251"}, content=body
    )


def refusal(parser: Callable[..., object], payload: bytes, **options: object) -> SourceError:
    with pytest.raises(SourceError) as caught:
        parser(payload, label="cbr.xml", today=TODAY, **options)
    assert caught.value.source == "cbr"
    return caught.value


def rates(quotes: list[Quote]) -> dict[str, Decimal]:
    return {quote.pair.base.code: quote.rate for quote in quotes}


# The source


def test_the_source_declares_its_schedule_in_moscow_its_currencies_and_history() -> None:
    source = CbrSource()

    assert isinstance(source, Source)
    assert source.name == "cbr"
    assert source.schedule.timezone == "Europe/Moscow"
    assert source.schedule.cron == "0 16 * * 1-5"
    assert source.history_since == date(1992, 7, 1)
    assert source.observation_interval == timedelta(days=1)
    assert len(source.currencies) == 54 and {"USD", "XDR", "VND"} <= set(source.currencies)
    assert "RUB" not in source.currencies


def test_the_plugin_registers_the_cbr_source() -> None:
    registered: list[object] = []

    fxcortex_register_sources(registered.append)

    assert registered == [CbrSource()]


def test_the_urls_write_days_as_dd_mm_yyyy() -> None:
    source = CbrSource()

    assert source.daily_url() == DAILY_URL
    assert source.daily_url(date(2026, 4, 5)) == f"{DAILY_URL}?date_req=05/04/2026"
    assert source.dynamic_url("R01020A", date(2026, 3, 1), date(2026, 3, 5)) == (
        "https://www.cbr.ru/scripts/XML_dynamic.asp?date_req1=01/03/2026&date_req2=05/03/2026"
        "&VAL_NM_RQ=R01020A"
    )


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"symbols": "USD"}, "unknown options ['symbols']"),
        ({"currencies": "USD,XYZ"}, "'XYZ' is not a currency the CBR quotes"),
        ({"currencies": "RUB"}, "'RUB' is not a currency the CBR quotes"),
        ({"timeout": "0"}, "timeout '0' is not a positive number of seconds"),
        ({"interval": "-1"}, "interval '-1' is not a positive number of seconds"),
        ({"max_attempts": "0"}, "max_attempts '0' is not a whole number of at least 1"),
    ],
)
def test_configure_refuses_unknown_options_and_bad_values(
    options: dict[str, str], reason: str
) -> None:
    with pytest.raises(SourceError) as caught:
        CbrSource().configure(**options)

    assert caught.value.source == "cbr"
    assert reason in caught.value.reason


def test_configure_sets_the_currencies_and_http_options_on_a_copy() -> None:
    source = CbrSource().configure(
        currencies=" usd, EUR ,usd", timeout="5", max_attempts="2", backoff="0", interval="0"
    )

    assert source.codes == ("USD", "EUR")
    assert source.currencies == ("USD", "EUR")
    assert (source.timeout, source.max_attempts, source.backoff, source.interval) == (5, 2, 0, 0)
    assert CbrSource().codes == () and CbrSource().interval == 0.25


# The recorded files


def test_the_newest_daily_file_gives_54_currencies_in_roubles() -> None:
    quotes, asked = fetch_recorded(CbrSource(), FetchWindow())

    assert asked == [DAILY_URL]
    assert len(quotes) == 54
    assert {quote.pair.quote.code for quote in quotes} == {"RUB"}
    assert {quote.kind for quote in quotes} == {QuoteKind.MID}
    assert len({quote.pair.base.code for quote in quotes}) == 54


def test_a_rate_takes_effect_at_midnight_moscow_on_the_file_date() -> None:
    quotes, _ = fetch_recorded(CbrSource(), FetchWindow())

    # ValCurs Date="25.04.2026": 00:00 Moscow (UTC+3) is 21:00 UTC the day before
    assert {quote.observed_at for quote in quotes} == {datetime(2026, 4, 24, 21, 0, tzinfo=UTC)}
    usd = next(quote for quote in quotes if quote.pair == Pair.of("USD", "RUB"))
    assert usd.rate == Decimal("75.5273")


def test_rates_are_per_one_unit_whatever_the_nominal() -> None:
    quotes, _ = fetch_recorded(CbrSource(), FetchWindow())

    by_code = rates(quotes)
    assert by_code["DZD"] == Decimal("0.570006")  # Nominal 100, Value 57,0006
    assert by_code["VND"] == Decimal("0.0030075")  # Nominal 10000, Value 30,0750
    assert by_code["JPY"] == Decimal("0.472636")  # Nominal 100, Value 47,2636
    assert by_code["HKD"] == Decimal("9.65699")  # Nominal 10, Value 96,5699
    # Nominal 1000000, Value 53,9256; VunitRate written 5,39256E-05
    assert by_code["IRR"] == Decimal("0.0000539256")
    assert str(by_code["BYN"]) == "26.7960"  # the digits of Value, not VunitRate's 26,796


def test_the_recorded_backfill_reads_the_ids_then_one_dynamic_file_per_currency() -> None:
    source = CbrSource().configure(currencies=",".join(RECORDED), interval="0")

    quotes, asked = fetch_recorded(source, MARCH)

    assert asked[0] == DAILY_URL
    asked_ids = [parse_qs(urlsplit(url).query)["VAL_NM_RQ"][0] for url in asked[1:]]
    assert asked_ids == ["R01010", "R01020A", "R01030", "R01035", "R01060", "R01080", "R01090B"]
    assert len(quotes) == 7 * 3  # 1 and 2 March 2026 are a Sunday and a Monday without a new rate
    assert Counter(quote.pair.base.code for quote in quotes) == dict.fromkeys(RECORDED, 3)


def test_the_recorded_backfill_keeps_each_days_rate_per_unit() -> None:
    source = CbrSource().configure(currencies=",".join(RECORDED), interval="0")

    quotes, _ = fetch_recorded(source, MARCH)

    aud = [quote for quote in quotes if quote.pair == Pair.of("AUD", "RUB")]
    assert [quote.rate for quote in aud] == [
        Decimal("54.7468"),
        Decimal("55.1336"),
        Decimal("54.4295"),
    ]
    assert [quote.observed_at for quote in aud] == [
        datetime(2026, 3, 2, 21, 0, tzinfo=UTC),
        datetime(2026, 3, 3, 21, 0, tzinfo=UTC),
        datetime(2026, 3, 4, 21, 0, tzinfo=UTC),
    ]
    amd = [quote.rate for quote in quotes if quote.pair == Pair.of("AMD", "RUB")]
    assert amd == [Decimal("0.204769"), Decimal("0.205866"), Decimal("0.205899")]  # Nominal 100


def test_a_backfill_of_every_currency_asks_for_every_id_of_the_daily_file() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        if request.url.path.endswith("XML_daily.asp"):
            return xml_response(DAILY)
        asked.append(query["VAL_NM_RQ"][0])
        assert query["date_req1"] == ["01/03/2026"] and query["date_req2"] == ["05/03/2026"]
        return xml_response(dynamic_xml(query["VAL_NM_RQ"][0], []))

    quotes = list(CbrSource().configure(interval="0").fetch(MARCH, serving(handler)))

    assert quotes == []
    assert len(asked) == 54
    assert asked[:3] == ["R01010", "R01020A", "R01030"] and asked[-1] == "R02005"


def test_a_backfill_of_a_currency_the_daily_file_does_not_list_is_refused() -> None:
    source = CbrSource().configure(currencies="USD,GHS", interval="0")
    context = serving(lambda request: xml_response(DAILY))

    with pytest.raises(SourceError) as caught:
        list(source.fetch(MARCH, context))

    assert "the daily file lists no GHS" in caught.value.reason
    assert caught.value.location == DAILY_URL


def test_a_one_day_window_reads_the_daily_file_of_that_day() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return xml_response(DAILY)

    day = FetchWindow(since=date(2026, 4, 25), until=date(2026, 4, 25))
    quotes = list(CbrSource().fetch(day, serving(handler)))

    assert asked == [f"{DAILY_URL}?date_req=25/04/2026"]
    assert len(quotes) == 54


def test_a_sunday_is_answered_with_saturdays_file_which_is_outside_its_window() -> None:
    sunday = FetchWindow(since=date(2026, 4, 26), until=date(2026, 4, 26))

    quotes = list(CbrSource().fetch(sunday, serving(lambda request: xml_response(DAILY))))

    assert quotes == []


def test_the_currencies_option_also_limits_the_daily_file() -> None:
    quotes, _ = fetch_recorded(CbrSource().configure(currencies="USD,JPY"), FetchWindow())

    assert rates(quotes) == {"USD": Decimal("75.5273"), "JPY": Decimal("0.472636")}


def test_a_window_after_tomorrow_asks_nothing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"asked {request.url}")

    later = FetchWindow(since=date.today() + timedelta(days=30))

    assert list(CbrSource().fetch(later, serving(handler))) == []


def test_the_dynamic_file_keeps_only_the_window() -> None:
    quotes = parse_dynamic(
        GOOD_DYNAMIC,
        code="JPY",
        valute_id="R01820",
        window=FetchWindow(since=date(2026, 3, 4)),
        today=TODAY,
    )

    assert [(str(quote.pair), quote.rate) for quote in quotes] == [("JPY/RUB", Decimal("0.495"))]


def test_listed_currencies_maps_ids_to_codes() -> None:
    listed = listed_currencies(DAILY, today=TODAY)

    assert len(listed) == 54
    assert listed["R01235"] == "USD" and listed["R01020A"] == "AZN" and listed["R01589"] == "XDR"


def test_rates_before_1998_are_in_old_roubles() -> None:
    payload = daily_xml("31.12.1997", [("R01235", "USD", "1", "5960,0000", None)])

    (quote,) = parse_daily(payload, today=TODAY)

    assert quote.pair == Pair.of("USD", "RUR")
    assert quote.rate == Decimal("5960.0000")
    assert parse_daily(daily_xml("01.01.1998", [USD]), today=TODAY)[0].pair.quote.code == "RUB"


def test_a_file_without_vunitrate_divides_value_by_nominal() -> None:
    payload = daily_xml("25.04.2026", [("R01820", "JPY", "100", "47,2636", None)])

    assert rates(parse_daily(payload, today=TODAY)) == {"JPY": Decimal("0.472636")}


def test_vunitrate_may_differ_by_the_rounding_of_values_last_digit() -> None:
    # 47,2636 is 47.26355…47.26365 per 100 yen: 0.4726364 per yen is inside, 0.472637 is not
    inside = daily_xml("25.04.2026", [("R01820", "JPY", "100", "47,2636", "0,4726364")])
    outside = daily_xml("25.04.2026", [("R01820", "JPY", "100", "47,2636", "0,472637")])

    assert rates(parse_daily(inside, today=TODAY)) == {"JPY": Decimal("0.472636")}
    error = refusal(parse_daily, outside)
    assert "VunitRate 0,472637 disagrees with Value 47,2636 / Nominal 100" in error.reason
    assert error.location == "cbr.xml Valute ID=R01820 CharCode=JPY"


def test_without_a_declaration_the_http_charset_decodes_the_file() -> None:
    payload = daily_xml("25.04.2026", [USD], declaration=False)

    assert rates(parse_daily(payload, encoding="windows-1251", today=TODAY)) == {
        "USD": Decimal("75.5273")
    }
    # read as UTF-8, the Cyrillic name is not text
    assert "malformed XML" in refusal(parse_daily, payload).reason


def test_an_unchanged_file_yields_nothing() -> None:
    quotes = list(CbrSource().fetch(FetchWindow(), serving(lambda request: httpx.Response(304))))

    assert quotes == []


# Bad payloads


def test_an_html_page_served_as_data_is_refused() -> None:
    error = refusal(parse_daily, b"<!DOCTYPE html><html><body>Access denied</body></html>")

    assert "HTML page" in error.reason
    assert error.location == "cbr.xml"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (GOOD[: len(GOOD) // 2], "malformed XML"),
        (b"", "malformed XML"),
        (GOOD.decode("windows-1251").encode("utf-16"), "malformed XML"),
        (
            GOOD.replace(b"windows-1251", b"utf-8"),  # Cyrillic bytes that are not UTF-8
            "malformed XML",
        ),
        (GOOD.replace(b"windows-1251", b"shift_jis"), "malformed XML"),
        (GOOD.replace(b"windows-1251", b"no-such-codec"), "malformed XML"),
        (
            b'<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "aaaa">]><ValCurs Date="&a;"/>',
            "DOCTYPE or entity",
        ),
        (b'<?xml version="1.0"?><Rates Date="25.04.2026"/>', "the root is <Rates>"),
    ],
)
def test_a_file_that_is_not_a_cbr_xml_document_is_refused(payload: bytes, reason: str) -> None:
    error = refusal(parse_daily, payload)

    assert reason in error.reason
    assert error.location == "cbr.xml"


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        ("2026-04-25", "date '2026-04-25' is not DD.MM.YYYY"),
        ("31.04.2026", "date '31.04.2026' is not a day"),
        ("01.12.2026", "2026-12-01 is in the future"),
    ],
)
def test_a_bad_file_date_is_refused(day: str, reason: str) -> None:
    error = refusal(parse_daily, daily_xml(day, [USD]))

    assert reason in error.reason
    assert error.location == "cbr.xml ValCurs"


def test_a_file_without_a_date_is_refused() -> None:
    payload = b'<?xml version="1.0"?><ValCurs name="Foreign Currency Market"></ValCurs>'

    assert "date None is not DD.MM.YYYY" in refusal(parse_daily, payload).reason


def test_tomorrows_rates_are_not_in_the_future() -> None:
    quotes = parse_daily(daily_xml("29.11.2026", [USD]), today=TODAY)

    assert [quote.observed_at for quote in quotes] == [datetime(2026, 11, 28, 21, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("valute", "reason"),
    [
        (("R01", "XYZ", "1", "1,0", None), "unknown currency code 'XYZ'"),
        (("R01", "", "1", "1,0", None), "unknown currency code ''"),
        (("R01", "RUB", "1", "1,0", None), "RUB quoted in roubles"),
        (("R01", "EUR", "0", "88,2826", None), "Nominal '0' is not a positive whole number"),
        (("R01", "EUR", "-1", "88,2826", None), "Nominal '-1' is not a positive whole number"),
        (("R01", "EUR", "1,5", "88,2826", None), "Nominal '1,5' is not a positive whole number"),
        (("R01", "EUR", "1", "-88,2826", None), "Value '-88,2826' is not a number"),
        (("R01", "EUR", "1", "0,0000", None), "Value '0,0000' is not a positive number"),
        (("R01", "EUR", "1", "88.2826", None), "Value '88.2826' is not a number"),
        (("R01", "EUR", "1", "88,28,26", None), "Value '88,28,26' is not a number"),
        (("R01", "EUR", "1", "", None), "Value '' is not a number"),
        (("R01", "EUR", "1", "Infinity", None), "Value 'Infinity' is not a number"),
        (("R01", "EUR", "1", "88,2826", "abc"), "VunitRate 'abc' is not a number"),
        (("R01", "EUR", "1", "88,2826", "8,82826"), "VunitRate 8,82826 disagrees"),
        (("", "EUR", "1", "88,2826", None), "a Valute without an ID"),
    ],
)
def test_a_bad_valute_is_refused_naming_it(valute: Valute, reason: str) -> None:
    payload = daily_xml("25.04.2026", [USD, valute])

    error = refusal(parse_daily, payload)

    assert reason in error.reason
    assert error.location is not None
    assert error.location.startswith(f"cbr.xml Valute ID={valute[0]}")


def test_digits_of_other_scripts_are_not_numbers() -> None:
    # Decimal("٨٨") is 88: only ASCII digits are read
    payload = daily_xml("25.04.2026", [("R01", "EUR", "1", "٨٨", None)], encoding="utf-8")

    assert refusal(parse_daily, payload).reason == "Value '٨٨' is not a number"


def test_a_valute_without_a_value_is_refused() -> None:
    payload = GOOD.replace(b"<Value>47,2636</Value>", b"")

    error = refusal(parse_daily, payload)

    assert error.reason == "Value None is not a number"
    assert error.location == "cbr.xml Valute ID=R01820 CharCode=JPY"


def test_a_currency_twice_in_a_file_is_refused() -> None:
    error = refusal(parse_daily, daily_xml("25.04.2026", [USD, JPY, ("R09", *USD[1:])]))

    assert error.reason == "USD appears twice"
    assert error.location == "cbr.xml Valute ID=R09 CharCode=USD"


def test_an_id_twice_in_a_file_is_refused() -> None:
    error = refusal(parse_daily, daily_xml("25.04.2026", [USD, ("R01235", *JPY[1:])]))

    assert error.reason == "id R01235 appears twice"


def test_an_element_that_is_not_a_valute_is_refused() -> None:
    payload = GOOD.replace(b"</ValCurs>", b"<Metal ID='1'/></ValCurs>")

    assert "unexpected element <Metal>" in refusal(parse_daily, payload).reason


@pytest.mark.parametrize(
    ("payload", "reason", "location"),
    [
        (
            dynamic_xml("R01820", [("03.03.2026", "100", "49,1", None)] * 2),
            "2026-03-03 appears twice",
            "cbr.xml Record Date=03.03.2026",
        ),
        (
            GOOD_DYNAMIC.replace(b'Id="R01820"', b'Id="R01235"', 1),
            "a record of id R01235 in the file of R01820 (JPY)",
            "cbr.xml Record Date=03.03.2026",
        ),
        (
            dynamic_xml("R01235", []),
            "the file is of id R01235, R01820 (JPY) was asked for",
            "cbr.xml ValCurs",
        ),
        (
            dynamic_xml("R01820", [("03.12.2026", "100", "49,1", None)]),
            "2026-12-03 is in the future",
            "cbr.xml Record Date=03.12.2026",
        ),
        (
            dynamic_xml("R01820", [("03.03.2026", "100", "n/a", None)]),
            "Value 'n/a' is not a number",
            "cbr.xml Record Date=03.03.2026",
        ),
        (daily_xml("25.04.2026", [USD]), "unexpected element <Valute>", "cbr.xml Record Date=None"),
    ],
)
def test_a_bad_dynamic_file_is_refused(payload: bytes, reason: str, location: str) -> None:
    error = refusal(parse_dynamic, payload, code="JPY", valute_id="R01820")

    assert reason in error.reason
    assert error.location == location


# HTTP failures


def test_a_404_is_a_source_error_naming_the_url() -> None:
    with pytest.raises(SourceError) as caught:
        list(CbrSource().fetch(FetchWindow(), serving(lambda request: httpx.Response(404))))

    assert caught.value.source == "cbr"
    assert "HTTP 404" in caught.value.reason
    assert caught.value.location == DAILY_URL


def test_server_errors_fail_after_the_configured_attempts() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    source = CbrSource().configure(max_attempts="3", backoff="0", interval="0")

    with pytest.raises(SourceError, match="after 3 attempts: HTTP 503"):
        list(source.fetch(FetchWindow(), serving(handler)))
    assert len(calls) == 3


def test_one_malformed_dynamic_file_fails_the_whole_backfill() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        if request.url.path.endswith("XML_daily.asp"):
            return xml_response(GOOD)
        if query["VAL_NM_RQ"] == ["R01235"]:
            return xml_response(dynamic_xml("R01235", [("03.03.2026", "1", "80,1", None)]))
        return xml_response(b"<html><body>Service unavailable</body></html>")

    with pytest.raises(SourceError) as caught:
        list(CbrSource().configure(interval="0").fetch(MARCH, serving(handler)))

    assert "HTML page" in caught.value.reason
    assert caught.value.location is not None and "VAL_NM_RQ=R01820" in caught.value.location


# Anything else is a SourceError, never another exception


def check_outcome(parse: Callable[[bytes], list[Quote]], payload: bytes) -> None:
    """Parsing either gives valid XXX/RUB quotes or raises a `SourceError` of this source."""
    try:
        quotes = parse(payload)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == "cbr"
        assert refused.reason
        assert refused.location and refused.location.startswith("fuzzed")
    for quote in quotes:
        assert quote.pair.quote.code in ("RUB", "RUR")
        assert quote.pair.base.code not in ("RUB", "RUR")
        assert quote.rate.is_finite() and quote.rate > 0
        assert quote.kind is QuoteKind.MID
        assert quote.observed_at.tzinfo is UTC
        assert quote.observed_at.date() <= TODAY + timedelta(days=2)
    assert len({quote.key for quote in quotes}) == len(quotes)


def parse_fuzzed_daily(payload: bytes) -> list[Quote]:
    return parse_daily(payload, label="fuzzed", today=TODAY)


def parse_fuzzed_dynamic(payload: bytes) -> list[Quote]:
    return parse_dynamic(payload, code="AUD", valute_id="R01010", label="fuzzed", today=TODAY)


def mutate(payload: bytes, changes: list[tuple[str, int, bytes]]) -> bytes:
    data = bytearray(payload)
    for kind, position, chunk in changes:
        at = position % (len(data) + 1)
        if kind == "insert":
            data[at:at] = chunk
        elif kind == "delete":
            del data[at : at + len(chunk)]
        else:
            data[at : at + len(chunk)] = chunk
    return bytes(data)


mutations = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace"]),
        st.integers(min_value=0, max_value=10_000),
        st.binary(min_size=1, max_size=6)
        | st.sampled_from(
            [b"<", b">", b",", b"0", b"-", b"E9", b"</Valute>", b"<Valute ID='X'>", b"\xff"]
        ),
    ),
    min_size=1,
    max_size=4,
)


@given(
    st.one_of(
        st.binary(max_size=400),
        st.binary(max_size=300).map(lambda tail: b'<ValCurs Date="25.04.2026">' + tail),
    )
)
def test_arbitrary_bytes_parse_to_valid_quotes_or_a_source_error(payload: bytes) -> None:
    check_outcome(parse_fuzzed_daily, payload)
    check_outcome(parse_fuzzed_dynamic, payload)


@given(mutations)
def test_a_mutated_daily_file_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(parse_fuzzed_daily, mutate(DAILY, changes))


@given(mutations)
def test_a_mutated_dynamic_file_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(parse_fuzzed_dynamic, mutate(DYNAMIC_AUD, changes))


@given(
    st.text(alphabet="0123456789,.-+Ee ", max_size=12),
    st.text(alphabet="0123456789,-", max_size=6),
    st.text(alphabet="0123456789,.-+Ee", max_size=12) | st.none(),
)
def test_any_nominal_value_and_unit_rate_parse_or_are_refused(
    value: str, nominal: str, unit: str | None
) -> None:
    check_outcome(
        parse_fuzzed_daily, daily_xml("25.04.2026", [("R01235", "USD", nominal, value, unit)])
    )
