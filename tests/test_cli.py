"""The command line: exit statuses, messages, and the JSON of every command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import run_cli, write

GOOD = """
order_id,customer_id,ordered_at,amount
o1,c1,2024-01-01,10
o2,c1,2024-01-05,12
o3,c2,2024-01-09,7
o4,c3,2024-02-01,3
o5,c3,2024-02-02,4
"""


def bad_on_line_7(tmp_path: Path) -> Path:
    lines = GOOD.strip().splitlines() + ["o9,c4,2024-02-31,5"]  # header is line 1 -> this is line 7
    return write(tmp_path / "bad.csv", "\n".join(lines) + "\n")


def test_bad_date_on_line_7_exits_2_and_changes_nothing(tmp_path):
    ws = str(tmp_path / "ws")
    assert run_cli("init", ws)[0] == 0
    assert run_cli("-w", ws, "load", "orders", str(write(tmp_path / "good.csv", GOOD)))[0] == 0
    code, out, _ = run_cli("-w", ws, "tables", "--json")
    before = json.loads(out)
    bad = bad_on_line_7(tmp_path)
    # the installed console script, as a user runs it: no traceback, status 2
    proc = subprocess.run([str(Path(sys.executable).parent / "retentio"), "-w", ws, "load", "orders", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "line 7" in proc.stderr
    assert "'ordered_at'" in proc.stderr and "2024-02-31" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    code, out, _ = run_cli("-w", ws, "tables", "--json")
    assert code == 0 and json.loads(out) == before
    assert [r["rows"] for r in before if r["table"] == "orders"] == [5]


def test_load_json_error_payload(tmp_path):
    ws = str(tmp_path / "ws")
    run_cli("init", ws)
    code, out, err = run_cli("-w", ws, "load", "orders", str(bad_on_line_7(tmp_path)), "--json")
    assert code == 2
    payload = json.loads(out)
    assert payload["total_errors"] == 1
    error = payload["errors"][0]
    assert error == {"source": str(tmp_path / "bad.csv"), "line": 7, "column": "ordered_at",
                     "value": "2024-02-31", "expected": error["expected"], "unit": "line"}
    assert error["expected"].startswith("a date-time such as 2024-03-01 14:30:00")


def test_init_load_tables_export_json(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    code, out, _ = run_cli("init", str(ws), "--timezone", "Europe/Moscow", "--currency", "RUB", "--json")
    assert code == 0
    assert json.loads(out) | {"workspace": None} == {"workspace": None, "engine": "duckdb", "timezone": "Europe/Moscow",
                                                     "currency": "RUB", "activity_window_days": 90}
    monkeypatch.setenv("RETENTIO_WORKSPACE", str(ws))  # no -w: the environment names the workspace
    code, out, _ = run_cli("load", "orders", str(write(tmp_path / "o.csv", GOOD)), "--json")
    report = json.loads(out)
    assert code == 0 and report["rows_stored"] == 5 and report["table"] == "orders"
    code, out, _ = run_cli("tables", "--json")
    rows = {r["table"]: r for r in json.loads(out)}
    assert rows["orders"] == {"table": "orders", "rows": 5, "customers": 3, "from": "2024-01-01", "to": "2024-02-02",
                              "source": "workspace"}
    code, out, _ = run_cli("export", "--to", str(tmp_path / "out"), "--json")
    written = {r["table"]: r for r in json.loads(out)}
    assert code == 0 and written["orders"]["rows"] == 5
    assert Path(written["orders"]["path"]).exists()
    code, out, _ = run_cli("export", "--to", str(tmp_path / "csv"), "--format", "csv", "--json")
    assert (tmp_path / "csv" / "orders.csv").read_text().count("\n") == 6


def test_human_output_is_a_table(tmp_path):
    ws = str(tmp_path / "ws")
    run_cli("init", ws)
    code, out, _ = run_cli("-w", ws, "tables")
    assert code == 0 and "orders" in out and "customers" in out


def test_usage_errors_exit_2(tmp_path):
    assert run_cli("load")[0] == 2
    assert run_cli("tables", "--no-such-option")[0] == 2
    code, _, err = run_cli("-w", str(tmp_path / "nowhere"), "tables")
    assert code == 2 and "not a Retentio workspace" in err
    ws = str(tmp_path / "ws")
    run_cli("init", ws)
    code, _, err = run_cli("-w", ws, "load", "orders", "x.csv", "--map", "nonsense")
    assert code == 2 and "their_column=our_column" in err
    code, _, err = run_cli("init", ws)
    assert code == 2 and "already a workspace" in err


def test_settings_errors_are_clear(tmp_path):
    ws = tmp_path / "ws"
    run_cli("init", str(ws))
    (ws / "retentio.toml").write_text('timezone = "Mars/Olympus"\n')
    code, _, err = run_cli("-w", str(ws), "tables")
    assert code == 2 and "unknown timezone" in err


def test_demo_json_and_csv_dir(tmp_path):
    code, out, _ = run_cli("demo", "-w", str(tmp_path / "d"), "--customers", "300", "--seed", "3",
                           "--csv-dir", str(tmp_path / "csv"), "--json")
    assert code == 0
    result = json.loads(out)
    tables = {r["table"]: r["rows"] for r in result["tables"]}
    assert tables["customers"] == 300 and all(tables[t] > 0 for t in tables)
    # the CSVs are the documented input format: they load back into a new workspace unchanged
    ws2 = str(tmp_path / "ws2")
    run_cli("init", ws2, "--timezone", "Europe/Moscow")
    for name in ("customers", "orders", "order_items", "subscriptions", "events", "surveys", "tickets"):
        code, _, err = run_cli("-w", ws2, "load", name, str(tmp_path / "csv" / f"{name}.csv"))
        assert code == 0, err
    code, out, _ = run_cli("-w", ws2, "tables", "--json")
    assert {r["table"]: r["rows"] for r in json.loads(out)} == tables


def test_version_and_help():
    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip()
    code, out, _ = run_cli("load", "--help")
    assert code == 0 and "--skip-invalid" in out
