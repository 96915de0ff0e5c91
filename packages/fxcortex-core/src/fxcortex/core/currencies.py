"""ISO 4217 currency codes.

Two sets: the codes in force, and the withdrawn codes that historical data still carries (the ECB
reference-rate history has columns for CYP, EEK, LTL, LVL, MTL, ROL, SIT, SKK, TRL, HRK, BGN …).
Both are accepted as a `Currency`; `is_legacy` tells them apart. A short list of crypto assets and
stablecoins is accepted too, for market sources; `is_iso` is False for them.
"""

from __future__ import annotations

ACTIVE_CODES: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN
    ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK
    JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD
    MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP
    PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP
    SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV
    WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW
    ZWG
    """.split()  # noqa: SIM905 - a block of codes reads better than a list
)

LEGACY_CODES: frozenset[str] = frozenset(
    """
    ADP AFA ALK ANG AOK AON AOR ATS AZM BEF BGL BGN BYB BYR CSD CSK CUC CYP DDM DEM ECS EEK
    ESP FIM FRF GHC GRD GWP HRD HRK IEP ITL LTL LUF LVL MGF MRO MTL MZM NLG PTE ROL RUR SDD
    SIT SKK SLL SRG STD TMM TRL VEB VEF XEU XFO XFU YUM ZMK ZWD ZWL ZWN ZWR
    """.split()  # noqa: SIM905 - a block of codes reads better than a list
)

CRYPTO_CODES: frozenset[str] = frozenset(
    """
    BTC ETH BNB SOL XRP ADA DOGE TRX TON LTC DOT AVAX LINK MATIC POL
    USDT USDC FDUSD TUSD DAI BUSD USDP EURI AEUR
    """.split()  # noqa: SIM905
)
"""Crypto assets and stablecoins that market sources (e.g. Binance's EURUSDT) quote against.

Not ISO 4217: accepted so market data can sit beside fiat rates, and told apart by
`Currency.is_iso`.
"""

KNOWN_CODES: frozenset[str] = ACTIVE_CODES | LEGACY_CODES | CRYPTO_CODES
