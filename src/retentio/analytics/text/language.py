"""The language of a comment: Russian or English, by its alphabet.

The rule (deterministic, no model): count the Cyrillic letters (U+0400–U+04FF) and the
Latin letters (A–Z, a–z) of the text; the comment is ``"ru"`` when the Cyrillic letters are
at least half of the two, ``"en"`` when fewer, and ``"und"`` (undetermined) when it has
neither — empty, emoji-only or digits-only comments. Why the alphabet and not a model: the
two languages Retentio themes are written in different scripts, so the script decides
almost every real comment, runs offline in microseconds and never changes between
versions. A mixed comment ("доставка ok, but slow") takes the language of the script most
of its letters are in; its words are still stemmed each by the stemmer of its own
alphabet (:mod:`retentio.analytics.text.tokens`), so nothing of it is lost.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

CYRILLIC = re.compile(r"[\u0400-\u04FF]")
LATIN = re.compile(r"[A-Za-z]")
LANGUAGES = ("ru", "en")
UNDETERMINED = "und"


def detect_language(text: object) -> str:
    """``"ru"``, ``"en"`` or ``"und"`` for one text (see the module's rule)."""
    if not isinstance(text, str):
        return UNDETERMINED
    cyr, lat = len(CYRILLIC.findall(text)), len(LATIN.findall(text))
    if cyr + lat == 0:
        return UNDETERMINED
    return "ru" if cyr >= lat else "en"


def detect_languages(texts: pd.Series) -> pd.Series:
    """The language of every text of ``texts`` (same index), vectorised over the unique texts."""
    s = texts.astype("object").where(texts.notna(), "")
    codes, uniques = pd.factorize(s)
    u = pd.Series(uniques, dtype="object").astype(str)
    cyr = u.str.count(CYRILLIC.pattern).to_numpy()
    lat = u.str.count(LATIN.pattern).to_numpy()
    lang = np.where(cyr + lat == 0, UNDETERMINED, np.where(cyr >= lat, "ru", "en"))
    if codes.size == 0:
        return pd.Series([], index=texts.index, dtype="object")
    return pd.Series(lang[codes], index=texts.index, dtype="object")
