"""Words of the customers pages, English and Russian (same keys in both)."""

WORDS: dict[str, dict[str, str]] = {"en": {}, "ru": {}}
