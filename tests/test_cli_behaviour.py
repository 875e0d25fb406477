"""A command line that behaves: data never replaced or recreated silently, busy and
read-only workspaces explained, Ctrl-C honest, help that tells the truth, and the
README's Python example running as written. Real processes where it matters."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import database_held, run_cli, write

ORDERS = """
order_id,customer_id,ordered_at,amount
o1,c1,2024-01-01,10
o2,c1,2024-01-05,12
o3,c2,2024-01-09,7
"""
RETENTIO = [sys.executable, "-m", "retentio.faces.entry"]


def workspace_with_orders(tmp_path: Path) -> str:
    ws = str(tmp_path / "ws")
    assert run_cli("init", ws)[0] == 0
    code, _, err = run_cli("-w", ws, "load", "orders", str(write(tmp_path / "o.csv", ORDERS)))
    assert code == 0, err
    return ws


def stored_orders(ws: str) -> int:
    code, out, err = run_cli("-w", ws, "tables", "--json")
    assert code == 0, err
    return {r["table"]: r["rows"] for r in json.loads(out)}["orders"]


# ---------------------------------------------------------------------- nothing replaced or recreated silently


def test_demo_refuses_a_workspace_that_holds_data(tmp_path):
    ws = workspace_with_orders(tmp_path)
    code, _, err = run_cli("demo", "-w", ws, "--customers", "50")
    assert code == 2
    assert "already holds data" in err and "orders (3 rows)" in err and "--force" in err
    assert stored_orders(ws) == 3


def test_a_deleted_database_file_is_reported_not_recreated(tmp_path):
    ws = workspace_with_orders(tmp_path)
    (Path(ws) / "retentio.duckdb").unlink()
    code, _, err = run_cli("-w", ws, "tables")
    assert code == 2 and "data file" in err and "missing" in err
    assert not (Path(ws) / "retentio.duckdb").exists()


def test_report_out_into_a_missing_folder_is_refused_before_any_work(tmp_path):
    ws = workspace_with_orders(tmp_path)
    target = tmp_path / "no" / "such" / "report.html"
    code, _, err = run_cli("-w", ws, "report", "--out", str(target))
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "no").exists()


def test_init_refuses_an_unknown_currency_and_leaves_no_folder(tmp_path):
    target = tmp_path / "new" / "shop"
    code, _, err = run_cli("init", str(target), "--currency", "RUR")
    assert code == 2 and "ISO 4217" in err
    assert not (tmp_path / "new").exists()
    assert run_cli("init", str(target), "--currency", "RUB")[0] == 0


@pytest.mark.parametrize("args", [
    ("init", "{tmp}/w0", "--window", "0"),
    ("metrics", "--window", "0"),
    ("churn", "train", "--horizon", "0"),
    ("clv", "predict", "--horizon", "0"),
])
def test_zero_days_are_refused_not_replaced_by_a_default(tmp_path, args):
    ws = workspace_with_orders(tmp_path)
    args = [a.format(tmp=tmp_path) for a in args]
    code, _, err = run_cli(*(args if args[0] == "init" else ["-w", ws, *args]))
    assert code == 2 and "is not in the range x>=1" in err, err
    assert not (tmp_path / "w0").exists()


# ---------------------------------------------------------------------- busy, read-only, interrupted


def test_a_busy_workspace_names_the_process_and_exits_2(tmp_path):
    ws = workspace_with_orders(tmp_path)
    with database_held(Path(ws) / "retentio.duckdb") as holder:
        for args in (["tables"], ["load", "orders", str(tmp_path / "o.csv"), "--mode", "replace"]):
            code, _, err = run_cli("-w", ws, *args)
            assert code == 2, err
            assert "busy" in err and f"process {holder.pid}" in err and "internal error" not in err
    assert stored_orders(ws) == 3


def _read_only_mount(path: str) -> list[str] | None:
    """A command prefix that runs with ``path`` mounted read-only (root ignores file
    modes, so a private read-only bind mount does it), or None where that is not possible."""
    if os.geteuid() != 0:
        return []
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind -o ro {path} {path}"],
                           capture_output=True)
    return ["unshare", "-m"] if probe.returncode == 0 else None


def test_read_only_workspace_answers_reads_and_refuses_writes(tmp_path):
    ws = workspace_with_orders(tmp_path)
    prefix = _read_only_mount(ws)
    if prefix is None:
        pytest.skip("neither a non-root user nor a private mount namespace is available here")
    cli = " ".join(RETENTIO)
    if prefix:
        script = (f"mount --bind -o ro {ws} {ws} && {cli} -w {ws} tables --json > {tmp_path}/tables.json; "
                  f"echo $? > {tmp_path}/rc1; {cli} -w {ws} metrics --json > /dev/null; echo $? > {tmp_path}/rc2; "
                  f"{cli} -w {ws} load orders {tmp_path}/o.csv --mode replace 2> {tmp_path}/err3; "
                  f"echo $? > {tmp_path}/rc3")
        subprocess.run([*prefix, "sh", "-c", script], check=True, cwd=Path(__file__).parent.parent)
    else:  # pragma: no cover - a non-root developer
        for p in (Path(ws), *Path(ws).iterdir()):
            p.chmod(0o555 if p.is_dir() else 0o444)
        subprocess.run(["sh", "-c", f"{cli} -w {ws} tables --json > {tmp_path}/tables.json; echo $? > {tmp_path}/rc1;"
                        f"{cli} -w {ws} metrics --json > /dev/null; echo $? > {tmp_path}/rc2;"
                        f"{cli} -w {ws} load orders {tmp_path}/o.csv --mode replace 2> {tmp_path}/err3;"
                        f"echo $? > {tmp_path}/rc3"], check=True)
    rc = [int((tmp_path / f"rc{i}").read_text()) for i in (1, 2, 3)]
    assert rc == [0, 0, 2], (rc, (tmp_path / "err3").read_text())
    tables = {r["table"]: r["rows"] for r in json.loads((tmp_path / "tables.json").read_text())}
    assert tables["orders"] == 3
    assert "read-only" in (tmp_path / "err3").read_text()


def test_reads_run_beside_each_other(tmp_path):
    """Read-only commands open the database read-only: two at once both answer."""
    ws = workspace_with_orders(tmp_path)
    procs = [subprocess.Popen([*RETENTIO, "-w", ws, "metrics", "--json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in results]


def _wait_until_open(pid: int, db: Path, timeout: float = 60) -> None:
    """Wait until process ``pid`` has the database open: it is then past its start-up
    (a busy machine can take seconds to import) and inside the command."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(db.resolve()) for fd in os.listdir(f"/proc/{pid}/fd")):
                return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} never opened {db}")


def test_ctrl_c_during_a_load_stores_nothing_and_exits_130(tmp_path):
    ws = workspace_with_orders(tmp_path)
    big = tmp_path / "big.csv"
    with big.open("w") as fh:
        fh.write("order_id,customer_id,ordered_at,amount\n")
        fh.writelines(f"b{i},c{i % 5000},2024-0{1 + i % 9}-1{i % 9},{i % 997}.5\n" for i in range(1_200_000))
    interrupted = 0
    for delay in (0.2, 1.0, 2.0):
        proc = subprocess.Popen([*RETENTIO, "-w", ws, "load", "orders", str(big), "--mode", "replace"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_until_open(proc.pid, Path(ws) / "retentio.duckdb")
        time.sleep(delay)  # into the load: reading, validating or storing
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0 or "after the data had been stored" in err:
            # it had finished: then everything was stored, and it says so; put the 3 rows back
            assert proc.returncode in (0, 130), err
            assert stored_orders(ws) == 1_200_000
            assert run_cli("-w", ws, "load", "orders", str(tmp_path / "o.csv"), "--mode", "replace")[0] == 0
            continue
        assert proc.returncode == 130, err
        assert "interrupted, nothing stored" in err and "internal error" not in err
        assert stored_orders(ws) == 3
        interrupted += 1
    assert interrupted >= 1


# ---------------------------------------------------------------------- help that tells the truth


def test_help_shows_defaults_flags_and_real_choices():
    code, out, _ = run_cli("load", "--help")
    assert code == 0
    out = " ".join(out.split())
    assert "$RETENTIO_WORKSPACE, else the current folder" in out
    assert re.search(r"--json Write JSON", out)  # a flag, not "--json <bool>"
    assert "detected from all values" in out and "--mode [append|replace|upsert]" in out
    code, out, _ = run_cli("cohorts", "--help")
    assert "--period [week|month|quarter]" in out and "--mode [bounded|unbounded]" in out
    code, out, _ = run_cli("report", "--help")
    assert "--period [week|month|quarter]" in out and "--lang [en|ru]" in out
    fit = " ".join(run_cli("clv", "fit", "--help")[1].split())
    predict = " ".join(run_cli("clv", "predict", "--help")[1].split())
    for text in (fit, predict):
        assert re.search(r"--unit \[day\|week\|month\|quarter\|year\] [^-]*\[default: month\]", text), text


def test_choices_outside_the_list_are_usage_errors(tmp_path):
    ws = workspace_with_orders(tmp_path)
    for args in (("cohorts", "--period", "day"), ("report", "--period", "year"), ("clv", "predict", "--unit", "fortnight")):
        code, _, err = run_cli("-w", ws, *args)
        assert code == 2 and "is not one of" in err, err


def test_dates_are_read_as_loading_reads_them(tmp_path):
    ws = workspace_with_orders(tmp_path)
    iso = json.loads(run_cli("-w", ws, "metrics", "--from", "2024-01-01", "--to", "2024-01-31", "--json")[1])
    for first, last in (("01.01.2024", "31.01.2024"), ("20240101", "20240131")):
        code, out, err = run_cli("-w", ws, "metrics", "--from", first, "--to", last, "--json")
        assert code == 0, err
        assert json.loads(out) == iso
    code, _, err = run_cli("-w", ws, "metrics", "--from", "03/01/2024")
    assert code == 2 and "2024-03-01, 01.03.2024 or 20240301" in err


def test_help_answers_without_importing_the_analytics():
    """What makes --help slow is importing pandas, Ibis and DuckDB: it must not."""
    code = ("import sys; from retentio.faces.cli import main\n"
            "try:\n    main(['load', '--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('pandas', 'ibis', 'duckdb', 'numpy', 'pyarrow') if m in sys.modules)\n"
            "print(heavy, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip() == "[]"


# ---------------------------------------------------------------------- the README's Python example


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python"):]
    code = section[section.index("```python") + len("```python"):]
    code = code[:code.index("```")]
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the documented example, verbatim
    assert scope["bg"].converged_
    assert scope["crr"](start=1000, new=200, end=1100) == pytest.approx(0.9)
    assert (tmp_path / "shop" / "retentio.toml").exists()


def test_data_errors_name_options_as_each_face_spells_them(tmp_path):
    """The data layer names parameters; Python callers read decimal=',', the command line
    --decimal , (in its message and in its JSON)."""
    from retentio import RetentioError, Workspace

    path = write(tmp_path / "o.csv", "order_id,customer_id,ordered_at,amount\no1,c1,2024-01-01,\"1,200\"\n")
    with Workspace.init(tmp_path / "py") as ws, pytest.raises(RetentioError) as info:
        ws.load("orders", path)
    assert "decimal='.' or decimal=','" in str(info.value) and "--decimal" not in str(info.value)
    ws_cli = str(tmp_path / "cli")
    run_cli("init", ws_cli)
    code, out, err = run_cli("-w", ws_cli, "load", "orders", str(path), "--json")
    assert code == 2 and "--decimal . or --decimal ," in err and "decimal='.'" not in err
    assert "--decimal . or --decimal ," in json.loads(out)["error"]
    bad_date = write(tmp_path / "d.csv", "order_id,customer_id,ordered_at,amount\no1,c1,03/01/2024,5\n")
    code, out, _ = run_cli("-w", ws_cli, "load", "orders", str(bad_date), "--json")
    assert "--date-format %d/%m/%Y" in json.loads(out)["errors"][0]["expected"]
    # a file written for people words it plainly
    code, _, _ = run_cli("-w", ws_cli, "load", "orders", str(bad_date), "--skip-invalid", str(tmp_path / "r.csv"),
                         "--mode", "replace", "--force")
    assert code == 0 and "date format %d/%m/%Y" in (tmp_path / "r.csv").read_text()


def test_table_cells_are_shown_as_typed_never_as_markup(capsys):
    """Cells hold customers' words: Rich markup in them must neither break the table
    (a stray ``[/]`` raised MarkupError) nor turn into a terminal link."""
    from retentio.faces.output import print_table

    words = "promised [/] refund [link=http://evil.example]click[/link] [bold]now"
    print_table([{"comment": words, "n": 3}], title="t")
    assert words in capsys.readouterr().out
