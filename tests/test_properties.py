"""Property-based tests (Hypothesis): the formulas and the period bitmasks hold for every
input, not only for the worked examples."""

from __future__ import annotations

import ibis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retentio.analytics import bitmasks
from retentio.analytics.formulas import crr, csat, nps, nps_from_scores

SCORES = st.lists(st.integers(0, 10), min_size=1, max_size=200)


@given(SCORES)
def test_nps_is_the_share_of_promoters_minus_detractors(scores):
    promoters = sum(s >= 9 for s in scores)
    detractors = sum(s <= 6 for s in scores)
    value = nps_from_scores(scores)
    assert -100 <= value <= 100
    assert value == pytest.approx(100 * (promoters - detractors) / len(scores))
    assert nps_from_scores(list(reversed(scores))) == pytest.approx(value)  # order does not matter


@given(SCORES, st.integers(1, 50))
def test_passives_pull_nps_towards_zero(scores, passives):
    before = nps_from_scores(scores)
    after = nps_from_scores(scores + [7] * passives)
    assert abs(after) <= abs(before) + 1e-9
    assert after * before >= 0  # never flips the sign


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(1, 10_000))
def test_crr_counts_back_to_the_customers_at_the_end(new, end, start):
    assert crr(start, new, end) * start + new == pytest.approx(end)


@given(st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000))
def test_nps_from_counts_matches_nps_from_scores(p, q, d):
    if p + q + d == 0:
        return
    assert nps(p, q, d) == pytest.approx(nps_from_scores([10] * p + [7] * q + [0] * d))


@given(st.lists(st.integers(1, 5), min_size=1, max_size=100))
def test_csat_is_a_share(scores):
    assert csat(scores) == pytest.approx(sum(s >= 4 for s in scores) / len(scores))


N_BITS = 3 * bitmasks.WORD + 5  # several words, the last one partly used


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, N_BITS + 5), st.integers(-5, N_BITS + 5), st.integers(0, N_BITS - 1)),
                min_size=1, max_size=40))
def test_bit_ranges_and_bits_agree_with_python(rows):
    """A range lo..hi written word by word with bit_range reads back, through bit(), as
    exactly the bits lo <= j <= hi inside the mask (the metrics' per-customer masks)."""
    t = ibis.memtable({"lo": [r[0] for r in rows], "hi": [r[1] for r in rows], "j": [r[2] for r in rows]})
    words = [bitmasks.bit_range(t.lo, t.hi, w) for w in range(bitmasks.n_words(N_BITS))]
    single = [bitmasks.single_bit(t.j, w, N_BITS) for w in range(bitmasks.n_words(N_BITS))]
    expr = t.select(in_range=bitmasks.bit(words, t.j), single=bitmasks.bit(single, t.j))
    got = ibis.duckdb.connect().execute(expr)
    for (lo, hi, j), in_range, one in zip(rows, got.in_range, got.single):
        assert int(in_range) == int(max(lo, 0) <= j <= min(hi, N_BITS - 1))
        assert int(one) == 1
