"""Per-customer bitmasks over periods, and their column sums.

Counting customers period by period ("active at boundary k", "bought in period k", "in
cohort c and active at offset j") would join every customer with every period. Instead
each customer's periods are folded into BIGINT words with ``BIT_OR`` in the same pass
that reads their orders, and the per-period counts are column sums of single bits —
one scan of the (much smaller) per-customer table. The same expressions compile to
DuckDB and Spark SQL through Ibis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
import pandas as pd

if TYPE_CHECKING:
    import ibis.expr.types as ir

#: bits per word: 62 keeps every shifted value positive in a signed BIGINT
WORD = 62

#: at most this many sums per query (daily periods over years would otherwise make one
#: statement with thousands of columns)
SUMS_PER_QUERY = 400


def n_words(n_bits: int) -> int:
    return (n_bits + WORD - 1) // WORD


def one() -> ir.Value:
    # typed: Spark reads a bare 1 as INT and shifts it modulo 32
    return ibis.literal(1).cast("int64")


def bit_range(lo: ir.Value, hi: ir.Value, word: int) -> ir.Value:
    """The bits lo..hi (inclusive) that fall in word ``word``, as a BIGINT."""
    base = word * WORD
    a = ibis.greatest(lo, base) - base
    b = ibis.least(hi, base + WORD - 1) - base
    return ibis.ifelse(a <= b, (one() << (b + 1)) - (one() << a), 0)


def single_bit(j: ir.Value, word: int, n_bits: int) -> ir.Value:
    """Bit j set in word ``word`` when 0 ≤ j < n_bits falls in it, else 0."""
    return ibis.ifelse((j >= 0) & (j < n_bits) & (j // WORD == word), one() << (j % WORD), 0)


def bit(words: list[ir.Value], j: ir.Value) -> ir.Value:
    """Bit j (an expression) of a multi-word mask, as 0/1."""
    if len(words) == 1:
        return (words[0] >> j) & 1
    return ibis.cases(*[((j // WORD) == w, (m >> (j % WORD)) & 1) for w, m in enumerate(words)], else_=0)


def static_bit(t: ir.Table, prefix: str, j: int) -> ir.Value:
    """Bit j (a Python int) of the mask in columns ``prefix0, prefix1, …`` as 0/1."""
    return (t[f"{prefix}{j // WORD}"] >> (j % WORD)) & 1


def column_sums(t: ir.Table, sums: dict[str, ir.Value], keys: list[str]) -> pd.DataFrame:
    """``t`` grouped by ``keys`` with the named sums, in chunks of :data:`SUMS_PER_QUERY`
    columns; one row per group."""
    names = list(sums)
    out = None
    for lo in range(0, len(names), SUMS_PER_QUERY):
        chunk = {n: sums[n] for n in names[lo:lo + SUMS_PER_QUERY]}
        part = (t.group_by(keys).agg(**chunk) if keys else t.aggregate(**chunk)).to_pandas()
        out = part if out is None else out.merge(part, on=keys, how="outer") if keys else pd.concat(
            [out, part], axis=1)
    return out


__all__ = ["WORD", "bit", "bit_range", "column_sums", "n_words", "one", "single_bit", "static_bit"]
