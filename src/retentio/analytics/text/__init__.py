"""Free text of customers (survey comments, ticket texts, cancel reasons), offline.

* :mod:`.language` — Russian or English per comment, from the share of Cyrillic letters.
* :mod:`.tokens` — tokens, stop words and Snowball stems (Porter 2001), cached per token,
  and a small lexicon-based polarity in both languages.
* :mod:`.themes` — themes by TF-IDF (Salton & Buckley 1988) and NMF (Lee & Seung 1999, 2001).

Nothing is downloaded at run time: the stemmers are the pure-Python ``snowballstemmer``
package and the word lists are in the code. Pure: frames in, frames out.
"""

from __future__ import annotations

from retentio.analytics.text.language import detect_language, detect_languages
from retentio.analytics.text.themes import ThemeParams, Themes, find_themes

__all__ = ["ThemeParams", "Themes", "detect_language", "detect_languages", "find_themes"]
