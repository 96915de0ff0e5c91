"""The value types every FX-Cortex component speaks.

Money is `Decimal` (never built from a float), time is timezone-aware UTC. All models are frozen
attrs classes; change them with `attrs.evolve`, build them from other shapes through the
classmethods (`Pair.parse`, `Quote.of`).
"""

from __future__ import annotations

import enum
import functools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from fxcortex.core.currencies import CRYPTO_CODES, KNOWN_CODES, LEGACY_CODES
from fxcortex.core.errors import InvalidValueError

_ZERO = timedelta(0)
_DECIMAL_ZERO = Decimal(0)


def _known_code(_: Any, attribute: attrs.Attribute[str], code: str) -> None:
    if code not in KNOWN_CODES:
        # No field: a currency travels as a bare code, so the caller's path already points at it.
        raise InvalidValueError(f"{attribute.name}: {code!r} is not an ISO 4217 currency code")


@attrs.frozen(slots=True, order=True)
class Currency:
    """An ISO 4217 currency, current or withdrawn (historical data carries the withdrawn ones)."""

    code: str = attrs.field(validator=_known_code)

    @classmethod
    @functools.cache
    def of(cls, code: str) -> Currency:
        """The currency with this code; instances are shared, so this is cheap in hot loops."""
        return cls(code)

    @property
    def is_iso(self) -> bool:
        """True for an ISO 4217 code (current or withdrawn), False for a crypto asset."""
        return self.code not in CRYPTO_CODES

    @property
    def is_legacy(self) -> bool:
        """True for a code withdrawn from ISO 4217 (e.g. CYP, LTL, HRK)."""
        return self.code in LEGACY_CODES

    def __str__(self) -> str:
        return self.code


def _other_than_base(instance: Pair, _: Any, quote: Currency) -> None:
    if quote == instance.base:
        raise InvalidValueError(f"pair: base and quote are both {quote.code}")


@attrs.frozen(slots=True, order=True)
class Pair:
    """A currency pair: one unit of `base` costs `rate` units of `quote` (EUR/USD 1.16)."""

    base: Currency
    quote: Currency = attrs.field(validator=_other_than_base)

    @classmethod
    @functools.cache
    def of(cls, base: str, quote: str) -> Pair:
        """The pair of two codes, e.g. ``Pair.of("EUR", "USD")``; instances are shared."""
        return cls(Currency.of(base), Currency.of(quote))

    @classmethod
    def parse(cls, text: str) -> Pair:
        """Read ``"EUR/USD"`` (also ``EURUSD`` and ``EUR-USD``)."""
        cleaned = text.strip().upper().replace("-", "/").replace("_", "/")
        if "/" in cleaned:
            base, _, quote = cleaned.partition("/")
        else:
            # Without a separator (EURUSD, BTCUSDT) the split must be the only one into two codes.
            splits = [
                (cleaned[:cut], cleaned[cut:])
                for cut in range(2, len(cleaned) - 1)
                if cleaned[:cut] in KNOWN_CODES and cleaned[cut:] in KNOWN_CODES
            ]
            if len(splits) != 1:
                raise InvalidValueError(f"pair: cannot read {text!r}; write it as BASE/QUOTE")
            base, quote = splits[0]
        return cls.of(base, quote)

    def inverse(self) -> Pair:
        """The same pair the other way round (USD/EUR for EUR/USD)."""
        return Pair.of(self.quote.code, self.base.code)

    def __str__(self) -> str:
        return f"{self.base.code}/{self.quote.code}"


class QuoteKind(enum.StrEnum):
    """What a quoted rate is: a mid (reference) rate, a market bid/ask, or a dealer's buy/sell."""

    MID = "mid"
    BID = "bid"
    ASK = "ask"
    BUY = "buy"
    SELL = "sell"


def _positive_finite_decimal(_: Any, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    # bool and float are refused on purpose: a float has already lost the digits we promise to keep.
    if type(value) is not Decimal:
        raise InvalidValueError(
            f"{attribute.name}: must be a Decimal, got {type(value).__name__} {value!r}",
            field=attribute.name,
        )
    if not value.is_finite() or value <= _DECIMAL_ZERO:
        raise InvalidValueError(
            f"{attribute.name}: must be a positive finite number, got {value}", field=attribute.name
        )


def _aware_utc(_: Any, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    if value.__class__ is datetime and value.tzinfo is UTC:
        return  # the common case, checked first because quotes are built in hot loops
    if not isinstance(value, datetime):
        raise InvalidValueError(
            f"{attribute.name}: must be a datetime, got {value!r}", field=attribute.name
        )
    if value.tzinfo is None or value.utcoffset() != _ZERO:
        raise InvalidValueError(
            f"{attribute.name}: must be timezone-aware UTC, got {value.isoformat()}",
            field=attribute.name,
        )


def _non_empty(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidValueError(
            f"{attribute.name}: must be a non-empty string, got {value!r}", field=attribute.name
        )


def to_decimal(value: str | int | Decimal, *, field: str = "rate") -> Decimal:
    """Read a rate from text or an int; floats are refused because they have lost digits."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidValueError(f"{field}: give a str, int or Decimal, not {type(value).__name__}")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise InvalidValueError(f"{field}: {value!r} is not a number") from None


def to_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is refused rather than guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValueError(f"naive datetime {value.isoformat()}: give it a timezone")
    return value.astimezone(UTC)


def _quote_kind(kind: QuoteKind | str) -> QuoteKind:
    try:
        return QuoteKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in QuoteKind)
        raise InvalidValueError(f"kind: {kind!r} is not one of {choices}", field="kind") from None


@attrs.frozen(slots=True, kw_only=True)
class Quote:
    """One observed rate: one unit of ``pair.base`` is worth ``rate`` units of ``pair.quote``."""

    pair: Pair
    rate: Decimal = attrs.field(validator=_positive_finite_decimal)
    observed_at: datetime = attrs.field(validator=_aware_utc)
    source: str = attrs.field(validator=_non_empty)
    kind: QuoteKind = QuoteKind.MID

    @classmethod
    def of(
        cls,
        pair: str | Pair,
        rate: str | int | Decimal,
        observed_at: datetime,
        source: str,
        kind: QuoteKind | str = QuoteKind.MID,
    ) -> Quote:
        """Build a quote from loose inputs: ``Quote.of("EUR/USD", "1.16", when, "ecb")``."""
        return cls(
            pair=pair if isinstance(pair, Pair) else Pair.parse(pair),
            rate=to_decimal(rate),
            observed_at=to_utc(observed_at),
            source=source,
            kind=_quote_kind(kind),
        )

    @property
    def key(self) -> SeriesKey:
        """The natural key: a re-fetch of the same observation has the same key."""
        # kind is a StrEnum, so it stands for its text without the cost of ``.value``
        return (self.source, self.pair.base.code, self.pair.quote.code, self.kind, self.observed_at)

    @property
    def series(self) -> tuple[str, str, str, str]:
        """The series this quote belongs to: (source, base, quote, kind)."""
        return (self.source, self.pair.base.code, self.pair.quote.code, self.kind)


SeriesKey = tuple[str, str, str, str, datetime]


class ChangeOp(enum.StrEnum):
    """The kind of a row change, with Debezium's one-letter codes."""

    CREATE = "c"
    UPDATE = "u"
    DELETE = "d"
    READ = "r"  # a snapshot read: the row existed before the feed started


def _images_match_op(instance: RateChange, _: Any, after: Quote | None) -> None:
    op, before = instance.op, instance.before
    if op in (ChangeOp.CREATE, ChangeOp.READ) and after is None:
        raise InvalidValueError(f"change at {instance.position}: op {op.name} needs an after image")
    if op in (ChangeOp.CREATE, ChangeOp.READ) and before is not None:
        raise InvalidValueError(f"change at {instance.position}: op {op.name} has no before image")
    if op is ChangeOp.UPDATE and (before is None or after is None):
        raise InvalidValueError(f"change at {instance.position}: an update needs both images")
    if op is ChangeOp.DELETE and (before is None or after is not None):
        raise InvalidValueError(f"change at {instance.position}: a delete has only a before image")


def _non_negative(_: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 0:
        raise InvalidValueError(
            f"{attribute.name}: must be a non-negative int, got {value!r}", field=attribute.name
        )


@attrs.frozen(slots=True, kw_only=True)
class RateChange:
    """One row change of the rate store, as a change feed delivers it.

    ``position`` grows with every change (an LSN, or a change-log sequence number), so a consumer
    that remembers the last position it applied can skip a re-delivery.
    """

    op: ChangeOp
    position: int = attrs.field(validator=_non_negative)
    committed_at: datetime = attrs.field(validator=_aware_utc)
    before: Quote | None = None
    after: Quote | None = attrs.field(default=None, validator=_images_match_op)

    @property
    def quote(self) -> Quote:
        """The image that names the row: the after image, or the before image of a delete."""
        image = self.after if self.after is not None else self.before
        assert image is not None  # guaranteed by the validator
        return image


@attrs.frozen(slots=True, kw_only=True)
class FetchWindow:
    """Which observations a fetch asks for; both ends inclusive, None means open."""

    since: date | None = None
    until: date | None = None

    def __attrs_post_init__(self) -> None:
        if self.since and self.until and self.since > self.until:
            raise InvalidValueError(f"window: since {self.since} is after until {self.until}")

    def contains(self, day: date) -> bool:
        """Whether a day falls inside the window."""
        return (self.since is None or day >= self.since) and (
            self.until is None or day <= self.until
        )


@attrs.frozen(slots=True, kw_only=True)
class Schedule:
    """When a source publishes: a cron expression read in the publisher's own timezone."""

    cron: str
    timezone: str = "UTC"
    description: str = ""
