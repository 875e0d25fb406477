"""Words of the Data page, English and Russian (same keys in both)."""

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "data_title": "Data", "data_tables": "Tables loaded", "data_table": "Table", "data_rows": "Rows",
        "data_customers": "Customers", "data_from": "From", "data_to": "To", "data_source": "Source",
        "data_not_loaded": "not loaded", "data_upload": "Upload a file", "data_mode": "Mode",
        "data_mode_append": "append (new rows only)", "data_mode_replace": "replace the whole table",
        "data_mode_upsert": "upsert (update matching ids)", "data_file": "File",
        "data_upload_hint": "CSV, Excel, ODS, Parquet or JSON Lines. The file is checked first: one invalid "
                            "value and nothing is stored.",
        "data_upload_confirm": "Load this file into the table?", "data_load": "Load",
        "data_loaded": "Loaded into {table}: {stored} rows stored of {read} read ({updated} updated).",
        "data_nothing_stored": "Nothing was stored. Fix the file and upload it again.",
        "data_line": "Line", "data_column": "Column", "data_value": "Value", "data_expected": "Expected",
        "data_more_errors": "… and {n} more", "data_history": "Load history",
        "data_last_refresh": "Last refresh: {at}", "data_when": "When", "data_read": "Read",
        "data_stored": "Stored", "data_rejected": "Rejected", "data_no_history": "Nothing loaded yet.",
    },
    "ru": {
        "data_title": "Данные", "data_tables": "Загруженные таблицы", "data_table": "Таблица", "data_rows": "Строки",
        "data_customers": "Клиенты", "data_from": "С", "data_to": "По", "data_source": "Источник",
        "data_not_loaded": "не загружена", "data_upload": "Загрузить файл", "data_mode": "Режим",
        "data_mode_append": "добавить (только новые строки)", "data_mode_replace": "заменить всю таблицу",
        "data_mode_upsert": "обновить (совпадающие id) и добавить", "data_file": "Файл",
        "data_upload_hint": "CSV, Excel, ODS, Parquet или JSON Lines. Сначала файл проверяется: при хотя бы "
                            "одном неверном значении ничего не сохраняется.",
        "data_upload_confirm": "Загрузить этот файл в таблицу?", "data_load": "Загрузить",
        "data_loaded": "Загружено в {table}: сохранено строк — {stored} из {read} прочитанных (обновлено: {updated}).",
        "data_nothing_stored": "Ничего не сохранено. Исправьте файл и загрузите его снова.",
        "data_line": "Строка", "data_column": "Столбец", "data_value": "Значение", "data_expected": "Ожидалось",
        "data_more_errors": "… и ещё {n}", "data_history": "История загрузок",
        "data_last_refresh": "Последнее обновление: {at}", "data_when": "Когда", "data_read": "Прочитано",
        "data_stored": "Сохранено", "data_rejected": "Отклонено", "data_no_history": "Пока ничего не загружено.",
    },
}
