"""Words of a comment: cleaned, tokenised, stop words dropped, stemmed (and a polarity).

* **Cleaning.** HTML tags and entities, URLs and e-mail addresses are removed (comments
  pasted from mail clients and web forms carry them; they are not what the customer
  said), ``ё`` is written ``е`` (Russian spells both), and only the first
  :data:`MAX_CHARS` characters are read, so a 10,000-character paste costs what a page does
  and cannot outweigh a thousand short comments.
* **Tokens.** Runs of Latin or of Cyrillic letters, lower-cased: digits, emoji and
  punctuation separate words and are never words themselves; one-letter tokens are dropped.
* **Stop words.** scikit-learn's English list and the Russian list below (written for
  Retentio: pronouns, prepositions, particles, auxiliaries and the filler words of
  reviews) — words that say nothing about a theme.
* **Stems.** The Snowball stemmers of the ``snowballstemmer`` package, ``english``
  (Porter 2) and ``russian`` (M. F. Porter, "Snowball: A language for stemming
  algorithms", 2001): "delays", "delayed" → "delay"; "доставка", "доставку" → "доставк".
  Each token is stemmed by the stemmer of its own alphabet, so a mixed comment keeps all
  its words. Stems are cached per distinct token (:class:`Analyzer`): a million comments
  hold some thousands of distinct words, so stemming costs almost nothing after the first.
"""

from __future__ import annotations

import html
import re

import snowballstemmer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

#: characters of a comment read for its words (the rest of a long paste is ignored)
MAX_CHARS = 2000
WORD = re.compile(r"[a-z]+|[а-я]+")
TAG = re.compile(r"<[^>]{0,500}>")
URL = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\w+")

RUSSIAN_STOP_WORDS = frozenset("""
а без более бы был была были было быть в вам вас весь во вот все всего всех вы где да даже для до его
ее ей ему если есть еще же за здесь и из или им их к как какой когда кто ли либо мне меня мной мы на над
надо наш не него нее нет ни них но ну о об однако он она они оно от очень по под после потом при про раз
с сам свой себя со так также такой там те тем то того тоже той только том ту ты у уже хотя чего чей чем
что чтобы чье чья эта эти это этот я вообще всегда опять снова просто вроде ещё пока уж бы было будет
буду будем будут всё сейчас тут этого этой этому этим им ими мой моя мое мои моих моего вами нам нас ним
ней нему тебе тебя вас ваш ваша ваше ваши какая какие каждый который которая которые которое можно
нужно стал стала стали стало когда-то где-то кто-то что-то сегодня вчера раньше теперь почти совсем
""".split())

#: words that turn the polarity of the next two words (kept before stop words are dropped)
NEGATORS = frozenset({"not", "no", "never", "nothing", "don", "didn", "doesn", "isn", "wasn", "aren", "weren",
                      "won", "cannot", "hardly", "не", "нет", "ни", "никогда", "ничего", "без"})

#: a small polarity lexicon (Retentio's own; words of retail and subscription reviews);
#: matched on stems, so every inflected form counts
POSITIVE = {
    "en": "good great excellent love loved lovely best fast quick quickly happy perfect recommend thanks thank "
          "friendly helpful nice convenient easy fresh awesome amazing wonderful pleased satisfied fine smooth "
          "reliable polite",
    "ru": "хороший хорошо отличный отлично люблю нравится спасибо быстро быстрый удобно удобный лучший "
          "рекомендую вежливый приятный свежий доволен довольна супер прекрасно замечательно понятно "
          "надежный",
}
NEGATIVE = {
    "en": "bad terrible awful horrible late slow slowly delay delayed expensive overpriced pricey broken crash "
          "crashes bug buggy error fails failed useless annoying rude poor worse worst problem issue "
          "disappointed damaged stale lost waiting wait ignored unhelpful freezes cold defective cheaply",
    "ru": "плохо плохой ужасно ужасный опоздание опоздал опаздывает задержка долго медленно медленный дорого "
          "дорогой дороже сломан сломался брак вылетает ошибка глючит глюки грубый хамство разочарован "
          "проблема недоволен недовольна зависает потеряли ждать ждал ждала игнорируют бесполезно "
          "испорчен некачественный",
}


def clean(text: object) -> str:
    """The text a comment's words are read from (see the module docstring)."""
    if not isinstance(text, str) or not text:
        return ""
    t = text[: MAX_CHARS * 2]  # entities and tags shrink: read a little more, cut after cleaning
    # the regular expressions only where they can match: most comments are plain text
    if "<" in t or "&" in t:
        t = TAG.sub(" ", html.unescape(t))
    if "/" in t or "@" in t or "www." in t:
        t = URL.sub(" ", t)
    return t[:MAX_CHARS].lower().replace("ё", "е")


class Analyzer:
    """Tokens → (kept word, its stem) and a polarity per comment, with every distinct
    token stemmed once (the cache lives as long as the analyzer)."""

    def __init__(self) -> None:
        self._stem = {"ru": snowballstemmer.stemmer("russian").stemWord,
                      "en": snowballstemmer.stemmer("english").stemWord}
        self._polar: dict[str, int] = {}
        for lang, sign, words in [(lg, 1, POSITIVE[lg]) for lg in POSITIVE] + [(lg, -1, NEGATIVE[lg])
                                                                              for lg in NEGATIVE]:
            for w in words.split():
                self._polar[self._stem[lang](w)] = sign
        #: token -> (stem or "" when the token is not a theme word, polarity, is a negator)
        self._cache: dict[str, tuple[str, int, bool]] = {}

    def _entry(self, token: str) -> tuple[str, int, bool]:
        lang = "en" if "a" <= token[0] <= "z" else "ru"
        stem = self._stem[lang](token)
        polarity = self._polar.get(stem, 0)
        stop = len(token) < 2 or token in ENGLISH_STOP_WORDS or token in RUSSIAN_STOP_WORDS or token in NEGATORS
        entry = ("" if stop else stem, polarity, token in NEGATORS)
        self._cache[token] = entry
        return entry

    def stem_of(self, token: str) -> str:
        """The stem of a token seen before ("" for a stop word)."""
        return (self._cache.get(token) or self._entry(token))[0]

    @property
    def distinct_tokens(self) -> int:
        return len(self._cache)

    def analyse(self, text: object) -> tuple[list[str], list[str], float]:
        """The theme words of ``text`` (surface forms), their stems, and its polarity in
        [-1, 1]: (positive − negative) / (positive + negative) lexicon words, a word within
        two tokens after a negator ("not good", "не быстро") counting with the opposite sign;
        0 when it has none."""
        words: list[str] = []
        stems: list[str] = []
        pos = neg = 0
        window = 0
        cache = self._cache
        for tok in WORD.findall(clean(text)):
            stem, polarity, negator = cache.get(tok) or self._entry(tok)
            if polarity:
                if (polarity > 0) != (window > 0):
                    pos += 1
                else:
                    neg += 1
            if negator:
                window = 2
            elif window:
                window -= 1
            if stem:
                words.append(tok)
                stems.append(stem)
        return words, stems, ((pos - neg) / (pos + neg) if pos + neg else 0.0)
