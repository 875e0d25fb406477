"""Words and number formats of the report, in English and Russian (Babel for locale
formatting: decimal separators, grouping, currency symbols and percent signs)."""

from __future__ import annotations

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

LOCALES = {"en": "en_US", "ru": "ru_RU"}
#: parsed once: reasons ask it for a plural form per number
_RU = Locale.parse(LOCALES["ru"])

TEXT = {
    "en": {
        "title": "Retention report", "generated": "Generated", "period": "Last complete period",
        "s1": "Headline KPIs", "s2": "Retention and churn over time", "s3": "Cohorts",
        "s4": "Subscription MRR movements", "s5": "Lifecycle and the repeat-purchase funnel",
        "s6": "RFM segments", "s7": "Customer lifetime value", "s8": "Churn risk", "s9": "Feedback",
        "s10": "Actions and their effect", "s11": "Loyalty program", "s12": "Data and definitions",
        "loy_take": "{members} members of {program}; {rr} of the points issued were redeemed. The program owes "
                    "{liab} in points ({net} after the {breakage} that expire unused, as observed).",
        "loy_effect": "Members kept buying at {m} within {w} days of joining against {c} for comparable "
                      "non-members: {eff} pp [{lo}, {hi}].",
        "loy_none": "The effect on retention could not be measured: {reason}",
        "loy_issued": "Issued", "loy_redeemed": "Redeemed", "loy_expired": "Expired", "loy_points": "Points",
        "loy_liability": "Liability", "loy_month": "Period", "loy_measure": "Measure",
        "loy_members": "Members", "loy_active": "Active members (last period)", "loy_rr": "Redemption rate",
        "loy_breakage": "Breakage (observed expiry)", "loy_net": "Liability net of breakage",
        "loy_reward_cost": "Cost of redeemed points", "loy_discount_cost": "Member discounts",
        "loy_tiers": "Tiers", "loy_stamps": "Stamp cards completed", "loy_kind": "Points",
        "loy_balance": "Balance of the matched groups (standardised mean difference; below 0.1 is balanced)",
        "loy_feature": "Pre-join feature", "loy_before": "Before matching", "loy_after": "After matching",
        "act_take": "{n} campaigns measured against their control groups: {works} worked, {unclear} too small to tell"
                    "{srm}. Across all of them: {inc} incremental revenue for {cost} spent.",
        "act_srm": "; {k} have a sample-ratio mismatch (not trustworthy)",
        "act_tool": "Per tool: {best} returns most per unit spent (ROI {roi}); stop what does not pay.",
        "act_note": "Uplift = treated minus control conversion in the attribution window, 95 % intervals "
                    "(Welch); revenue capped at the {w}th percentile and adjusted with pre-period revenue "
                    "(CUPED); p-values adjusted ({adj}).",
        "campaign": "Campaign", "tool": "Tool", "treated": "Treated", "control": "Control",
        "uplift_pp": "Uplift, pp", "incr_revenue": "Incremental revenue", "cost": "Cost", "roi": "ROI",
        "verdict": "Verdict", "v_positive": "works", "v_negative": "harms", "v_too_few": "too few to tell",
        "v_srm": "sample-ratio mismatch",
        "adj_bh": "Benjamini–Hochberg over {n} comparisons", "adj_none": "one comparison: none",
        "tool_discount": "discount", "tool_free_shipping": "free shipping", "tool_gift": "gift",
        "tool_points": "bonus points", "tool_no_offer": "no offer",
        "kpi": "KPI", "value": "Value", "previous": "Previous period", "year_ago": "A year earlier",
        "benchmark": "Industry benchmark", "na": "not available",
        "crr_pct": "Customer retention rate, %", "churn_pct": "Churn rate, %",
        "revenue_churn_pct": "Revenue churn, %", "nrr_pct": "Net revenue retention, %",
        "repeat_purchase_rate_pct": "Repeat purchase rate, %", "nps": "NPS", "customers_end": "Active customers",
        "revenue": "Revenue",
        "k_up": "{kpi} {verb} to {value} ({delta} against the previous period).",
        "rose": "rose", "fell": "fell", "held": "held",
        "v_short": "Only {n} periods of data: at least two years are needed to tell seasonal from persistent movement.",
        "v_seasonal": "The latest churn movement ({delta} pp) is mostly seasonal: the same month usually moves this way.",
        "v_persistent": "The latest churn movement ({delta} pp) is persistent: the trend itself moved, not just the season.",
        "v_flat": "Churn did not move in the latest period.",
        "cohort_take": "On average {pct} of a cohort is still active {k} periods after its first purchase.",
        "mrr_take": "MRR moved from {a} to {b} in the last complete period; churned MRR was {c}.",
        "funnel_take": "Most customers are lost between {a} and {b}: {n} customers ({pct} of those who reached {a}).",
        "rfm_take": "{seg} is the largest segment ({n} customers); {top} bring {share} of revenue.",
        "clv_take": "Median {months}-month CLV is {median}; the top 10 % of customers hold {share} of future value.",
        "cac_take": "{ok} of {n} channels meet the LTV : CAC ≥ 3 rule.",
        "churn_take": "The model ranks churners with ROC-AUC {auc} (recency alone {base}, logistic regression {lr}); "
                      "{n} customers are at high risk, with {var} at risk.",
        "fb_take": "NPS was {nps} in the last complete period ({resp} answers).",
        "data_take": "{tables} tables loaded; {rejected} rows were rejected at load.",
        "segment": "Segment", "customers": "Customers", "share": "Share", "action": "What to do",
        "customer": "Customer", "probability": "Churn probability", "at_risk": "Value at risk", "reasons": "Reasons",
        "channel": "Channel", "cac": "CAC", "ltv": "LTV", "ratio": "LTV : CAC", "romi": "ROMI, %",
        "table": "Table", "rows": "Rows", "from": "From", "to": "To", "definitions": "Definitions",
        "no_subs": "No subscriptions are loaded.", "no_surveys": "No survey answers are loaded.",
        "offset": "Periods since first purchase", "cohort": "Cohort", "retention": "Retention, %",
        "recency": "Days since the last order", "orders": "Orders", "cum_repeat": "Cumulative repeat purchases",
        "predicted": "Predicted", "observed": "Observed", "actual": "Actual", "auc_oot": "ROC-AUC (out of time)",
        "new": "new", "retained": "retained", "reactivated": "reactivated", "dormant": "dormant",
        "expansion": "expansion", "contraction": "contraction", "churned": "churned",
        "promoters": "promoters", "passives": "passives", "detractors": "detractors", "csat": "CSAT, %",
        "calibration_end": "calibration end", "model_lgbm": "LightGBM", "model_lr": "logistic regression",
        "model_recency": "recency only", "clv_axis": "CLV, {cur} (top 1 % in the last bar)",
        "count": "Customers",
    },
    "ru": {
        "title": "Отчёт по удержанию", "generated": "Сформирован", "period": "Последний полный период",
        "s1": "Ключевые показатели", "s2": "Удержание и отток во времени", "s3": "Когорты",
        "s4": "Движение MRR подписок", "s5": "Жизненный цикл и воронка повторных покупок",
        "s6": "RFM-сегменты", "s7": "Пожизненная ценность клиента (CLV)", "s8": "Риск оттока",
        "s9": "Обратная связь", "s10": "Действия и их эффект", "s11": "Программа лояльности",
        "s12": "Данные и определения",
        "loy_take": "Участников программы {program}: {members}; использовано {rr} начисленных баллов. Обязательства "
                    "по баллам — {liab} ({net} за вычетом {breakage} баллов, которые, судя по опыту, сгорят).",
        "loy_effect": "Участники совершали покупки в течение {w} дней после вступления в {m} случаев против {c} у "
                      "сопоставимых неучастников: {eff} п. п. [{lo}, {hi}].",
        "loy_none": "Влияние на удержание измерить не удалось: {reason}",
        "loy_issued": "Начислено", "loy_redeemed": "Списано", "loy_expired": "Сгорело", "loy_points": "Баллы",
        "loy_liability": "Обязательства", "loy_month": "Период", "loy_measure": "Показатель",
        "loy_members": "Участники", "loy_active": "Активные участники (последний период)",
        "loy_rr": "Доля использованных баллов", "loy_breakage": "Сгорание (по опыту)",
        "loy_net": "Обязательства за вычетом сгорания", "loy_reward_cost": "Стоимость списанных баллов",
        "loy_discount_cost": "Скидки участникам", "loy_tiers": "Уровни", "loy_stamps": "Заполненные карточки",
        "loy_kind": "Баллы",
        "loy_balance": "Баланс сопоставленных групп (стандартизованная разница средних; меньше 0,1 — сбалансировано)",
        "loy_feature": "Признак до вступления", "loy_before": "До сопоставления", "loy_after": "После сопоставления",
        "act_take": "Кампаний, измеренных против контрольных групп: {n}; сработали {works}, слишком малы, чтобы "
                    "судить, — {unclear}{srm}. Всего: {inc} дополнительной выручки при затратах {cost}.",
        "act_srm": "; у {k} нарушено соотношение групп (результату нельзя доверять)",
        "act_tool": "По инструментам: больше всего на вложенный рубль даёт «{best}» (ROI {roi}); "
                    "то, что не окупается, стоит остановить.",
        "act_note": "Эффект — разница конверсии в окне атрибуции между получившими и контрольной группой, "
                    "95 % интервалы (Уэлч); выручка ограничена {w}-м перцентилем и скорректирована по выручке "
                    "до кампании (CUPED); p-значения скорректированы ({adj}).",
        "campaign": "Кампания", "tool": "Инструмент", "treated": "Получили", "control": "Контроль",
        "uplift_pp": "Эффект, п. п.", "incr_revenue": "Доп. выручка", "cost": "Затраты", "roi": "ROI",
        "verdict": "Вывод", "v_positive": "работает", "v_negative": "вредит", "v_too_few": "мало данных",
        "v_srm": "нарушено соотношение групп",
        "adj_bh": "Бенджамини — Хохберг, сравнений: {n}", "adj_none": "одно сравнение: без поправки",
        "tool_discount": "скидка", "tool_free_shipping": "бесплатная доставка", "tool_gift": "подарок",
        "tool_points": "бонусные баллы", "tool_no_offer": "без предложения",
        "kpi": "Показатель", "value": "Значение", "previous": "Прошлый период", "year_ago": "Год назад",
        "benchmark": "Ориентир отрасли", "na": "нет данных",
        "crr_pct": "Коэффициент удержания (CRR), %", "churn_pct": "Отток клиентов, %",
        "revenue_churn_pct": "Отток выручки, %", "nrr_pct": "Чистое удержание выручки (NRR), %",
        "repeat_purchase_rate_pct": "Доля повторных покупок, %", "nps": "NPS", "customers_end": "Активные клиенты",
        "revenue": "Выручка",
        "k_up": "{kpi}: {verb} до {value} ({delta} к прошлому периоду).",
        "rose": "рост", "fell": "снижение", "held": "без изменений",
        "v_short": "Данных всего за {n} периодов: чтобы отличить сезонность от устойчивого сдвига, нужно не меньше двух лет.",
        "v_seasonal": "Последнее изменение оттока ({delta} п. п.) в основном сезонное: в этом месяце так бывает обычно.",
        "v_persistent": "Последнее изменение оттока ({delta} п. п.) устойчивое: сдвинулся сам тренд, а не сезон.",
        "v_flat": "Отток в последнем периоде не изменился.",
        "cohort_take": "В среднем {pct} когорты остаются активными через {k} периодов после первой покупки.",
        "mrr_take": "MRR за последний полный период изменился с {a} до {b}; ушедший MRR — {c}.",
        "funnel_take": "Больше всего клиентов теряется между шагами «{a}» и «{b}»: {n} клиентов ({pct} дошедших до «{a}»).",
        "rfm_take": "Крупнейший сегмент — {seg} ({n} клиентов); {top} приносят {share} выручки.",
        "clv_take": "Медианный CLV за {months} мес. — {median}; на лучшие 10 % клиентов приходится {share} будущей ценности.",
        "cac_take": "Правилу LTV : CAC ≥ 3 соответствуют {ok} из {n} каналов.",
        "churn_take": "Модель различает уходящих с ROC-AUC {auc} (только давность — {base}, логистическая регрессия — {lr}); "
                      "в зоне высокого риска {n} клиентов, под угрозой {var}.",
        "fb_take": "NPS в последнем полном периоде — {nps} ({resp} ответов).",
        "data_take": "Загружено таблиц: {tables}; отклонено строк при загрузке: {rejected}.",
        "segment": "Сегмент", "customers": "Клиенты", "share": "Доля", "action": "Что делать",
        "customer": "Клиент", "probability": "Вероятность оттока", "at_risk": "Ценность под угрозой",
        "reasons": "Причины", "channel": "Канал", "cac": "CAC", "ltv": "LTV", "ratio": "LTV : CAC", "romi": "ROMI, %",
        "table": "Таблица", "rows": "Строк", "from": "С", "to": "По", "definitions": "Определения",
        "no_subs": "Подписки не загружены.", "no_surveys": "Ответы на опросы не загружены.",
        "offset": "Периодов после первой покупки", "cohort": "Когорта", "retention": "Удержание, %",
        "recency": "Дней с последнего заказа", "orders": "Заказы", "cum_repeat": "Повторные покупки нарастающим итогом",
        "predicted": "Прогноз", "observed": "Факт", "actual": "Факт", "auc_oot": "ROC-AUC (на будущем периоде)",
        "new": "новые", "retained": "удержанные", "reactivated": "вернувшиеся", "dormant": "уснувшие",
        "expansion": "расширение", "contraction": "сокращение", "churned": "ушедшие",
        "promoters": "промоутеры", "passives": "нейтральные", "detractors": "критики", "csat": "CSAT, %",
        "calibration_end": "конец калибровки", "model_lgbm": "LightGBM", "model_lr": "логистическая регрессия",
        "model_recency": "только давность", "clv_axis": "CLV, {cur} (верхний 1 % в последнем столбце)",
        "count": "Клиенты",
        "label_orders": "Уход — клиент с завершённым заказом за {window_days} дн. до даты среза не делает ни одного "
                        "завершённого заказа за {horizon_days} дн. после неё.",
        "label_subscriptions": "Уход — у подписчика, платящего на дату среза, через {horizon_days} дн. нет "
                               "оплачиваемой подписки.",
        "label_event": "Уход — у клиента с событием «{event_type}» за {window_days} дн. до даты среза нет такого "
                       "события за {horizon_days} дн. после неё.",
    },
}


class Fmt:
    """Locale-aware number formatting for one report."""

    def __init__(self, lang: str, currency: str):
        self.lang, self.locale, self.currency = lang, LOCALES[lang], currency
        self.t = TEXT[lang]

    def num(self, v, digits: int = 0) -> str:
        if v is None:
            return self.t["na"]
        return format_decimal(round(float(v), digits), format=f"#,##0.{'0' * digits}" if digits else "#,##0",
                              locale=self.locale)

    def pct(self, v, digits: int = 1) -> str:
        return self.t["na"] if v is None else f"{self.num(v, digits)} %"

    def money(self, v) -> str:
        if v is None:
            return self.t["na"]
        try:
            return format_currency(float(v), self.currency, locale=self.locale)
        except Exception:  # an unknown currency code: plain number and the code
            return f"{self.num(v, 2)} {self.currency}"

    def signed(self, v, digits: int = 1) -> str:
        if v is None:
            return self.t["na"]
        return ("+" if v > 0 else "") + self.num(v, digits)


# ----------------------------------------------------------------------------- churn reasons
def _ru_count(n: float, one: str, few: str, many: str) -> str:
    """A count with its noun in the Russian plural form CLDR gives for it (1 день, 2 дня, 5 дней)."""
    k = int(round(n))
    form = _RU.plural_form(k)
    return f"{k} {one if form == 'one' else few if form == 'few' else many}"


def reason_phrases(f: Fmt):
    """The churn reasons' phrasebook for the report's language (English is the analytics'
    own; the keys and values are those of :data:`retentio.analytics.churn.reasons.ENGLISH`)."""
    import pandas as pd

    from retentio.analytics.churn.reasons import ENGLISH, Phrasebook

    if f.lang == "en":
        return ENGLISH

    def day(v) -> str:
        return format_date(pd.Timestamp(v).date(), "short", locale=f.locale)

    def days(n) -> str:
        return _ru_count(n, "день", "дня", "дней")

    def times(n) -> str:
        return _ru_count(n, "раз", "раза", "раз")

    return Phrasebook(
        say={
            "gap": lambda d: f"нет заказов уже {days(d)}",
            "gap_overdue": lambda d, q: f"нет заказов уже {days(d)} — в {f.num(q, 1)} раза дольше обычного интервала",
            "fewer_orders": lambda now, before: (f"{_ru_count(now, 'заказ', 'заказа', 'заказов')} за последние "
                                                 f"30 дней против {f.num(before)} за предыдущие 30"),
            "spend_down": lambda p: f"траты снизились на {f.pct(p, 0)} за последние 90 дней",
            "few_orders": lambda n: f"всего {_ru_count(n, 'заказ', 'заказа', 'заказов')}",
            "basket": lambda v: f"средний чек {f.num(v, 2)}",
            "logins_down": lambda p, now, before: (f"входов на {f.pct(p, 0)} меньше за последние 30 дней "
                                                   f"({f.num(now)} против {f.num(before)} за предыдущие 30)"),
            "no_login": lambda d: f"нет входов уже {days(d)}",
            "usage_down": lambda p: f"использование продукта снизилось на {f.pct(p, 0)} за последние 30 дней",
            "failed_payments": lambda n: (f"{_ru_count(n, 'неудачный платёж', 'неудачных платежа', 'неудачных платежей')}"
                                          " за последние 90 дней"),
            "downgraded": lambda n, when: (f"тариф понижен {times(n)} за последние 90 дней"
                                           + (f", последний раз {day(when)}" if not pd.isna(when) else "")),
            "mrr_down": lambda before, now: f"MRR снизился с {f.num(before, 2)} до {f.num(now, 2)} за 90 дней",
            "subscription_ended": lambda before: f"подписка закончилась (90 дней назад MRR был {f.num(before, 2)})",
            "involuntary": lambda n: f"подписка уже прерывалась из-за неудачного платежа ({times(n)})",
            "tickets_open": lambda n: (f"{_ru_count(n, 'открытое обращение', 'открытых обращения', 'открытых обращений')}"
                                       " в поддержку"),
            "tickets_recent": lambda n: (f"{_ru_count(n, 'обращение', 'обращения', 'обращений')} в поддержку "
                                         "за последние 90 дней"),
            "nps": lambda s, when: f"оценка NPS {f.num(s)} от {day(when)}",
            "csat": lambda s, when: f"оценка удовлетворённости {f.num(s)}/5 от {day(when)}",
            "returns": lambda p: f"возвращено {f.pct(p, 0)} заказов",
            "discounts": lambda p: f"{f.pct(p, 0)} заказов со скидкой",
            "p_alive": lambda p: f"по истории покупок клиент ещё покупает лишь с вероятностью {f.pct(p, 0)}",
            "tenure": lambda d: f"клиент всего {days(d)}",
            "attribute": lambda name, value: f"{name}: {value}",
        },
        groups={
            "gap": "перерыв в заказах", "orders": "меньше заказов", "spend": "траты снизились",
            "few": "мало заказов", "basket": "средний чек", "logins": "входы", "usage": "использование", "payments": "платежи",
            "plan": "понижение тарифа", "ended": "подписка закончилась", "payments_past": "платежи",
            "tickets": "обращения", "nps": "низкий NPS", "csat": "низкий CSAT", "returns": "возвраты",
            "discounts": "скидки", "alive": "P(alive)", "tenure": "новый клиент",
        },
    )
