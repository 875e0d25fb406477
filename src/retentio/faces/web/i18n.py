"""The public pages' words in English and Russian, and the choice between them: a
``?lang=en|ru`` parameter, else the Accept-Language header (RFC 9110 §12.5.4: the
supported language with the highest weight; ``q=0`` means "not this one"), else English."""

from __future__ import annotations

LANGUAGES = ("en", "ru")
DEFAULT = "en"

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title_survey": "Your feedback",
        "q_nps": "How likely are you to recommend us to a friend or colleague?",
        "q_csat": "How satisfied are you with how we handled your request?",
        "q_ces": "How easy was it to get your issue resolved?",
        "low_nps": "not at all likely", "high_nps": "extremely likely",
        "low_csat": "very dissatisfied", "high_csat": "very satisfied",
        "low_ces": "very difficult", "high_ces": "very easy",
        "scale": "Choose a score from {low} to {high}",
        "comment": "Anything you would like to add? (optional)",
        "send": "Send",
        "thanks_title": "Thank you",
        "thanks": "Thank you — your answer is recorded.",
        "your_score": "Your score",
        "your_comment": "Your comment",
        "answered_title": "Already answered",
        "answered": "Thank you — this survey has been answered already. The first answer stands.",
        "invalid_title": "This link is not valid",
        "invalid": "This link is not valid: it may have been altered or copied incompletely. Nothing was recorded.",
        "expired_title": "This link has expired",
        "expired": "This survey link has expired, so no answer can be recorded any more. Thank you all the same.",
        "error_title": "Please check your answer",
        "err_score": "The score (field score) must be a whole number from {low} to {high}. Nothing was recorded.",
        "err_comment": "The comment (field comment) cannot be recorded: it is at most {max} characters of plain "
                       "text. Nothing was recorded.",
        "title_unsub": "Unsubscribe",
        "unsub_ask": "Stop receiving our messages by {channel}?",
        "unsub_button": "Unsubscribe",
        "unsub_done_title": "You are unsubscribed",
        "unsub_done": "Done: you will no longer receive our marketing messages by {channel}.",
        "unsub_again": "You were already unsubscribed from our messages by {channel}; nothing has changed.",
        "unsub_invalid": "This unsubscribe link is not valid: it may have been altered or copied incompletely. "
                         "Nothing was changed.",
        "ch_email": "email", "ch_sms": "SMS",
        "not_found_title": "Page not found",
        "not_found": "There is no such page.",
        "server_error_title": "Something went wrong",
        "server_error": "Something went wrong on our side; please try again later.",
    },
    "ru": {
        "title_survey": "Ваш отзыв",
        "q_nps": "Насколько вероятно, что вы порекомендуете нас другу или коллеге?",
        "q_csat": "Насколько вы довольны тем, как мы решили ваш вопрос?",
        "q_ces": "Насколько легко было решить ваш вопрос?",
        "low_nps": "точно нет", "high_nps": "обязательно порекомендую",
        "low_csat": "совсем недоволен", "high_csat": "очень доволен",
        "low_ces": "очень сложно", "high_ces": "очень легко",
        "scale": "Выберите оценку от {low} до {high}",
        "comment": "Хотите что-нибудь добавить? (необязательно)",
        "send": "Отправить",
        "thanks_title": "Спасибо",
        "thanks": "Спасибо, ваш ответ записан.",
        "your_score": "Ваша оценка",
        "your_comment": "Ваш комментарий",
        "answered_title": "Ответ уже получен",
        "answered": "Спасибо, на этот опрос уже ответили. Остаётся в силе первый ответ.",
        "invalid_title": "Ссылка недействительна",
        "invalid": "Ссылка недействительна: возможно, её изменили или скопировали не полностью. Ничего не записано.",
        "expired_title": "Срок действия ссылки истёк",
        "expired": "Срок действия ссылки на опрос истёк, ответ больше нельзя записать. Всё равно спасибо.",
        "error_title": "Проверьте ответ",
        "err_score": "Оценка (поле score) должна быть целым числом от {low} до {high}. Ничего не записано.",
        "err_comment": "Комментарий (поле comment) нельзя записать: не больше {max} символов обычного текста. "
                       "Ничего не записано.",
        "title_unsub": "Отписка",
        "unsub_ask": "Больше не получать наши сообщения по каналу «{channel}»?",
        "unsub_button": "Отписаться",
        "unsub_done_title": "Вы отписались",
        "unsub_done": "Готово: вы больше не будете получать наши рекламные сообщения по каналу «{channel}».",
        "unsub_again": "Вы уже были отписаны от наших сообщений по каналу «{channel}», ничего не изменилось.",
        "unsub_invalid": "Ссылка для отписки недействительна: возможно, её изменили или скопировали не полностью. "
                         "Ничего не изменено.",
        "ch_email": "электронная почта", "ch_sms": "SMS",
        "not_found_title": "Страница не найдена",
        "not_found": "Такой страницы нет.",
        "server_error_title": "Что-то пошло не так",
        "server_error": "У нас что-то пошло не так; попробуйте, пожалуйста, позже.",
    },
}


def choose(query: str | None, accept_language: str | None) -> str:
    """The page's language: ``query`` when it is a supported one, else the best match of
    the Accept-Language header, else :data:`DEFAULT`."""
    if query and query.strip().lower() in LANGUAGES:
        return query.strip().lower()
    best, best_q = DEFAULT, 0.0
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if primary in LANGUAGES and weight > best_q and weight > 0 and position < 50:
            best, best_q = primary, weight
    return best


__all__ = ["DEFAULT", "LANGUAGES", "WORDS", "choose"]
