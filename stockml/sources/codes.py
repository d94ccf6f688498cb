"""A-share security codes: the 6-digit exchange code <-> the lake's ``ts_code`` (``000001.SZ``), and Yahoo
tickers <-> ``ts_code``, each in one function (no ad-hoc padding or suffix logic elsewhere).

Exchange by leading digits (the exchanges' stock code segments):

- Shanghai ``.SH``: ``6`` (main board 600/601/603/605, STAR 688/689) and ``9`` (B shares 900), except ``92``
- Beijing ``.BJ``: ``92`` (the BSE's own segment since 2024, 920xxx), ``4`` and ``8`` (43/83/87/88, the
  codes carried over from the NEEQ)
- Shenzhen ``.SZ``: ``0`` (main board 000/001/002/003), ``2`` (B shares 200), ``3`` (ChiNext 300/301)

Funds, bonds and indices (``1``, ``5``, ``7``, ...) are not stocks and are refused, so a typo fails loudly
instead of fetching something else.
"""

from __future__ import annotations

import re

EXCHANGES = ("SH", "SZ", "BJ")
_TS_CODE = re.compile(r"^(\d{6})\.(SH|SZ|BJ)$")
# Yahoo spells Shanghai "SS"; Shenzhen and Beijing keep the lake's suffix.
_YAHOO_SUFFIX = {"SH": "SS", "SZ": "SZ", "BJ": "BJ"}
_FROM_YAHOO = {v: k for k, v in _YAHOO_SUFFIX.items()}
_YAHOO_A_SHARE = re.compile(r"^(\d{6})\.(SS|SZ|BJ)$")


def exchange_of(code: str) -> str:
    """``SH``, ``SZ`` or ``BJ`` for a 6-digit stock code; ``ValueError`` for anything else."""
    if not re.fullmatch(r"\d{6}", code):
        raise ValueError(f"{code!r} is not a 6-digit A-share code")
    if code.startswith("92") or code[0] in "48":
        return "BJ"
    if code[0] in "69":
        return "SH"
    if code[0] in "023":
        return "SZ"
    raise ValueError(f"{code!r} is not an A-share stock code (leading {code[0]}: a fund, bond or index?)")


def to_ts_code(code: str | int) -> str:
    """A stock code as a provider gives it (``"000001"``, ``1`` read as a number, or already ``000001.SZ``)
    -> the lake's ``ts_code``. The one place where a code is zero-padded: only a number is (a string of
    five digits is a typo, not a code)."""
    text = f"{code:06d}" if isinstance(code, int) else str(code).strip().upper()
    if _TS_CODE.fullmatch(text):
        digits, suffix = text.split(".")
        if exchange_of(digits) != suffix:
            raise ValueError(f"{text!r}: code {digits} trades on {exchange_of(digits)}, not {suffix}")
        return text
    return f"{text}.{exchange_of(text)}"


def to_code6(ts_code: str) -> str:
    """``000001.SZ`` (or a bare ``000001``) -> ``000001``, the symbol akshare's functions take."""
    return to_ts_code(ts_code).split(".")[0]


def ts_code_to_yahoo(ts_code: str) -> str:
    """An A-share ``ts_code`` -> its Yahoo ticker (``600519.SH`` -> ``600519.SS``); any other ticker
    (``AAPL``, ``^GSPC``, ``0700.HK``) is already a Yahoo ticker and comes back unchanged."""
    match = _TS_CODE.fullmatch(ts_code.strip().upper())
    if match is None:
        return ts_code.strip()
    return f"{match.group(1)}.{_YAHOO_SUFFIX[match.group(2)]}"


def yahoo_to_ts_code(ticker: str) -> str:
    """A Yahoo ticker -> the lake's ``ts_code``: A-shares take the lake's code (``600519.SS`` ->
    ``600519.SH``) so that both sources write the same rows; every other ticker is kept as Yahoo spells it."""
    match = _YAHOO_A_SHARE.fullmatch(ticker.strip().upper())
    if match is None:
        return ticker.strip()
    return f"{match.group(1)}.{_FROM_YAHOO[match.group(2)]}"
