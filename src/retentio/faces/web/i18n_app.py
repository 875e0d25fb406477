"""The signed-in pages' words in English and Russian, and the navigation.

``APP_WORDS[lang]`` holds the layout's words (here) merged with each area's
(:mod:`retentio.faces.web.words`); a key defined twice, or present in one language and
missing in the other, fails at import — so a page can never show a missing word."""

from __future__ import annotations

import importlib

#: (path, word key, permission needed to see the link), in menu order
NAV: list[tuple[str, str, str | None]] = [
    ("/", "nav_overview", "analytics"),
    ("/customers", "nav_customers", "customers"),
    ("/at-risk", "nav_at_risk", "analytics"),
    ("/campaigns", "nav_campaigns", "campaigns.read"),
    ("/loyalty", "nav_loyalty", "loyalty.read"),
    ("/feedback", "nav_feedback", "feedback.read"),
    ("/data", "nav_data", "data.read"),
    ("/admin", "nav_admin", "admin"),
]

_CORE: dict[str, dict[str, str]] = {
    "en": {
        "app": "Retentio",
        "nav_overview": "Overview", "nav_customers": "Customers", "nav_at_risk": "At risk",
        "nav_campaigns": "Campaigns", "nav_loyalty": "Loyalty", "nav_feedback": "Feedback", "nav_data": "Data",
        "nav_admin": "Admin",
        "signin_title": "Sign in",
        "email": "Email",
        "password": "Password",
        "signin": "Sign in",
        "signout": "Sign out",
        "signin_wrong": "Wrong email or password.",
        "signin_throttled": "Too many failed sign-ins. Try again in {minutes} min.",
        "signin_csrf": "The sign-in form expired; please try again.",
        "signed_in_as": "Signed in as {email} ({role})",
        "language": "Language",
        "error": "Something is wrong",
        "error_403": "Not allowed",
        "error_404": "Not found",
        "error_422": "Please check the input",
        "error_429": "Too many attempts",
        "error_503": "Busy — try again in a moment",
        "error_500": "Something went wrong",
    },
    "ru": {
        "app": "Retentio",
        "nav_overview": "Обзор", "nav_customers": "Клиенты", "nav_at_risk": "Под угрозой ухода",
        "nav_campaigns": "Кампании", "nav_loyalty": "Лояльность", "nav_feedback": "Обратная связь",
        "nav_data": "Данные", "nav_admin": "Администрирование",
        "signin_title": "Вход",
        "email": "Эл. почта",
        "password": "Пароль",
        "signin": "Войти",
        "signout": "Выйти",
        "signin_wrong": "Неверная почта или пароль.",
        "signin_throttled": "Слишком много неудачных попыток входа. Попробуйте через {minutes} мин.",
        "signin_csrf": "Форма входа устарела; попробуйте ещё раз.",
        "signed_in_as": "Вы вошли как {email} ({role})",
        "language": "Язык",
        "error": "Что-то не так",
        "error_403": "Нет доступа",
        "error_404": "Не найдено",
        "error_422": "Проверьте введённые данные",
        "error_429": "Слишком много попыток",
        "error_503": "Занято — попробуйте чуть позже",
        "error_500": "Что-то пошло не так",
    },
}

AREAS = ("customers", "data", "campaigns", "loyalty", "feedback", "admin")


def _merged() -> dict[str, dict[str, str]]:
    merged = {lang: dict(words) for lang, words in _CORE.items()}
    for area in AREAS:
        words = importlib.import_module(f"retentio.faces.web.words.{area}").WORDS
        if words["en"].keys() != words["ru"].keys():
            raise AssertionError(f"words.{area}: keys differ between en and ru: "
                                 f"{sorted(words['en'].keys() ^ words['ru'].keys())}")
        for lang in merged:
            twice = merged[lang].keys() & words[lang].keys()
            if twice:
                raise AssertionError(f"words.{area}: keys defined twice: {sorted(twice)}")
            merged[lang].update(words[lang])
    return merged


APP_WORDS = _merged()

__all__ = ["APP_WORDS", "NAV"]
