"""The ready-to-run playbook files ``retentio playbook new KIND NAME`` writes: one per
kind, commented, in English or Russian, each runnable on the demo data as written.

The plays and their default numbers follow the source articles (``docs/campaigns.md``):
win back after twice the customer's usual gap, a birthday code valid for two weeks, a
cart reminder after a day, a renewal offer a week before the end, onboarding on days
1, 7 and 30, and so on. Every template uses only the variables the message context
provides (``retentio.actions.context``), so a fresh file always renders.
"""

from __future__ import annotations

from retentio.actions.playbooks import KINDS, SURVEY_PLAYBOOKS
from retentio.data.errors import InvalidParameter

_TRIGGERS = {
    "winback": '''# no completed order for longer than the customer's own usual gap x gap_multiplier
# (at least min_days); or a fixed number: days = 90. "No visit for 5 days":
# days = 5 and no_event = "login"
days = "auto"
gap_multiplier = 2.0
min_days = 45''',
    "churn_risk": '''# the churn model's bands (retentio churn train; scores are read from the latest snapshot)
bands = ["high"]''',
    "birthday": '''# days before the birthday
days_before = 7''',
    "abandoned_cart": '''# a cart_add event with no order within this many hours
hours = 24''',
    "wishlist": '''# a wishlist_add event with no order within this many hours
hours = 72''',
    "viewed_item": '''# a view_item event with no order within this many hours
hours = 48''',
    "renewal": '''# days before a subscription ends (or, for an open one, renews: every billing_months
# after it started)
days_before = 7
billing_months = 1''',
    "replenishment": '''# days before a consumable is due: the last order of the item + the customer's usual
# interval for it (the item's typical interval across customers when they bought it once)
days_before = 3
categories = ["consumables"]''',
    "onboarding": '''# days after the first order at which each step is sent
steps = [1, 7, 30]''',
    "early_access": '''# one send to the best customers; change the occurrence name for the next one
occurrence = "early-access-1"''',
    "thank_you": '''# orders completed in the last within_days days
within_days = 2''',
    "detractor_followup": '''# NPS answers at most nps_max or CSAT at most csat_max, in the last within_days days
nps_max = 6
csat_max = 2
within_days = 14''',
    "nps_survey": '''# days_after days after the customer's after_order-th completed order (once the product
# has been used); every_months also asks every buyer once per that many months.
# How often one person may be asked: [survey] min_days_between.
after_order = 2
days_after = 14
every_months = 6
within_days = 3''',
    "csat_after_ticket": '''# days after a support ticket is resolved
days_after = 0
within_days = 14''',
    "exit_survey": '''# days after a subscription ended; voluntary_only leaves out failed payments
days_after = 0
voluntary_only = true
within_days = 14''',
    "feedback_reply": '''# survey answers in the last within_days days; empty_comment_only: only those
# without a comment (thank, and ask what is behind the score)
empty_comment_only = true
within_days = 3''',
}

_AUDIENCE = {
    "winback": 'segments = ["at risk", "can\'t lose them", "about to sleep", "need attention", "hibernating"]\nmin_orders = 1',
    "churn_risk": "# min_value_at_risk = 50",
    "early_access": 'segments = ["champions", "loyal"]',
}

_OFFER = {
    "winback": '''kind = "percent"
value = 10
valid_days = 14
code_prefix = "BACK"
# a stronger offer for the customers it matters most to keep
[offer.variants]
"can't lose them" = { value = 20 }''',
    "churn_risk": '''kind = "percent"
value = 15
valid_days = 14
code_prefix = "STAY"''',
    "birthday": '''kind = "percent"
value = 15
valid_days = 14
code_prefix = "BDAY"''',
    "abandoned_cart": '''kind = "free_shipping"
valid_days = 3
code_prefix = "CART"''',
    "wishlist": '''kind = "percent"
value = 5
valid_days = 7
code_prefix = "WISH"''',
    "viewed_item": 'kind = "none"',
    "renewal": '''kind = "percent"
value = 10
valid_days = 10
code_prefix = "YEAR"''',
    "replenishment": 'kind = "none"',
    "onboarding": '''kind = "fixed"
value = 5
valid_days = 30
code_prefix = "HELLO"''',
    "early_access": 'kind = "none"',
    "thank_you": 'kind = "points"\nvalue = 100',
    "detractor_followup": 'kind = "none"',
    "nps_survey": 'kind = "none"',
    "csat_after_ticket": 'kind = "none"',
    "exit_survey": 'kind = "none"',
    "feedback_reply": 'kind = "none"',
}

#: service messages (no offer; caps exempt, an opt-out still respected): the apology to a detractor
_CLASS = {"detractor_followup": "service", "nps_survey": "service", "csat_after_ticket": "service",
          "exit_survey": "service", "feedback_reply": "service"}
_PICKS = {"abandoned_cart": "trigger", "wishlist": "trigger", "viewed_item": "trigger", "early_access": "segment",
          "onboarding": "segment", "detractor_followup": "none", "renewal": "none", "nps_survey": "none",
          "csat_after_ticket": "none", "exit_survey": "none", "feedback_reply": "none"}

_OFFER_LINE = {
    "en": "{% if promo_code %}Your code {{ promo_code }}: {{ offer.text }}, valid until {{ valid_until | date }}.{% endif %}",
    "ru": "{% if promo_code %}Ваш код {{ promo_code }}: {{ offer.text }}, действует до {{ valid_until | date }}.{% endif %}",
}
_PICKS_LINE = {
    "en": "{% for p in picks %}\n- {{ p.name }}{% endfor %}",
    "ru": "{% for p in picks %}\n- {{ p.name }}{% endfor %}",
}

_TEXT: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "winback": ("We miss you, {{ first_name }}", "It has been {{ days_since_order }} days since your last order."),
        "churn_risk": ("Something for you, {{ first_name }}", "We would like to keep you with us."),
        "birthday": ("Happy birthday, {{ first_name }}!", "Your birthday is on {{ birthday | date }}: a gift from us."),
        "abandoned_cart": ("You left something in your cart", "Still thinking? Your cart is waiting:"),
        "wishlist": ("Your wishlist, {{ first_name }}", "The items you saved are still here:"),
        "viewed_item": ("Still interested?", "You looked at these recently:"),
        "renewal": ("Your {{ plan }} plan renews on {{ renewal_date | date }}",
                    "Switch to an annual plan and save."),
        "replenishment": ("Time to restock?", "By our count you will run out of {{ due_item }} around "
                          "{{ due_date | date }}."),
        "onboarding": ("Welcome, {{ first_name }} (step {{ step }})", "Thank you for your first order. "
                       "Here is what others like:"),
        "early_access": ("Early access for you, {{ first_name }}", "As one of our best customers, you see the "
                         "new collection first."),
        "thank_you": ("Thank you for your order {{ order_id }}", "We have added {{ offer.value | int }} bonus points "
                      "to your account."),
        "detractor_followup": ("We are sorry, {{ first_name }}", "You rated us {{ score | int }}. What went wrong? "
                               "Reply to this message: a person reads every answer."),
        "nps_survey": ("One question, {{ first_name }}", "How likely are you to recommend us to a friend, from 0 to "
                       "10? Answer here: {{ survey_url }}"),
        "csat_after_ticket": ("How did we do?", "Your support request is resolved. How satisfied are you, from 1 "
                              "to 5? {{ survey_url }}"),
        "exit_survey": ("Sorry to see you go, {{ first_name }}", "Your {{ plan }} subscription has ended. Would "
                        "you tell us how likely you are to recommend us (0 to 10) and why? {{ survey_url }}"),
        "feedback_reply": ("Thank you for your answer", "Thank you for rating us {{ score | int }}. What is the "
                           "main reason for your score? Reply to this message: a person reads every answer."),
    },
    "ru": {
        "winback": ("Мы скучаем, {{ first_name }}", "С вашего последнего заказа прошло {{ days_since_order }} дн."),
        "churn_risk": ("Кое-что для вас, {{ first_name }}", "Нам важно, чтобы вы остались с нами."),
        "birthday": ("С днём рождения, {{ first_name }}!", "Ваш день рождения — {{ birthday | date }}: подарок от нас."),
        "abandoned_cart": ("Вы кое-что оставили в корзине", "Ещё думаете? Корзина ждёт вас:"),
        "wishlist": ("Ваше избранное, {{ first_name }}", "Товары, которые вы отложили, ещё в наличии:"),
        "viewed_item": ("Всё ещё интересно?", "Недавно вы смотрели:"),
        "renewal": ("Тариф {{ plan }} продлевается {{ renewal_date | date }}",
                    "Перейдите на годовой тариф и сэкономьте."),
        "replenishment": ("Пора пополнить запас?", "По нашим расчётам {{ due_item }} закончится около "
                          "{{ due_date | date }}."),
        "onboarding": ("Добро пожаловать, {{ first_name }} (шаг {{ step }})", "Спасибо за первый заказ. "
                       "Вот что нравится другим:"),
        "early_access": ("Ранний доступ для вас, {{ first_name }}", "Как один из лучших клиентов, вы первыми "
                         "видите новую коллекцию."),
        "thank_you": ("Спасибо за заказ {{ order_id }}", "Мы начислили {{ offer.value | int }} бонусных баллов."),
        "detractor_followup": ("Нам жаль, {{ first_name }}", "Вы поставили нам {{ score | int }}. Что пошло не так? "
                               "Ответьте на это письмо: каждый ответ читает человек."),
        "nps_survey": ("Один вопрос, {{ first_name }}", "Насколько вероятно, что вы порекомендуете нас другу, от 0 "
                       "до 10? Ответить: {{ survey_url }}"),
        "csat_after_ticket": ("Как мы справились?", "Ваше обращение решено. Насколько вы довольны, от 1 до 5? "
                              "{{ survey_url }}"),
        "exit_survey": ("Жаль, что вы уходите, {{ first_name }}", "Ваша подписка {{ plan }} закончилась. "
                        "Насколько вероятно, что вы порекомендуете нас (от 0 до 10), и почему? {{ survey_url }}"),
        "feedback_reply": ("Спасибо за ответ", "Спасибо за оценку {{ score | int }}. Что главное стоит за ней? "
                           "Ответьте на это письмо: каждый ответ читает человек."),
    },
}

_FOOTER = {"en": "Unsubscribe: {{ unsubscribe_url }}", "ru": "Отписаться: {{ unsubscribe_url }}"}


def playbook_text(kind: str, name: str, channel: str = "csv", lang: str = "en") -> str:
    """The commented TOML of a new playbook of ``kind``."""
    if kind not in KINDS:
        raise InvalidParameter("kind", kind, ", ".join(KINDS))
    if channel not in ("email", "webhook", "csv"):
        raise InvalidParameter("channel", channel, "email, webhook or csv")
    if lang not in _TEXT:
        raise InvalidParameter("lang", lang, "en or ru")
    subject, text = _TEXT[lang][kind]
    picks = _PICKS.get(kind, "bought")
    body = text + (_PICKS_LINE[lang] if picks != "none" else "") + "\n\n" + _OFFER_LINE[lang] + "\n\n" + _FOOTER[lang]
    html = ("<p>" + text + "</p>" + ("<ul>{% for p in picks %}<li>{{ p.name }}</li>{% endfor %}</ul>"
                                     if picks != "none" else "")
            + "<p>" + _OFFER_LINE[lang] + '</p><p><a href="{{ unsubscribe_url }}">'
            + ("Unsubscribe" if lang == "en" else "Отписаться") + "</a></p>")
    consent = "sms" if channel == "webhook" else "email"
    survey = _SURVEY.format(question=SURVEY_PLAYBOOKS[kind]) if kind in SURVEY_PLAYBOOKS else ""
    return f'''# Retentio playbook: {kind}. Trigger -> audience -> offer -> message -> channel.
# Check it with `retentio playbook check {name}`, see whom it picks with
# `retentio campaign plan {name}`, send with `retentio campaign run {name}`.
kind = "{kind}"
description = ""
# the expected response to one message; x the customer's value = its expected value,
# which decides between campaigns when the frequency cap allows only one
expected_uplift = 0.03

[trigger]
{_TRIGGERS[kind]}

[audience]
# any of: segments (RFM), churn_bands, key_customers_only, min_orders, max_orders,
# min_clv, min_p_alive, min_value_at_risk, last_order_after/before = "YYYY-MM-DD",
# where = {{ city = ["Moscow"] }} (any customer attribute)
{_AUDIENCE.get(kind, "")}

[exclude]
# ordered_within_days = 7
other_campaign_within_days = 3
# customers_file = "employees.csv"

[offer]
# percent, fixed, free_shipping, gift, points or none; a personal one-time promo code
# is issued for percent, fixed, free_shipping and gift
{_OFFER[kind]}

[message]
# Jinja2 templates (sandboxed). Variables: first_name, customer (every customer field),
# segment, churn_band, clv, offer (kind, value, text), promo_code, valid_until, picks,
# items, days_since_order, birthday, plan, renewal_date, due_item, due_date, step,
# order_id, score, unsubscribe_url, survey_url. Filters: money, date, first_name.
message_class = "{_CLASS.get(kind, "marketing")}"
picks = "{picks}"
lang = "{lang}"
subject = {_toml_string(subject)}
text = {_toml_string(body)}
html = {_toml_string(html)}

[channel]
# email (SMTP, [channels.email] in retentio.toml), webhook (SMS, messengers, push:
# [channels.webhook]) or csv (a file for another tool; sends nothing)
kind = "{channel}"
consent = "{consent}"

[holdout]
# the share (%) of eligible customers kept as a control group, to measure the effect
percent = 10
{survey}'''


_SURVEY = '''
[survey]
# the question: nps (0-10), csat (1-5) or ces (1-7); the answer link ({{{{ survey_url }}}})
# is personal, signed and valid for valid_days days
question = "{question}"
valid_days = 30
# nobody is asked again within this many days, by this or any other survey playbook
min_days_between = 90
# spread the invitations over weekday mornings (workspace time)
weekday_mornings = true
morning_start = 9
morning_end = 12
'''


def _toml_string(text: str) -> str:
    """A TOML basic string (escaped quotes, backslashes and newlines)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


__all__ = ["playbook_text"]
