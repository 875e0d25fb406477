"""Themes of free-text comments: TF-IDF weighted stems factorised by NMF, per language.

**What.** Given comments (text, and optionally their survey kind, score and date), find
``K`` themes per language and say for each its key words, how many comments are about it,
their average score and NPS, their sentiment, how its share moves over the periods, and
three quotes.

**How, and why this way.**

1. Words: :mod:`retentio.analytics.text.tokens` (cleaning, stop words, Snowball stems
   cached per distinct token). Comments are analysed once per *distinct* text.
2. Language: :mod:`retentio.analytics.text.language` (the share of Cyrillic letters).
   Themes are found **per language**: Russian and English stems share nothing, so a joint
   model would only rediscover the alphabet; each theme says its language.
3. Weights: TF-IDF (Salton & Buckley, "Term-weighting approaches in automatic text
   retrieval", 1988) with sublinear term frequency ``1 + ln(tf)``, smoothed idf
   ``ln((1 + N) / (1 + df)) + 1`` and unit-length rows, so a long comment counts as much as
   a short one. Stems in fewer than :attr:`ThemeParams.min_df` comments are dropped (typos
   and names); at most :attr:`ThemeParams.max_features` stems are kept, the most frequent.
4. Themes: non-negative matrix factorisation X ≈ W·H (Lee & Seung, "Learning the parts of
   objects by non-negative matrix factorization", Nature 1999; "Algorithms for
   non-negative matrix factorization", NIPS 2001), scikit-learn's coordinate-descent
   solver with the deterministic ``nndsvda`` start and a fixed ``random_state``: the same
   comments give the same themes. Parts-based and non-negative, a theme is a short list of
   words that *add up* — which is what a reader can name. The model is fitted on the
   *distinct* texts, each once: a stock answer repeated ten thousand times ("Thanks!")
   would otherwise become a theme by its weight alone; the counts then come from every
   comment. Beyond :attr:`ThemeParams.fit_rows` distinct texts it is fitted on a
   fixed-seed sample of them and applied to all.
5. Membership: a comment belongs to every theme whose weight is at least
   :data:`MEMBERSHIP` (half) of its largest weight — "delivery was late and the courier
   was rude" is about delivery *and* support; its *primary* theme is the largest one.
   Comments with no theme word (empty, emoji-only, stop words only) belong to none and
   are counted as such.
6. Number of themes: :attr:`ThemeParams.themes` (default 6, the ``--themes`` option),
   lowered when a language has few comments (one theme per 10 comments with words at most)
   or few distinct stems — a fixed number a reader can take in, rather than a criterion
   that changes the list when a few comments arrive.

Per theme: **label** — its top stems (largest H weights) each shown as its most frequent
surface word; **count** (comments with the theme) and **share** (of all comments of the
selection, so shares may sum above 1 with multiple membership); **score_mean** — the
comments' scores put on 0–10 (NPS as is, CSAT and ticket satisfaction 1–5 → 0–10, CES
1–7 reversed, since low effort is good); **nps** over its NPS answers; **sentiment** — the
mean lexicon polarity (:meth:`~retentio.analytics.text.tokens.Analyzer.analyse`) of its
comments: negative below −0.15, positive above +0.15, else neutral (the lexicon, not the
score, so that cancel reasons and tickets without a score have one too); **trend** —
comments and share per period, and "rising"/"falling" when the least-squares line through
the share over the last 12 periods moves by at least :data:`TREND_PP` percentage points,
else "steady"; **examples** — the three distinct comments most purely about the theme.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from retentio.analytics.text.language import LANGUAGES, detect_languages
from retentio.analytics.text.tokens import Analyzer

#: a comment belongs to a theme whose NMF weight is ≥ this share of its largest weight
MEMBERSHIP = 0.5
#: sentiment label thresholds on the mean polarity in [-1, 1]
SENTIMENT_CUT = 0.15
#: a share change (percentage points, fitted over the last 12 periods) that makes a trend
TREND_PP = 2.0
#: scales of the scores, to put them on 0–10 (low, high, reversed)
SCALES: dict[str, tuple[float, float, bool]] = {"nps": (0, 10, False), "csat": (1, 5, False),
                                                "ticket": (1, 5, False), "ces": (1, 7, True)}
QUOTE_CHARS = 200


@dataclass(frozen=True)
class ThemeParams:
    #: themes per language (fewer when the comments are few)
    themes: int = 6
    #: a stem must occur in at least this many comments
    min_df: int = 2
    max_features: int = 20_000
    #: fit on at most this many comments (a fixed-seed sample), apply to all
    fit_rows: int = 200_000
    #: fewer comments with words than this in a language: no themes for it
    min_comments: int = 10
    period: str = "M"
    seed: int = 0
    max_iter: int = 400


@dataclass
class Themes:
    """The themes (one row each), each comment's themes, the per-period trend, and counts."""

    #: theme, language, label, words, count, share, score_mean, nps, nps_answers, polarity, sentiment,
    #: trend, trend_pp, examples
    themes: pd.DataFrame
    #: one row per input comment (input order): language, theme (primary, <NA> for none), themes (all), polarity
    comments: pd.DataFrame
    #: theme, period_start, comments, share
    trend: pd.DataFrame
    n_comments: int = 0
    #: comments with no theme word (empty, emoji-only, stop words only)
    n_without_words: int = 0
    languages: dict[str, int] = field(default_factory=dict)
    #: language -> why it has no themes
    notes: dict[str, str] = field(default_factory=dict)


def normalised_scores(kind: pd.Series, score: pd.Series) -> pd.Series:
    """Scores on 0–10 by their kind's scale (:data:`SCALES`); NaN for unknown kinds."""
    out = pd.Series(np.nan, index=score.index, dtype=float)
    s = pd.to_numeric(score, errors="coerce").astype(float)
    for k, (lo, hi, rev) in SCALES.items():
        m = (kind == k).to_numpy()
        v = (s[m] - lo) / (hi - lo) * 10
        out[m] = 10 - v if rev else v
    return out.clip(0, 10)


def _tfidf(counts: sp.csr_matrix, weight: np.ndarray, n_docs: int, params: ThemeParams) -> tuple[sp.csr_matrix,
                                                                                            np.ndarray]:
    """TF-IDF rows of the distinct texts (``counts``: stem counts per distinct text), with
    document frequencies counted over all comments (``weight`` = how many comments each
    distinct text stands for); returns the rows and the kept columns of ``counts``."""
    present = counts.copy()
    present.data[:] = 1.0
    df = np.asarray(present.T @ weight).ravel()
    keep = np.flatnonzero(df >= params.min_df)
    if keep.size > params.max_features:
        # the most frequent stems; ties by column (first seen), so the choice is deterministic
        order = np.lexsort((keep, -df[keep]))
        keep = np.sort(keep[order[: params.max_features]])
    x = counts[:, keep].astype(np.float64)
    df = df[keep]
    x.data = 1.0 + np.log(x.data)
    idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
    x = x @ sp.diags(idf)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    x = sp.diags(1.0 / norms) @ x
    return sp.csr_matrix(x), keep


def _trend_word(shares: np.ndarray) -> tuple[str, float]:
    y = shares[-12:] * 100
    if y.size < 3:
        return "steady", 0.0
    x = np.arange(y.size, dtype=float)
    slope = float(np.polyfit(x, y, 1)[0])
    change = slope * (y.size - 1)
    return ("rising" if change >= TREND_PP else "falling" if change <= -TREND_PP else "steady"), change


def _quote(text: str) -> str:
    t = " ".join(str(text).split())
    return t if len(t) <= QUOTE_CHARS else t[: QUOTE_CHARS - 1].rstrip() + "…"


def find_themes(comments: pd.DataFrame, params: ThemeParams = ThemeParams()) -> Themes:
    """Themes of ``comments`` (columns ``text``; optional ``kind``, ``score``, ``at``).

    See the module docstring for the method. Deterministic: the same rows in the same
    order give the same themes, numbers and quotes.
    """
    from sklearn.decomposition import NMF

    n = len(comments)
    text = comments["text"].astype("object") if "text" in comments else pd.Series([], dtype="object")
    text = text.where(text.notna(), "").reset_index(drop=True)
    kind = (comments["kind"].astype("object").reset_index(drop=True) if "kind" in comments
            else pd.Series([None] * n, dtype="object"))
    score10 = (normalised_scores(kind, comments["score"].reset_index(drop=True)) if "score" in comments
               else pd.Series(np.nan, index=range(n)))
    nps_score = pd.to_numeric(comments["score"], errors="coerce").reset_index(drop=True).where(kind == "nps") \
        if "score" in comments else pd.Series(np.nan, index=range(n))
    at = pd.to_datetime(comments["at"]).reset_index(drop=True) if "at" in comments else None

    codes, uniques = pd.factorize(text)
    multiplicity = np.bincount(codes, minlength=len(uniques)).astype(np.float64) if n else np.zeros(0)
    lang_u = detect_languages(pd.Series(uniques, dtype="object")).to_numpy()
    # one pass over the distinct texts: stem ids per text (a sparse count matrix), each
    # surface word's weight (for the labels) and the polarity; stems come from the
    # analyzer's per-token cache
    analyzer = Analyzer()
    vocab: dict[str, int] = {}
    surface_weight: dict[str, float] = {}
    indices: list[int] = []
    indptr = np.zeros(len(uniques) + 1, dtype=np.int64)
    polarity_u = np.zeros(len(uniques))
    for i, t in enumerate(uniques):
        toks, st, p = analyzer.analyse(t)
        if toks:
            mult = multiplicity[i]
            for tok in toks:
                surface_weight[tok] = surface_weight.get(tok, 0.0) + mult
            indices.extend([vocab.setdefault(x, len(vocab)) for x in st])
        indptr[i + 1] = len(indices)
        polarity_u[i] = p
    all_counts = sp.csr_matrix((np.ones(len(indices)), np.asarray(indices, dtype=np.int64), indptr),
                               shape=(len(uniques), len(vocab)))
    all_counts.sum_duplicates()
    del indices
    terms_all = np.array(list(vocab), dtype=object)
    has_words_u = np.diff(indptr) > 0

    primary = np.full(n, -1, dtype=np.int64)
    members: list[tuple[int, ...]] = [()] * n
    theme_rows: list[dict] = []
    trend_rows: list[pd.DataFrame] = []
    notes: dict[str, str] = {}
    first_pos = np.full(len(uniques), n, dtype=np.int64)
    if n:
        np.minimum.at(first_pos, codes, np.arange(n))
    period = at.dt.to_period(params.period).dt.start_time if at is not None else None
    per_period = period.value_counts().sort_index() if period is not None else None
    next_id = 0
    found: list[tuple[str, np.ndarray, np.ndarray, list[str], np.ndarray]] = []

    for lang in LANGUAGES:
        sel_u = np.flatnonzero((lang_u == lang) & has_words_u)
        n_lang = int(multiplicity[sel_u].sum())
        if n_lang < params.min_comments:
            notes[lang] = f"{n_lang} comments with words (themes need at least {params.min_comments})"
            continue
        x, kept = _tfidf(all_counts[sel_u], multiplicity[sel_u], n_lang, params)
        terms = [str(v) for v in terms_all[kept]]
        k = int(min(params.themes, max(1, n_lang // 10), max(1, x.shape[1] - 1) if x.shape[1] > 1 else 1))
        if x.shape[1] < 2:
            notes[lang] = "fewer than two words occur in two comments or more"
            continue
        # fit on the distinct texts, each once: a stock answer repeated ten thousand times
        # ("Thanks!") would otherwise become a theme by sheer weight, and themes are about
        # what is said; the counts come after, from every comment. Beyond fit_rows distinct
        # texts, on a fixed-seed sample of them.
        rows = np.arange(sel_u.size)
        if rows.size > params.fit_rows:
            rng = np.random.default_rng(params.seed)
            rows = np.sort(rng.choice(rows, size=params.fit_rows, replace=False))
        # NMF's start (nndsvda) needs k ≤ min(rows, terms) of what it is fitted on — the
        # distinct texts with a kept word, which may be few (category codes, stock answers)
        fit_x = x[rows]
        texts = int((fit_x.getnnz(axis=1) > 0).sum()) if hasattr(fit_x, "getnnz") else int((fit_x != 0).any(1).sum())
        k = min(k, texts, fit_x.shape[1])
        if k < 1:
            notes[lang] = "no comment has a word that occurs in two comments or more"
            continue
        model = NMF(n_components=k, init="nndsvda", solver="cd", beta_loss="frobenius",
                    random_state=params.seed, max_iter=params.max_iter, tol=1e-4)
        # with as many themes as distinct texts the fit is exact, and sklearn's error norm
        # takes the square root of a rounding residue just below 0: not a problem of ours
        with np.errstate(invalid="ignore"):
            model.fit(fit_x)
            w = model.transform(x)
        found.append((lang, sel_u, w, terms, model.components_))

    # the most frequent surface word of each stem (ties: alphabetical), for the labels
    best: dict[str, tuple[float, str]] = {}
    for tok, c in surface_weight.items():
        stem = analyzer.stem_of(tok)
        cur = best.get(stem)
        if cur is None or c > cur[0] or (c == cur[0] and tok < cur[1]):
            best[stem] = (c, tok)

    def surface(stem: str) -> str:
        return best[stem][1] if stem in best else stem

    raw_themes: list[dict] = []
    member_u: dict[int, np.ndarray] = {}
    for lang, sel_u, w, terms, h in found:
        wmax = w.max(axis=1)
        is_member = (w >= MEMBERSHIP * wmax[:, None]) & (wmax[:, None] > 0)
        prim = np.where(wmax > 0, w.argmax(axis=1), -1)
        for t in range(w.shape[1]):
            top = [int(j) for j in np.argsort(-h[t], kind="stable")[:4] if h[t, j] > 0]
            words: list[str] = []
            for j in top:
                s = surface(terms[j])
                if s not in words:
                    words.append(s)
            in_t = is_member[:, t]
            purity = np.where(in_t, w[:, t] / np.maximum(w.sum(axis=1), 1e-12), 0)
            raw_themes.append({"lang": lang, "local": t, "words": words[:3], "sel_u": sel_u,
                               "in_t": in_t, "prim": prim == t, "purity": purity,
                               "count": int(multiplicity[sel_u][in_t].sum())})
    # numbering: by language (ru, en), then most comments first, then label
    raw_themes.sort(key=lambda r: (LANGUAGES.index(r["lang"]), -r["count"], ", ".join(r["words"])))
    u_theme_primary = np.full(len(uniques), -1, dtype=np.int64)
    u_members: list[list[int]] = [[] for _ in range(len(uniques))]
    for r in raw_themes:
        next_id += 1
        r["id"] = next_id
        sel_u = r["sel_u"]
        u_theme_primary[sel_u[r["prim"]]] = next_id
        for i in sel_u[r["in_t"]]:
            u_members[i].append(next_id)
        member_u[next_id] = sel_u[r["in_t"]]

    if n:
        primary = u_theme_primary[codes]
        members = [tuple(sorted(u_members[c])) for c in codes]
    comment_frame = pd.DataFrame({
        "language": lang_u[codes] if n else np.array([], dtype=object),
        "theme": pd.array(np.where(primary > 0, primary, 0), dtype="Int64"),
        "themes": members,
        "polarity": polarity_u[codes] if n else np.zeros(0),
    })
    comment_frame.loc[primary <= 0, "theme"] = pd.NA

    for r in raw_themes:
        tid = r["id"]
        in_rows = np.isin(codes, member_u[tid])
        cnt = int(in_rows.sum())
        sc = score10[in_rows].dropna()
        ns = nps_score[in_rows].dropna()
        nps = float(100 * ((ns >= 9).mean() - (ns <= 6).mean())) if len(ns) else math.nan
        pol = float(polarity_u[codes[in_rows]].mean()) if cnt else 0.0
        sentiment = "negative" if pol < -SENTIMENT_CUT else "positive" if pol > SENTIMENT_CUT else "neutral"
        # quotes: the distinct texts most purely about the theme, earliest first on ties
        sel_u, pur = r["sel_u"], r["purity"]
        cand = np.flatnonzero(r["in_t"])
        order = np.lexsort((first_pos[sel_u[cand]], -pur[cand]))
        examples: list[str] = []
        for j in cand[order]:
            q = _quote(uniques[sel_u[j]])
            if q and q not in examples:
                examples.append(q)
            if len(examples) == 3:
                break
        trend_word, change = "steady", 0.0
        if period is not None and per_period is not None and cnt:
            by = period[in_rows].value_counts().reindex(per_period.index, fill_value=0)
            shares = (by / per_period).to_numpy(dtype=float)
            trend_word, change = _trend_word(shares)
            trend_rows.append(pd.DataFrame({"theme": tid, "period_start": per_period.index,
                                            "comments": by.to_numpy(), "share": shares}))
        theme_rows.append({
            "theme": tid, "language": r["lang"], "label": ", ".join(r["words"]), "words": r["words"],
            "count": cnt, "share": cnt / n if n else 0.0,
            "score_mean": float(sc.mean()) if len(sc) else math.nan,
            "nps": nps, "nps_answers": len(ns), "polarity": pol, "sentiment": sentiment,
            "trend": trend_word, "trend_pp": change, "examples": examples,
        })
    cols = ["theme", "language", "label", "words", "count", "share", "score_mean", "nps", "nps_answers",
            "polarity", "sentiment", "trend", "trend_pp", "examples"]
    trend = (pd.concat(trend_rows, ignore_index=True) if trend_rows
             else pd.DataFrame(columns=["theme", "period_start", "comments", "share"]))
    langs = pd.Series(lang_u[codes] if n else [], dtype="object").value_counts()
    return Themes(
        themes=pd.DataFrame(theme_rows, columns=cols),
        comments=comment_frame,
        trend=trend,
        n_comments=n,
        n_without_words=int((~has_words_u[codes]).sum()) if n else 0,
        languages={str(k): int(v) for k, v in langs.items()},
        notes=notes,
    )
