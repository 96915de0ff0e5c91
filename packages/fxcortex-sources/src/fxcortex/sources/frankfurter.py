"""Frankfurter, an open-source rate API (sources ``frankfurter`` and ``frankfurter-v2``).

``frankfurter`` — API v1, ECB reference rates only (``https://api.frankfurter.dev/v1``):

- an open window asks ``/latest``; a one-day window ``/{day}``; any other window the time series
  ``/{start}..{end}`` (``/{start}..`` for an open end; an open start is 1999-01-04, the first fix).
- options ``base`` (default EUR, the ECB's own base; Frankfurter computes crosses for any other)
  and ``symbols`` (comma-separated codes; default every currency), sent as query parameters.
- Format: ``{"amount": 1.0, "base": "EUR", "date": "2024-01-15", "rates": {"GBP": 0.8623, …}}`` for
  one day; the time series has ``start_date``/``end_date`` and ``rates`` keyed by day,
  ``{"1999-01-04": {"AUD": 1.91, …}, …}``. Asking for a day without a fix (a weekend) answers the
  last fix before it, whose date is outside the window and so yields nothing.
- Units and direction: ``rates[X]`` is X per ``amount`` units of ``base``, so the quote is
  ``base/X`` with rate = ``rates[X]`` / ``amount`` (amount is 1.0 unless asked otherwise; the
  division is `Decimal`, exact for powers of ten, else rounded to 28 significant digits).
- Time: the data are the ECB's 14:15 Frankfurt-time concertation, so ``observed_at`` is that
  instant in UTC, as for the ``ecb`` source; the schedule is the ECB's ~16:00 publication.

``frankfurter-v2`` — API v2, blending about 100 central banks and other publishers
(``https://api.frankfurter.dev/v2/rates``):

- an open window asks the latest rates; a one-day window ``date={day}``; any other ``from`` (an open
  start is 1948-01-01, the site's claimed start) and ``to`` (left out for an open end).
- options ``base``, ``quotes`` (comma-separated) and ``providers`` (comma-separated keys such as
  ``ecb`` or ``nbp.b``; default: Frankfurter's blend), sent as the API's parameters of those names.
- Format: a list ``[{"date": "2024-01-15", "base": "EUR", "quote": "USD", "rate": 1.089}, …]``;
  other keys (``expand=providers`` adds some) are ignored. The row of the base against itself
  (``EUR/EUR`` 1.0) is dropped; with any other rate it is an error.
- Units and direction: one ``base`` costs ``rate`` ``quote``: the quote is ``base/quote``.
- Time: v2 gives only a date, and a blend has no single fixing instant, so ``observed_at`` is the
  date at 00:00 UTC — a label of the day, not the moment of publication. The schedule is hourly
  ("updated throughout the day").

Both: rates are JSON numbers, read as `Decimal` from their text (``parse_float=Decimal``), never as
float. Kind ``mid``. A key twice in one JSON object (the same currency twice on a day), a day more
than one day ahead of today, an unknown currency code, a rate that is not a positive number, a
missing field, or an HTML page served with status 200 is a `SourceError` naming the URL, the day
and the currency (v1) or the row (v2).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, DecimalException
from typing import Any, Self

import attrs

from fxcortex.core import (
    FetchContext,
    FetchWindow,
    Pair,
    Quote,
    QuoteKind,
    Schedule,
    SourceError,
    hookimpl,
)
from fxcortex.core.currencies import KNOWN_CODES
from fxcortex.sources.ecb import concertation_time
from fxcortex.sources.http import HttpFetcher, looks_like_html
from fxcortex.sources.options import HTTP_OPTIONS, http_options, reject_unknown

V1_NAME = "frankfurter"
V2_NAME = "frankfurter-v2"
V1_URL = "https://api.frankfurter.dev/v1"
V2_URL = "https://api.frankfurter.dev/v2"
V1_FIRST_DAY = date(1999, 1, 4)
V2_FIRST_DAY = date(1948, 1, 1)
V1_SCHEDULE = Schedule(
    cron="0 16 * * 1-5",
    timezone="Europe/Berlin",
    description="the ECB's reference rates: every TARGET working day around 16:00 Frankfurt time",
)
V2_SCHEDULE = Schedule(
    cron="0 * * * *",
    timezone="UTC",
    description="updated throughout the day as its publishers release their rates",
)
# The ECB's currencies of today, and EUR, which is quoted once another base is asked for.
V1_CURRENCIES = tuple(
    """
    EUR AUD BRL CAD CHF CNY CZK DKK GBP HKD HUF IDR ILS INR ISK JPY KRW MXN MYR NOK NZD PHP PLN
    RON SEK SGD THB TRY USD ZAR
    """.split()  # noqa: SIM905
)

_FUTURE_TOLERANCE = timedelta(days=1)


@attrs.frozen(kw_only=True)
class FrankfurterSource:
    """Frankfurter API v1: the ECB's reference rates, optionally re-based (``base``)."""

    base_url: str = V1_URL
    base: str | None = None
    symbols: tuple[str, ...] = ()
    timeout: float = 30.0
    max_attempts: int = 5
    backoff: float = 0.5
    name: str = V1_NAME
    description: str = "Frankfurter API v1: ECB reference rates, any base (1999–)"
    schedule: Schedule = V1_SCHEDULE
    currencies: tuple[str, ...] = V1_CURRENCIES
    history_since: date | None = V1_FIRST_DAY
    observation_interval: timedelta = timedelta(days=1)

    def configure(self, **options: str) -> Self:
        """A copy with ``base``, ``symbols``, ``timeout``, ``max_attempts`` or ``backoff`` set."""
        changes = _http_changes(self.name, options, ("base", "symbols"))
        if "base" in options:
            changes["base"] = _code(self.name, "base", options["base"])
        if "symbols" in options:
            changes["symbols"] = _codes(self.name, "symbols", options["symbols"])
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def url(self, window: FetchWindow) -> str:
        """The request URL for ``window`` (query included)."""
        if window.since is None and window.until is None:
            path = "latest"
        elif window.since is not None and window.since == window.until:
            path = window.since.isoformat()
        else:
            until = window.until.isoformat() if window.until else ""
            path = f"{(window.since or V1_FIRST_DAY).isoformat()}..{until}"
        query = []
        if self.base:
            query.append(f"base={self.base}")
        if self.symbols:
            query.append(f"symbols={','.join(self.symbols)}")
        return f"{self.base_url.rstrip('/')}/{path}" + ("?" + "&".join(query) if query else "")

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """Ask for ``window``; every quote is parsed before the first is yielded (304: none)."""
        url = self.url(window)
        content = _get(self, url, context)
        if content is None:
            return iter(())
        return iter(parse_v1(content, label=url, window=window, source=self.name))


@attrs.frozen(kw_only=True)
class FrankfurterV2Source:
    """Frankfurter API v2: rates blended from many publishers, or from the ``providers`` asked."""

    base_url: str = V2_URL
    base: str | None = None
    quotes: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    timeout: float = 30.0
    max_attempts: int = 5
    backoff: float = 0.5
    name: str = V2_NAME
    description: str = "Frankfurter API v2: rates from about 100 central banks, blended or chosen"
    schedule: Schedule = V2_SCHEDULE
    currencies: tuple[str, ...] = ()
    history_since: date | None = V2_FIRST_DAY
    observation_interval: timedelta = timedelta(days=1)

    def configure(self, **options: str) -> Self:
        """A copy with ``base``, ``quotes``, ``providers`` or an HTTP option set."""
        changes = _http_changes(self.name, options, ("base", "quotes", "providers"))
        if "base" in options:
            changes["base"] = _code(self.name, "base", options["base"])
        if "quotes" in options:
            changes["quotes"] = _codes(self.name, "quotes", options["quotes"])
            changes["currencies"] = changes["quotes"]
        if "providers" in options:
            parts = (part.strip().lower() for part in options["providers"].split(","))
            providers = tuple(part for part in parts if part)
            for provider in providers:
                if not provider.replace(".", "").replace("_", "").isalnum():
                    raise SourceError(self.name, f"providers: {provider!r} is not a provider key")
            changes["providers"] = providers
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def url(self, window: FetchWindow) -> str:
        """The request URL for ``window`` (query included)."""
        query = []
        if window.since is not None and window.since == window.until:
            query.append(f"date={window.since.isoformat()}")
        elif window.since is not None or window.until is not None:
            query.append(f"from={(window.since or V2_FIRST_DAY).isoformat()}")
            if window.until is not None:
                query.append(f"to={window.until.isoformat()}")
        if self.base:
            query.append(f"base={self.base}")
        if self.quotes:
            query.append(f"quotes={','.join(self.quotes)}")
        if self.providers:
            query.append(f"providers={','.join(self.providers)}")
        url = f"{self.base_url.rstrip('/')}/rates"
        return url + ("?" + "&".join(query) if query else "")

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """Ask for ``window``; every quote is parsed before the first is yielded (304: none)."""
        url = self.url(window)
        content = _get(self, url, context)
        if content is None:
            return iter(())
        return iter(parse_v2(content, label=url, window=window, source=self.name))


def parse_v1(
    payload: bytes,
    *,
    label: str = "payload",
    window: FetchWindow | None = None,
    source: str = V1_NAME,
    today: date | None = None,
) -> list[Quote]:
    """The quotes of a v1 answer (one day or a time series) inside ``window``."""
    window = window or FetchWindow()
    latest_allowed = (today or datetime.now(UTC).date()) + _FUTURE_TOLERANCE
    document = _json(payload, label, source)
    if not isinstance(document, dict):
        raise SourceError(source, "not a JSON object with 'base' and 'rates'", location=label)
    base = document.get("base")
    if not isinstance(base, str) or base not in KNOWN_CODES:
        raise SourceError(source, f"base {base!r} is not a known currency code", location=label)
    amount = _positive(document.get("amount", Decimal(1)), "amount", label, source)
    rates = document.get("rates")
    if not isinstance(rates, dict):
        raise SourceError(source, "no 'rates' object", location=label)
    days: dict[date, Any]
    if "date" in document:
        days = {_day(document["date"], label, source): rates}
    else:  # a time series: rates keyed by day
        days = {_day(key, label, source): value for key, value in rates.items()}
    quotes: list[Quote] = []
    for day, day_rates in days.items():
        where = f"{label} {day}"
        if day > latest_allowed:
            raise SourceError(source, f"{day} is in the future", location=where)
        if not isinstance(day_rates, dict):
            raise SourceError(source, "the rates of a day are not an object", location=where)
        observed_at = concertation_time(day)
        for code, value in day_rates.items():
            code_where = f"{where} {code}"
            value = _positive(value, "rate", code_where, source)
            rate = _per_unit(value, amount, code_where, source)
            if code == base:
                if rate != 1:
                    raise SourceError(
                        source, f"{base} quoted against itself at {rate}", location=code_where
                    )
                continue
            if code not in KNOWN_CODES:
                raise SourceError(source, f"unknown currency code {code!r}", location=code_where)
            if window.contains(day):
                quotes.append(
                    Quote(
                        pair=Pair.of(base, code),
                        rate=rate,
                        observed_at=observed_at,
                        source=source,
                        kind=QuoteKind.MID,
                    )
                )
    return quotes


def parse_v2(
    payload: bytes,
    *,
    label: str = "payload",
    window: FetchWindow | None = None,
    source: str = V2_NAME,
    today: date | None = None,
) -> list[Quote]:
    """The quotes of a v2 ``/rates`` answer (a list of rows) inside ``window``."""
    window = window or FetchWindow()
    latest_allowed = (today or datetime.now(UTC).date()) + _FUTURE_TOLERANCE
    rows = _json(payload, label, source)
    if not isinstance(rows, list):
        raise SourceError(source, "not a JSON list of rates", location=label)
    quotes: list[Quote] = []
    seen: set[tuple[date, str, str]] = set()
    for index, row in enumerate(rows):
        where = f"{label} [{index}]"
        if not isinstance(row, dict):
            raise SourceError(source, "a row is not an object", location=where)
        missing = [key for key in ("date", "base", "quote", "rate") if key not in row]
        if missing:
            raise SourceError(source, f"a row without {', '.join(missing)}", location=where)
        day = _day(row["date"], where, source)
        base, quote = row["base"], row["quote"]
        where = f"{where} {day} {base}/{quote}"
        for code in (base, quote):
            if not isinstance(code, str) or code not in KNOWN_CODES:
                raise SourceError(source, f"unknown currency code {code!r}", location=where)
        if day > latest_allowed:
            raise SourceError(source, f"{day} is in the future", location=where)
        if (day, base, quote) in seen:
            raise SourceError(source, f"{base}/{quote} on {day} appears twice", location=where)
        seen.add((day, base, quote))
        rate = _positive(row["rate"], "rate", where, source)
        if base == quote:
            if rate != 1:
                raise SourceError(source, f"{base} quoted against itself at {rate}", location=where)
            continue
        if window.contains(day):
            quotes.append(
                Quote(
                    pair=Pair.of(base, quote),
                    rate=rate,
                    observed_at=datetime.combine(day, time(0), tzinfo=UTC),
                    source=source,
                    kind=QuoteKind.MID,
                )
            )
    return quotes


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"key {key!r} appears twice in one object")
        result[key] = value
    return result


def _json(payload: bytes, label: str, source: str) -> Any:
    if looks_like_html(payload):
        raise SourceError(
            source, "an HTML page where JSON was expected (an error page?)", location=label
        )
    try:
        # Decimal for every number, so a rate never passes through a float.
        return json.loads(
            payload,
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=Decimal,
            object_pairs_hook=_unique_keys,
        )
    except _DuplicateKeyError as error:
        raise SourceError(source, str(error), location=label) from error
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise SourceError(source, f"not valid JSON ({error})", location=label) from error


def _get(
    source: FrankfurterSource | FrankfurterV2Source, url: str, context: FetchContext | None
) -> bytes | None:
    with HttpFetcher.for_source(
        source.name,
        context,
        timeout=source.timeout,
        max_attempts=source.max_attempts,
        backoff_base=source.backoff,
    ) as fetcher:
        answer = fetcher.get(url)
    return None if answer is None else answer.content


def _day(value: object, where: str, source: str) -> date:
    if not isinstance(value, str):
        raise SourceError(source, f"the date {value!r} is not text", location=where)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SourceError(source, f"{value!r} is not a date", location=where) from None


def _positive(value: object, field: str, where: str, source: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise SourceError(source, f"{field} {value!r} is not a number", location=where)
    if not value.is_finite() or value <= 0:
        raise SourceError(source, f"{field} {value} is not a positive number", location=where)
    return value


def _per_unit(value: Decimal, amount: Decimal, where: str, source: str) -> Decimal:
    if amount == 1:
        return value
    try:
        rate = value / amount
    except DecimalException:
        rate = Decimal("NaN")
    if not rate.is_finite() or rate <= 0:
        raise SourceError(source, f"rate {value} / amount {amount} is out of range", location=where)
    return rate


def _code(source: str, option: str, text: str) -> str:
    code = text.strip().upper()
    if code not in KNOWN_CODES:
        raise SourceError(source, f"{option}: {text!r} is not a known currency code")
    return code


def _codes(source: str, option: str, text: str) -> tuple[str, ...]:
    return tuple(_code(source, option, part) for part in text.split(",") if part.strip())


def _http_changes(source: str, options: dict[str, str], own: tuple[str, ...]) -> dict[str, object]:
    """Check the option names; parse the HTTP ones (``timeout``, ``max_attempts``, ``backoff``)."""
    reject_unknown(source, options, (*own, *HTTP_OPTIONS))
    return http_options(source, options)


@hookimpl
def fxcortex_register_sources(
    register: Callable[[FrankfurterSource | FrankfurterV2Source], None],
) -> None:
    """Register Frankfurter v1 (``frankfurter``) and v2 (``frankfurter-v2``)."""
    register(FrankfurterSource())
    register(FrankfurterV2Source())
