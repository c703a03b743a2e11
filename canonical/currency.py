"""ISO 4217 currency codes and their minor units (the number of decimal places an amount may carry).

Why a table of our own: the minor units decide whether an amount is valid (1500.50 JPY is not),
and a library that guesses from locale data gets JPY/KRW/BHD wrong often enough. Source: the
ISO 4217 list (amendment 176+); funds codes and precious metals (XAU, XDR, ...) are left out on
purpose because a bank account is never held in them here.
"""

from __future__ import annotations

__all__ = ["MINOR_UNITS", "minor_units"]

_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD "
    "CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL "
    "GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR "
    "LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD "
    "PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC "
    "SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW "
    "ZWG"
)

#: ISO 4217 alphabetic code -> minor units (0 for JPY, 2 for EUR/USD, 3 for BHD/KWD, ...).
MINOR_UNITS: dict[str, int] = {
    **{c: 0 for c in _ZERO.split()},
    **{c: 2 for c in _TWO.split()},
    **{c: 3 for c in _THREE.split()},
    **{c: 4 for c in _FOUR.split()},
}


def minor_units(code: str) -> int:
    """The minor units of an ISO 4217 code; ``KeyError`` for a code we do not know."""
    return MINOR_UNITS[code]
