"""Words and number formats of the report, in English and Russian (Babel for locale
formatting: decimal separators, grouping, currency symbols and percent signs)."""

from __future__ import annotations

import re
from collections.abc import Callable

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

LOCALES = {"en": "en_US", "ru": "ru_RU"}
#: parsed once: every counted noun asks its language for the CLDR plural form of its number
_PLURALS = {lang: Locale.parse(tag) for lang, tag in LOCALES.items()}

#: the nouns the report counts, in each CLDR plural form of the language ("other" is the
#: fallback: English has one/other, Russian one/few/many for whole numbers)
NOUNS: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "customer": {"one": "customer", "other": "customers"},
        "period": {"one": "period", "other": "periods"},
        "answer": {"one": "answer", "other": "answers"},
        "day": {"one": "day", "other": "days"},
        "campaign": {"one": "campaign", "other": "campaigns"},
        "channel": {"one": "channel", "other": "channels"},
        "table": {"one": "table", "other": "tables"},
        "member": {"one": "member", "other": "members"},
        "horizon": {"one": "horizon", "other": "horizons"},
        "parameter": {"one": "parameter", "other": "parameters"},
        "comment": {"one": "comment", "other": "comments"},
        "task": {"one": "task", "other": "tasks"},
        "exit": {"one": "exit", "other": "exits"},
    },
    "ru": {
        "customer": {"one": "клиент", "few": "клиента", "other": "клиентов"},
        "period": {"one": "период", "few": "периода", "other": "периодов"},
        "answer": {"one": "ответ", "few": "ответа", "other": "ответов"},
        "day": {"one": "день", "few": "дня", "other": "дней"},
        "campaign": {"one": "кампания", "few": "кампании", "other": "кампаний"},
        "channel": {"one": "канал", "few": "канала", "other": "каналов"},
        "table": {"one": "таблица", "few": "таблицы", "other": "таблиц"},
        "member": {"one": "участник", "few": "участника", "other": "участников"},
        "horizon": {"one": "горизонт", "few": "горизонта", "other": "горизонтов"},
        "parameter": {"one": "параметр", "few": "параметра", "other": "параметров"},
        "comment": {"one": "комментарий", "few": "комментария", "other": "комментариев"},
        "task": {"one": "задача", "few": "задачи", "other": "задач"},
        "exit": {"one": "уход", "few": "ухода", "other": "уходов"},
    },
}


def plural(lang: str, n: float, forms: dict[str, str]) -> str:
    """The form of a noun that CLDR's plural rules of ``lang`` give for ``n`` (Babel):
    1 клиент, 2 клиента, 5 клиентов, 21 клиент; 1 customer, 2 customers."""
    form = _PLURALS[lang].plural_form(n)
    return forms.get(form) or forms.get("many") or forms["other"]

TEXT = {
    "en": {
        "title": "Retention report", "generated": "Generated", "period": "Last complete period",
        "s1": "Headline KPIs", "s2": "Retention and churn over time", "s3": "Cohorts",
        "s4": "Subscription MRR movements", "s5": "Lifecycle and the repeat-purchase funnel",
        "s6": "RFM segments", "s7": "Customer lifetime value", "s8": "Churn risk", "s9": "Feedback",
        "s10": "Actions and their effect", "s11": "Loyalty program", "s12": "Data and definitions",
        "loy_take": "{members} of {program}; {rr} of the points issued were redeemed. The program owes "
                    "{liab} in points ({net} after the {breakage} that expire unused, as observed).",
        "loy_effect": "Members kept buying at {m} within {days} of joining against {c} for comparable "
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
        "act_take": "{campaigns} measured against their control groups: {works} worked, {unclear} too small to tell"
                    "{srm}. Across all of them: {inc} incremental revenue for {cost} spent.",
        "act_srm": "; {k} with a sample-ratio mismatch (not trustworthy)",
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
        "v_short": "Only {periods} of data: at least two years are needed to tell seasonal from persistent movement.",
        "v_seasonal": "The latest churn movement ({delta} pp) is mostly seasonal: the same month usually moves this way.",
        "v_persistent": "The latest churn movement ({delta} pp) is persistent: the trend itself moved, not just the season.",
        "v_flat": "Churn did not move in the latest period.",
        "cohort_take": "On average {pct} of a cohort is still active {periods} after its first purchase.",
        "mrr_take": "MRR moved from {a} to {b} in the last complete period; churned MRR was {c}.",
        "funnel_take": "Most customers are lost between {a} and {b}: {customers} ({pct} of those who reached {a}).",
        "rfm_take": "The largest segment is {seg} ({customers}); {top} bring {share} of revenue.",
        "clv_take": "Median {months}-month CLV is {median}; the top 10 % of customers hold {share} of future value.",
        "cac_take": "{ok} of {channels} meet the LTV : CAC ≥ 3 rule.",
        "churn_take": "The chosen model, {model}, ranks churners with ROC-AUC {auc} out of time (recency alone {base}; "
                      "{others}); {customers} at high risk, with {var} at stake.",
        "churn_choice": "The model was chosen among LightGBM, logistic regression and their average by ROC-AUC on the "
                        "calibration slice (cutoff {cal}): {model}, ahead by {margin}.",
        "churn_weak": "Do not target with this model: it ranks customers no better than chance or stands on too few "
                      "customers (out-of-time ROC-AUC {auc}; trained on {n}).",
        "chosen": "chosen", "model_avg": "average of both",
        "fb_sla_none": "No follow-up task has been opened yet (retentio feedback tasks sync).",
        "fb_sla_take": "Follow-up: {opened} opened, {closed} closed, {within} of them within the SLA, median "
                       "{median} h to close; {overdue} overdue now.",
        "fb_sla_followup": "Detractors followed up in time kept buying {d} pp more often (95 % CI {low} to {high} pp) "
                           "— an observational comparison, not proof that following up caused it.",
        "fb_sla_period": "Period", "fb_sla_opened": "Opened", "fb_sla_closed": "Closed", "fb_sla_within": "Within SLA",
        "fb_sla_median": "Median hours to close", "fb_sla_overdue": "Overdue open",
        "fb_take": "NPS was {nps} in the last complete period ({answers}).",
        # the feedback section's themes and exit reasons (faces/report/build.py, _feedback)
        "fb_themes_take": "Customers write most about “{top}” ({top_n}); the theme with the lowest NPS is "
                          "“{worst}” (NPS {nps}, {worst_n}).",
        "fb_themes_none": "Themes of comments: {reason}",
        "fb_theme": "Theme (key words)", "fb_lang": "Language", "fb_comments": "Comments", "fb_share": "Share",
        "fb_sentiment": "Sentiment", "fb_trend": "Trend", "fb_example": "Example",
        "fb_negative": "negative", "fb_neutral": "neutral", "fb_positive": "positive",
        "fb_rising": "rising", "fb_falling": "falling", "fb_steady": "steady", "fb_pp": "pp",
        "fb_themes_note": "Themes of {n} to surveys, in Russian and English: "
                          "Snowball stems, TF-IDF and NMF, computed offline; a comment may have several themes, "
                          "so shares may add up to more than 100 %. Sentiment from a small ru/en word lexicon.",
        "fb_exits_take": "{vol} left voluntarily (top reason: “{reason}”, {share}); {invol} lost their "
                         "subscription to a failed payment — a dunning problem, not a product one.",
        "fb_exits_none": "Exit reasons: {reason}",
        "fb_no_subs": "no subscriptions are loaded.", "fb_no_comments": "no survey comments are loaded.", "fb_few_comments": "too few comments with words to "
        "find themes in.", "fb_no_exits": "no subscription has ended with a reason yet.",
        "fb_reason": "Exit reason", "fb_churn_type": "Churn", "fb_exits": "Exits",
        "fb_voluntary": "voluntary", "fb_involuntary": "involuntary (payment)", "fb_unknown": "unknown",
        "data_take": "{tables} loaded; rows rejected at load: {rejected}.",
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
        "order_step": "order {k}", "total": "total", "versions": "versions",
        "period_month": "month", "period_week": "week", "period_quarter": "quarter",
        "no_complete": "Not enough data yet: the data hold no complete {period}, so no period's figures can be "
                       "computed.",
        "cohort_short": "Not enough data yet: no cohort has been observed for a whole month after its first purchase.",
        "funnel_single": "No customer has a second completed order yet: nothing shows where customers drop out.",
        "funnel_flat": "No customer is lost between {a} and {b}.",
        "na_section": "This section cannot be shown yet.",
        "feat_recency_days": "days since the last order", "feat_log1p_frequency": "orders (log)",
        "feat_log1p_spend": "spend (log)", "feat_tenure_days": "days since the first order",
    },
    "ru": {
        "title": "Отчёт по удержанию", "generated": "Сформирован", "period": "Последний полный период",
        "s1": "Ключевые показатели", "s2": "Удержание и отток во времени", "s3": "Когорты",
        "s4": "Движение MRR подписок", "s5": "Жизненный цикл и воронка повторных покупок",
        "s6": "RFM-сегменты", "s7": "Пожизненная ценность клиента (CLV)", "s8": "Риск оттока",
        "s9": "Обратная связь", "s10": "Действия и их эффект", "s11": "Программа лояльности",
        "s12": "Данные и определения",
        "loy_take": "В программе {program} — {members}; использовано {rr} начисленных баллов. Обязательства "
                    "по баллам — {liab} ({net} за вычетом {breakage} баллов, которые, судя по опыту, сгорят).",
        "loy_effect": "Участники совершали покупки за {days} после вступления в {m} случаев против {c} у "
                      "сопоставимых неучастников: {eff} п. п. [{lo}, {hi}].",
        "loy_few": "сопоставленных участников — {matched}, а нужно не меньше {need}. Вступивших не позже чем за "
                   "{days} до {date}: {eligible}; из них без завершённых заказов до вступления: {no_history}; "
                   "без сопоставимого неучастника в день вступления: {no_controls}.",
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
        "act_take": "Кампаний, измеренных против контрольных групп: {n}; сработало: {works}; слишком мало данных, "
                    "чтобы судить: {unclear}{srm}. Всего: {inc} дополнительной выручки при затратах {cost}.",
        "act_srm": "; с нарушенным соотношением групп (результату нельзя доверять): {k}",
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
        "v_short": "Данных всего за {periods}: чтобы отличить сезонность от устойчивого сдвига, нужно не меньше двух лет.",
        "v_seasonal": "Последнее изменение оттока ({delta} п. п.) в основном сезонное: в этом месяце так бывает обычно.",
        "v_persistent": "Последнее изменение оттока ({delta} п. п.) устойчивое: сдвинулся сам тренд, а не сезон.",
        "v_flat": "Отток в последнем периоде не изменился.",
        "cohort_take": "В среднем {pct} когорты остаются активными через {periods} после первой покупки.",
        "mrr_take": "MRR за последний полный период изменился с {a} до {b}; ушедший MRR — {c}.",
        "funnel_take": "Больше всего клиентов теряется между шагами «{a}» и «{b}»: {customers} ({pct} дошедших "
                       "до шага «{a}»).",
        "rfm_take": "Крупнейший сегмент — «{seg}» ({customers}); {top} приносят {share} выручки.",
        "clv_take": "Медианный CLV за {months} мес. — {median}; на лучшие 10 % клиентов приходится {share} будущей ценности.",
        "cac_take": "Каналов, соответствующих правилу LTV : CAC ≥ 3: {ok} из {n}.",
        "churn_take": "Выбранная модель ({model}) различает уходящих с ROC-AUC {auc} вне периода обучения (только "
                      "давность — {base}; {others}); в зоне высокого риска {customers}, под угрозой {var}.",
        "churn_choice": "Модель выбрана из LightGBM, логистической регрессии и их среднего по ROC-AUC на срезе "
                        "калибровки (дата среза {cal}): {model}, с отрывом {margin}.",
        "churn_weak": "Не выбирайте клиентов по этой модели: она ранжирует не лучше случайного или обучена на "
                      "слишком малом числе клиентов (ROC-AUC вне периода обучения {auc}; клиентов в обучении — {num}).",
        "chosen": "выбрана", "model_avg": "среднее двух моделей",
        "fb_sla_none": "Задач по работе с отзывами пока нет (retentio feedback tasks sync).",
        "fb_sla_take": "Работа с отзывами: открыто — {opened}, закрыто — {closed}, из них в срок — {within}, "
                       "медиана до закрытия — {median} ч; просрочено сейчас — {overdue}.",
        "fb_sla_followup": "Критики, с которыми связались вовремя, покупали снова на {d} п. п. чаще (95 % ДИ от {low} "
                           "до {high} п. п.) — это наблюдение, а не доказательство того, что помог звонок.",
        "fb_sla_period": "Период", "fb_sla_opened": "Открыто", "fb_sla_closed": "Закрыто", "fb_sla_within": "В срок",
        "fb_sla_median": "Медиана, ч до закрытия", "fb_sla_overdue": "Просрочено",
        "fb_take": "NPS в последнем полном периоде — {nps} ({answers}).",
        "fb_themes_take": "Чаще всего клиенты пишут о теме «{top}» ({top_n}); тема с самым низким NPS — "
                          "«{worst}» (NPS {nps}, {worst_n}).",
        "fb_themes_none": "Темы комментариев: {reason}",
        "fb_theme": "Тема (ключевые слова)", "fb_lang": "Язык", "fb_comments": "Комментарии", "fb_share": "Доля",
        "fb_sentiment": "Тональность", "fb_trend": "Тренд", "fb_example": "Пример",
        "fb_negative": "негативная", "fb_neutral": "нейтральная", "fb_positive": "позитивная",
        "fb_rising": "растёт", "fb_falling": "снижается", "fb_steady": "стабильна", "fb_pp": "п. п.",
        "fb_themes_note": "Темы комментариев к опросам (всего {num}) на русском и "
                          "английском: основы слов Snowball, TF-IDF и NMF, без загрузок из сети; у комментария "
                          "может быть несколько тем, поэтому доли в сумме могут превышать 100 %. Тональность — "
                          "по небольшому словарю русских и английских слов.",
        "fb_exits_take": "Ушли добровольно: {vol} (главная причина: «{reason}», {share}); потеряли подписку из-за "
                         "неудачного платежа: {invol} — это задача работы с платежами, а не продукта.",
        "fb_exits_none": "Причины ухода: {reason}",
        "fb_no_subs": "подписки не загружены.", "fb_no_comments": "комментарии к опросам не загружены.", "fb_few_comments": "комментариев со словами "
        "слишком мало, чтобы выделить темы.", "fb_no_exits": "ни одна подписка пока не завершилась с причиной.",
        "fb_reason": "Причина ухода", "fb_churn_type": "Отток", "fb_exits": "Уходы",
        "fb_voluntary": "добровольный", "fb_involuntary": "вынужденный (платёж)", "fb_unknown": "неизвестно",
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
        "order_step": "{k}-й заказ", "total": "итого", "versions": "версии",
        "period_month": "месяц", "period_week": "неделя", "period_quarter": "квартал",
        "no_complete": "Пока недостаточно данных: в них нет ни одного завершённого периода ({period}), поэтому "
                       "показатели за период не рассчитать.",
        "cohort_short": "Пока недостаточно данных: ни одна когорта ещё не наблюдалась целый месяц после первой покупки.",
        "funnel_single": "Ни у одного клиента ещё нет второго завершённого заказа: где теряются клиенты, пока не видно.",
        "funnel_flat": "Между шагами «{a}» и «{b}» клиенты не теряются.",
        "rfm_thin": "Клиентов всего {customers}, а для оценок по квинтилям нужно не меньше {need} (по пять на уровень), "
                    "поэтому оценки — по фиксированным порогам: давность 5 — до {r5}, 4 — до {r4}, 3 — до {r3}, "
                    "2 — до {r2}, иначе 1; частота — число завершённых заказов (5 и больше — 5); сумма — траты "
                    "в типичных заказах (медианный заказ{median}), округлённо, от 1 до 5.",
        "na_section": "Раздел не построен: данных для него пока недостаточно.",
        "na_because": "Раздел не построен: {reason}",
        "na_details": "Подробности (сообщение анализа): {reason}",
        "feat_recency_days": "дней с последнего заказа", "feat_log1p_frequency": "число заказов (лог.)",
        "feat_log1p_spend": "сумма покупок (лог.)", "feat_tenure_days": "дней с первого заказа",
        "bench_crr_pct": "розница 63, медиа 84, одежда 60", "bench_repeat_purchase_rate_pct": "электронная коммерция 25–40",
        "bench_nps": "≥ 40 малый бизнес, ≥ 60 крупный", "bench_churn_pct": "~20 в год (средний бизнес)",
        "tbl_customers": "клиенты", "tbl_orders": "заказы", "tbl_order_items": "позиции заказов",
        "tbl_subscriptions": "подписки", "tbl_events": "события", "tbl_surveys": "опросы", "tbl_tickets": "обращения",
        "set_activity window": "окно активности", "set_timezone": "часовой пояс", "set_currency": "валюта",
        "set_engine": "движок",
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

    def plain(self, v) -> str:
        """A number with as many decimals as it has (99.9 → 99,9 in Russian; 99 → 99)."""
        return format_decimal(float(v), locale=self.locale)

    def noun(self, n, noun: str) -> str:
        """The noun (a key of :data:`NOUNS`) in the plural form its count takes."""
        return plural(self.lang, int(round(float(n))), NOUNS[self.lang][noun])

    def count(self, n, noun: str) -> str:
        """A whole count with its noun in the right plural form: "21 клиент", "1 customer"."""
        k = int(round(float(n)))
        return f"{self.num(k)} {self.noun(k, noun)}"

    def attribute(self, name: str) -> str:
        """A customer attribute (a column of the customers table) as the churn reasons name it."""
        return ATTRIBUTES.get(self.lang, {}).get(name, name.replace("_", " "))

    def reason_group(self, label: str) -> str:
        """A churn reason group's label; a customer attribute's group is named after its
        column (``acquisition channel``), worded here in the report's language."""
        return ATTRIBUTES.get(self.lang, {}).get(label.replace(" ", "_"), label)

    def segment(self, name: str) -> str:
        """An RFM segment's name in the report's language."""
        return SEGMENTS.get(self.lang, {}).get(name, (name, ""))[0]

    def segment_action(self, name: str, english: str) -> str:
        """What to do with an RFM segment, in the report's language (``english`` is the
        analytics' own wording, kept for English and for a segment without a translation)."""
        return SEGMENTS.get(self.lang, {}).get(name, ("", english))[1]


#: RFM segments (:data:`retentio.analytics.segments.SEGMENT_ACTIONS`): name and what to do, per language
SEGMENTS: dict[str, dict[str, tuple[str, str]]] = {
    "ru": {
        "champions": ("чемпионы", "поощрять: ранний доступ, просьба привести друзей; скидки не нужны"),
        "loyal": ("лояльные", "предлагать товары дороже и пригласить на следующий уровень программы лояльности"),
        "potential loyalist": ("потенциально лояльные",
                               "предложить членство или программу лояльности, рекомендовать товары"),
        "new": ("новые", "ввести в курс: приветственная серия писем, стимул ко второй покупке"),
        "promising": ("перспективные", "выстраивать отношения: полезные материалы и небольшое предложение на "
                                       "первую повторную покупку"),
        "need attention": ("требуют внимания", "ограниченное по времени личное предложение на основе прошлых покупок"),
        "about to sleep": ("засыпающие", "вернуть рекомендациями и умеренной скидкой"),
        "at risk": ("в зоне риска", "личное письмо с сильным предложением вернуться; спросить о причинах"),
        "can't lose them": ("нельзя потерять", "вернуть любой разумной ценой: звонок, лучшее предложение, опрос"),
        "hibernating": ("в спячке", "недорогие напоминания об ассортименте; не тратить лишнего"),
        "lost": ("потерянные", "последняя попытка вернуть, затем перестать тратить на них бюджет"),
    },
}

#: the customers table's own attributes (:data:`retentio.data.schema.CUSTOMERS`), per language
ATTRIBUTES: dict[str, dict[str, str]] = {
    "ru": {
        "acquisition_channel": "канал привлечения", "acquisition_cost": "стоимость привлечения",
        "signup_at": "дата регистрации", "birth_date": "дата рождения", "gender": "пол", "city": "город",
        "email": "эл. почта", "phone": "телефон", "consent_email": "согласие на письма",
        "consent_sms": "согласие на SMS",
    },
}

#: the report's definitions (:data:`retentio.analytics.metrics.DEFINITIONS`): name and text, per language
DEFINITIONS: dict[str, dict[str, tuple[str, str]]] = {
    "ru": {
        "active (orders)": ("активный (заказы)", "завершённый заказ в окне активности до момента измерения"),
        "active (subscriptions)": ("активный (подписки)", "момент покрыт оплачиваемой (не пробной) подпиской"),
        "CRR": ("CRR", "(клиенты на конец − новые) / клиенты на начало"),
        "churn": ("отток", "клиенты, потерянные за период / клиенты на начало"),
        "NRR": ("NRR", "(MRR на начало − ушедший − сокращение + расширение) / MRR на начало"),
        "NPS": ("NPS", "% промоутеров (9–10) − % критиков (0–6)"),
    },
}


def thin_rfm_note(f: Fmt, customers: int, window_days: int, english: str) -> str:
    """How RFM scored too few customers for quintiles (fixed thresholds,
    :func:`retentio.analytics.segments.thin_note` says it in English)."""
    from retentio.analytics.segments import MIN_CUSTOMERS_FOR_QUINTILES, RECENCY_FRACTIONS

    if f.lang == "en":
        return (english[0].upper() + english[1:] + ("" if english.endswith(".") else ".")) if english else ""
    median = re.search(r"the median order value, ([\d,.]+)\)", english)
    bounds = [f.count(window_days * x, "day") for x in RECENCY_FRACTIONS]
    return f.t["rfm_thin"].format(customers=customers, need=MIN_CUSTOMERS_FOR_QUINTILES, r5=bounds[0], r4=bounds[1],
                                  r3=bounds[2], r2=bounds[3],
                                  median=f", {f.money(float(median.group(1).replace(',', '')))}" if median else "")


def definition(f: Fmt, name: str, text: str) -> tuple[str, str]:
    """A definition's name and text in the report's language (the analytics' English otherwise)."""
    return DEFINITIONS.get(f.lang, {}).get(name, (name, text))


def setting(f: Fmt, name: str, value: str) -> tuple[str, str]:
    """A workspace setting as the data section lists it, in the report's language."""
    m = re.fullmatch(r"(\d+) days", value)
    if m:
        value = f.count(int(m.group(1)), "day")
    return f.t.get(f"set_{name}", name), value


# ----------------------------------------------------------------------------- sections without data
def _ru_tables(tables: str) -> str:
    return re.sub(r" (?:is|are)$", "", tables).replace(" or ", " или ").replace(" and ", " и ")


_NOT_IDENTIFIED = re.compile(r"these data cannot identify the (.+?) model: (.*)\. Its estimates would mean nothing")
_NOT_IDENTIFIED_WHY: list[tuple[re.Pattern, Callable[[Fmt, re.Match], str]]] = [
    (re.compile(r"(?:only )?([\d.]+) customers?(?:\(s\))? for (?:the model's )?(\d+) parameters"),
     lambda f, m: f"всего {f.count(float(m.group(1)), 'customer')} на {f.count(int(m.group(2)), 'parameter')} модели"),
    (re.compile(r"none of the ([\d.]+) customers bought again on a later day.*?(; all of them first bought on the "
                r"last day of the data.*)?"),
     lambda f, m: ("ни один клиент не купил повторно в другой день, а только повторные покупки отличают то, как "
                   "часто клиенты покупают, от того, как скоро они уходят"
                   + ("; к тому же все впервые купили в последний день данных" if m.group(2) else ""))),
]


def _not_identified(f: Fmt, m: re.Match) -> str:
    """A CLV model the data cannot identify (:class:`retentio.analytics.clv.identify.NotIdentifiable`)."""
    why = next((word(f, w) for pattern, word in _NOT_IDENTIFIED_WHY if (w := pattern.fullmatch(m.group(2)))), None)
    if "it needs more customers (hundreds" in m.string:
        needs = ("Нужно больше клиентов с повторными покупками (сотни, а не несколько) и более долгая история "
                 "заказов (месяцы, с покупками в разные дни).")
    elif "more repeat buyers whose spend per order differs" in m.string:
        needs = "Нужно больше повторных покупателей с разной суммой заказа."
    else:
        needs = "Нужно больше данных."
    return (f"по этим данным модель {m.group(1)} не оценить" + (f" ({why})" if why else "")
            + f": её оценки ничего бы не значили. {needs}")


#: the reasons the analytics give for a section without data, worded in Russian (the
#: English message is matched; one not listed here is shown as it is, as a detail)
_RU_REASONS: list[tuple[re.Pattern, Callable[[Fmt, re.Match], str]]] = [
    (re.compile(r"No campaign has run yet"), lambda f, m: "кампании ещё не запускались."),
    (re.compile(r"No campaign has customers to measure yet"),
     lambda f, m: "ни у одной кампании ещё нет клиентов для измерения: сначала запустите кампанию (кампания с "
                  "контрольной группой даёт группу для сравнения)."),
    (re.compile(r"No loyalty program runs yet"),
     lambda f, m: "программа лояльности ещё не работает (retentio loyalty program add, затем loyalty apply-orders)."),
    (re.compile(r"Gamma-Gamma needs at least a few customers with repeat purchases"),
     lambda f, m: "для оценки CLV (модель Gamma-Gamma) нужно хотя бы несколько клиентов с повторными покупками."),
    (re.compile(r"the training data hold only one class"),
     lambda f, m: "в обучающих данных только один класс: ушли все подходящие клиенты или не ушёл ни один — нужно "
                  "больше данных или другой горизонт."),
    (re.compile(r"no eligible customers at the calibration or test cutoff: the data are too short for a "
                r"(\d+)-day horizon \(need about (\d+) horizons\)"),
     lambda f, m: (f"на датах среза для калибровки и проверки модели нет подходящих клиентов: данных слишком мало "
                   f"для горизонта в {f.count(int(m.group(1)), 'day')} (нужно примерно "
                   f"{f.count(int(m.group(2)), 'horizon')}).")),
    (_NOT_IDENTIFIED, _not_identified),
    (re.compile(r"churn needs orders, subscriptions or events"),
     lambda f, m: "для модели оттока нужны заказы, подписки или события: сначала загрузите их."),
    (re.compile(r"no (.+?) loaded: .* needs them; load them first"),
     lambda f, m: f"не загружены данные, которые нужны разделу ({_ru_tables(m.group(1))}): сначала загрузите их."),
    (re.compile(r"no orders are loaded"), lambda f, m: "заказы не загружены (retentio load orders FILE)."),
]


_FEW_MATCHED = re.compile(r"only (\d+) members could be matched \(at least (\d+) are needed\): (\d+) joined at least "
                          r"(\d+) days before (\S+), (\d+) of them had no completed order before joining, (\d+) had "
                          r"no candidate non-member on their join day")


def effect_reason(f: Fmt, reason: str) -> str:
    """Why the loyalty program's effect could not be measured, in the report's language
    (:func:`retentio.analytics.loyalty_stats.retention_effect` gives it in English)."""
    m = _FEW_MATCHED.fullmatch(reason.strip())
    if f.lang == "en" or m is None:
        return reason
    matched, need, eligible, days, date, no_history, no_controls = m.groups()
    return f.t["loy_few"].format(matched=matched, need=need, eligible=eligible, days=f.count(int(days), "day"),
                                 date=date, no_history=no_history, no_controls=no_controls)


def why_unavailable(f: Fmt, reason: str) -> tuple[str, str]:
    """The takeaway and note of a section the data do not support, from the reason the
    analytics gave (English): as it is in English; in Russian worded when the reason is a
    known one, else a plain statement with the analytics' message as the note."""
    reason = reason.strip()
    if f.lang == "en":
        if not reason:
            return f.t["na_section"], ""
        text = reason[0].upper() + reason[1:]
        return (text if text.endswith((".", ")")) else text + "."), ""
    for pattern, word in _RU_REASONS:
        m = pattern.match(reason)
        if m:
            return f.t["na_because"].format(reason=word(f, m)), ""
    return f.t["na_section"], (f.t["na_details"].format(reason=reason) if reason else "")


# ----------------------------------------------------------------------------- churn reasons
def _ru_count(n: float, one: str, few: str, many: str) -> str:
    """A count with its noun in the Russian plural form CLDR gives for it (1 день, 2 дня, 5 дней)."""
    k = int(round(n))
    return f"{k} {plural('ru', k, {'one': one, 'few': few, 'many': many})}"


def reason_phrases(f: Fmt):
    """The churn reasons' phrasebook for the report's language (English is the analytics'
    own; the keys and values are those of :data:`retentio.analytics.churn.reasons.ENGLISH`)."""
    import numbers

    import numpy as np
    import pandas as pd

    from retentio.analytics.churn.reasons import ENGLISH, Phrasebook

    if f.lang == "en":
        return ENGLISH

    def day(v) -> str:
        return format_date(pd.Timestamp(v).date(), "short", locale=f.locale)

    def _value(v) -> str:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            return str(v)
        return format_decimal(float(v), locale=f.locale)

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
            "attribute": lambda name, value: f"{f.attribute(name)}: {_value(value)}",
        },
        groups={
            "gap": "перерыв в заказах", "orders": "меньше заказов", "spend": "траты снизились",
            "few": "мало заказов", "basket": "средний чек", "logins": "входы", "usage": "использование", "payments": "платежи",
            "plan": "понижение тарифа", "ended": "подписка закончилась", "payments_past": "платежи",
            "tickets": "обращения", "nps": "низкий NPS", "csat": "низкий CSAT", "returns": "возвраты",
            "discounts": "скидки", "alive": "P(alive)", "tenure": "новый клиент",
        },
    )
