"""Numbers as people write them: decimal separators, thousands separators, currencies.

A number in a file is read exactly as written or not at all. The loader turns the text
into a number in SQL (so it runs inside DuckDB on every row of a large file), with the
rules of this module:

* The **decimal separator** is ``.`` or ``,``. The other one may group thousands, and so
  may a space, a no-break space (U+00A0), a narrow no-break space (U+202F) or an
  apostrophe (``'``, ``’`` — Swiss style). Grouping must be in threes after a first group
  of one to three digits (``1 234 567,50``; ``1,234.50``; ``1'234.50``), so ``12,50`` can
  only be twelve and a half, and ``1,234,567`` only a million and more.
* **Detection** looks at every value of every numeric column of the file. A value is
  *evidence* for a separator when it is a valid number under that separator only
  (``12,50`` → comma; ``1,234.50`` → point); a value that is valid under both with
  different meanings (``1,200``: 1200 or 1.2) is *ambiguous*; integers prove nothing.
  The file's separator is the one the evidence names. When nothing names one and some
  value is ambiguous, the file is refused and the user asked for ``--decimal``: a guess
  would multiply or divide amounts by a thousand. When the evidence names both (a
  file that mixes ``12,50`` and ``12.50``), each unambiguous value is read as written
  and any ambiguous one refuses the file.
* A **currency** written with money (``1 234,50 ₽``, ``$1,234.50``, ``1 234,50 руб.``,
  ``EUR 12.50``) is accepted when it is the workspace's currency; any other currency
  is an invalid value, because converting it would need an exchange rate nobody gave.

Locale conventions follow the Unicode CLDR number symbols (decimal and group symbols
per locale, https://cldr.unicode.org/translation/number-currency-formats), which is
where the grouping characters above come from.
"""

from __future__ import annotations

from dataclasses import dataclass

#: characters that may group thousands besides the non-decimal one of . and ,
_SPACES = " \\x{00A0}\\x{202F}'’"
_MINUS = "−"  # U+2212, as typeset documents and some exports write it

#: currency signs and words -> ISO 4217 codes they may stand for
CURRENCY_SIGNS: dict[str, tuple[str, ...]] = {
    "₽": ("RUB",), "руб": ("RUB",), "руб.": ("RUB",), "р": ("RUB",), "р.": ("RUB",), "рублей": ("RUB",),
    "$": ("USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN", "ARS", "CLP", "COP", "TWD"),
    "us$": ("USD",), "€": ("EUR",), "£": ("GBP",), "¥": ("JPY", "CNY"), "₴": ("UAH",), "грн": ("UAH",),
    "грн.": ("UAH",), "₸": ("KZT",), "тг": ("KZT",), "₺": ("TRY",), "₹": ("INR",), "zł": ("PLN",),
    "br": ("BYN",), "₾": ("GEL",), "֏": ("AMD",), "₼": ("AZN",), "сум": ("UZS",), "kč": ("CZK",),
    "kr": ("SEK", "NOK", "DKK", "ISK"), "chf": ("CHF",), "fr.": ("CHF",), "₩": ("KRW",), "₪": ("ILS",),
    "r$": ("BRL",), "a$": ("AUD",), "c$": ("CAD",),
}


def currency_tokens(currency: str) -> list[str]:
    """The lower-case currency marks accepted next to an amount in ``currency``."""
    code = currency.upper()
    return sorted({code.lower()} | {sign for sign, codes in CURRENCY_SIGNS.items() if code in codes})


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: one run of characters that are not part of a number: a currency mark
_MARK = f"[^\\d\\s.,+\\-{_MINUS}'’]+"
_SIGN = f"[+\\-{_MINUS}]"
_SUFFIX_RE = "\\s*(" + _MARK + "\\.?)$"
_PREFIX_RE = "^" + _SIGN + "?\\s*(" + _MARK + ")"
_STRIP_SUFFIX_RE = "\\s*" + _MARK + "\\.?$"
#: plain numbers (no grouping, no marks) per decimal separator: the fast path
_PLAIN = {".": "[+-]?\\d+(\\.\\d+)?", ",": "[+-]?\\d+(,\\d+)?"}
#: text with nothing but digits, separators, signs and spaces: no currency mark
_UNMARKED = "[+\\-\\d.,\\s\\x{00A0}\\x{202F}'’" + _MINUS + "]*"
_STRIP_PREFIX_RE = "^(" + _SIGN + "?)\\s*" + _MARK + "\\s*"


def number_pattern(decimal: str) -> str:
    """RE2 pattern of a number (sign, digits grouped in threes or not, decimal part,
    exponent) under the decimal separator ``decimal``."""
    group = "[" + ("," if decimal == "." else ".") + _SPACES + "]"
    dec = "\\." if decimal == "." else ","
    return f"^[+-]?(?:[1-9]\\d{{0,2}}(?:{group}\\d{{3}})+|\\d+)(?:{dec}\\d+)?(?:[eE][+-]?\\d+)?$"


@dataclass(frozen=True)
class NumberSQL:
    """SQL snippets over one text column (``raw`` is already trimmed, NULL when empty)."""

    raw: str

    @property
    def suffix(self) -> str:
        """The currency mark after the number (``₽``, ``руб.``, ``USD``), or ''."""
        return f"regexp_extract({self.raw}, {_lit(_SUFFIX_RE)}, 1)"

    @property
    def prefix(self) -> str:
        """The currency mark before the number (``$``, ``EUR``), or ''."""
        return f"regexp_extract({self.raw}, {_lit(_PREFIX_RE)}, 1)"

    @property
    def core(self) -> str:
        """The number without currency marks, with a plain minus and no space after the sign."""
        s = f"regexp_replace({self.raw}, {_lit(_STRIP_SUFFIX_RE)}, '')"
        s = f"regexp_replace({s}, {_lit(_STRIP_PREFIX_RE)}, '\\1')"
        return f"regexp_replace(replace({s}, '{_MINUS}', '-'), '^([+-])\\s+', '\\1')"

    def plain(self, decimal: str) -> str:
        """True when the text without currency marks is a valid number under ``decimal``."""
        return f"regexp_matches({self.core}, {_lit(number_pattern(decimal))})"

    def _general(self, decimal: str, sql_type: str) -> str:
        other = "," if decimal == "." else "."
        digits = f"regexp_replace({self.core}, {_lit('[' + other + _SPACES + ']')}, '', 'g')"
        if decimal == ",":
            digits = f"replace({digits}, ',', '.')"
        return f"(CASE WHEN {self.plain(decimal)} THEN TRY_CAST({digits} AS {sql_type}) END)"

    def value(self, decimal: str, sql_type: str) -> str:
        """The number under ``decimal``, cast to ``sql_type`` (NULL when not valid).

        Most values are plain (``-123.45``): one cheap match reads them; only the rest
        go through currency marks and grouping (DuckDB evaluates a CASE branch only for
        the rows that reach it)."""
        fast = _lit(_PLAIN[decimal])
        text = self.raw if decimal == "." else f"replace({self.raw}, ',', '.')"
        return (f"(CASE WHEN regexp_full_match({self.raw}, {fast}) THEN TRY_CAST({text} AS {sql_type}) "
                f"ELSE {self._general(decimal, sql_type)} END)")

    def value_either(self, sql_type: str) -> str:
        """For files that mix both separators: the value under whichever separator the
        text is valid for; NULL when it is valid under both with different meanings."""
        d, c = self.value(".", sql_type), self.value(",", sql_type)
        return f"(CASE WHEN {c} IS NULL THEN {d} WHEN {d} IS NULL THEN {c} WHEN {d} = {c} THEN {d} END)"

    def parsed(self, decimal: str, sql_type: str) -> str:
        """The value under the file's verdict: ".", "," or "mixed"."""
        return self.value_either(sql_type) if decimal == "mixed" else self.value(decimal, sql_type)

    @property
    def _unmarked(self) -> str:
        return f"regexp_full_match({self.raw}, {_lit(_UNMARKED)})"

    def currency_ok(self, tokens: list[str]) -> str:
        """True when no currency mark is written, or the marks name the workspace's currency."""
        listed = ", ".join(_lit(t) for t in tokens)
        return (f"(CASE WHEN {self._unmarked} THEN TRUE ELSE "
                f"(lower({self.prefix}) = '' OR lower({self.prefix}) IN ({listed})) "
                f"AND (lower({self.suffix}) = '' OR lower({self.suffix}) IN ({listed})) END)")

    @property
    def has_currency(self) -> str:
        return f"(CASE WHEN {self._unmarked} THEN FALSE ELSE ({self.prefix} <> '' OR {self.suffix} <> '') END)"

    def evidence(self) -> str:
        """SQL classifying one value: 'p' (only a decimal point reads it), 'c' (only a
        decimal comma), 'a' (both, with different values), NULL (no evidence)."""
        d, c = self._general(".", "DOUBLE"), self._general(",", "DOUBLE")
        general = (f"(CASE WHEN {d} IS NOT NULL AND {c} IS NULL THEN 'p' WHEN {c} IS NOT NULL AND {d} IS NULL "
                   f"THEN 'c' WHEN {d} <> {c} THEN 'a' END)")
        r = self.raw
        return (f"(CASE WHEN regexp_full_match({r}, '[+-]?\\d*') THEN NULL "
                f"WHEN regexp_full_match({r}, '[+-]?\\d+\\.\\d+') THEN "
                f"(CASE WHEN regexp_full_match({r}, '[+-]?[1-9]\\d{{0,2}}\\.\\d{{3}}') THEN 'a' ELSE 'p' END) "
                f"WHEN regexp_full_match({r}, '[+-]?\\d+,\\d+') THEN "
                f"(CASE WHEN regexp_full_match({r}, '[+-]?[1-9]\\d{{0,2}},\\d{{3}}') THEN 'a' ELSE 'c' END) "
                f"ELSE {general} END)")


@dataclass(frozen=True)
class DecimalVerdict:
    """What the values of a file say about its decimal separator."""

    #: "." or ",", "mixed" (each value read as written), or None (ambiguous: refuse)
    decimal: str | None
    point_values: int
    comma_values: int
    ambiguous_values: int
    #: up to three (line, column, value) examples of ambiguous values
    examples: tuple[tuple[int, str, str], ...] = ()
