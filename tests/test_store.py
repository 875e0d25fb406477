"""The operational store on SQLite and on a real PostgreSQL server: migrations from empty
and from the previous revision with data, a failing migration that leaves the schema as
it was, constraints in the schema, and the model registry under concurrent writers."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from retentio import RetentioError
from retentio.data.store import MIGRATIONS, Store
from retentio.data.store.registry import (
    latest_model,
    model_versions,
    register_model,
    save_snapshot,
    snapshot_scores,
    snapshots,
)

NEXT = '''"""a test-only next revision"""
import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("model_versions", sa.Column("note", sa.String(100), nullable=False, server_default="none"))
    {fail}


def downgrade():
    op.drop_column("model_versions", "note")
'''


def migrations_with_next(tmp_path: Path, fail: bool) -> Path:
    """A copy of the real migrations plus a test revision 9001 after the newest (which
    fails midway when asked)."""
    target = tmp_path / f"migrations_{'fail' if fail else 'ok'}"
    shutil.copytree(MIGRATIONS, target, ignore=shutil.ignore_patterns("__pycache__"))
    body = NEXT.replace("{fail}", "raise RuntimeError('migration 9001 failed midway')" if fail else "pass")
    (target / "versions" / "9001_test_next.py").write_text(body.replace("{head}", HEAD))
    return target


def register(store: Store, n: int = 1) -> list[int]:
    return [register_model(store, "churn", "{}", settings={"n": i}, metrics={"roc_auc": 0.5 + i / 100},
                           data_fingerprint="f" * 64).version for i in range(n)]


#: the newest revision of the real migrations
HEAD = "0007"


def test_upgrade_from_empty_creates_the_schema(store_url):
    with Store.open(store_url) as store:
        assert store.revision() == store.head() == HEAD
        names = set(sa.inspect(store.engine).get_table_names())
        assert {"model_versions", "score_snapshots", "customer_scores", "alembic_version", "campaigns",
                "campaign_runs", "assignments", "outbox", "promo_codes", "suppressions", "uplift_models",
                "loyalty_operations", "loyalty_entries", "loyalty_lots", "loyalty_accounts", "loyalty_events",
                "survey_invitations", "survey_answers", "feedback_tasks", "feedback_task_notes"} <= names
        Store.open(store_url).close()  # opening again changes nothing
        assert store.revision() == HEAD


def test_the_campaign_tables_come_onto_a_store_holding_models(store_url):
    """0001 → the newest on a store with a registered model and a snapshot: both survive."""
    store = Store(store_url)
    store.upgrade("0001")
    register(store, 2)
    store.close()
    with Store.open(store_url) as store:
        assert store.revision() == HEAD
        assert [m.version for m in model_versions(store, "churn")] == [1, 2]
        with store.engine.connect() as c:
            assert c.exec_driver_sql("SELECT count(*) FROM assignments").scalar() == 0


def test_upgrade_from_the_previous_revision_keeps_the_data(store_url, tmp_path):
    with Store.open(store_url) as store:
        register(store, 2)
    with Store.open(store_url, migrations=migrations_with_next(tmp_path, fail=False)) as store:
        assert store.revision() == "9001"
        with store.engine.connect() as c:
            rows = c.exec_driver_sql("SELECT version, note FROM model_versions ORDER BY version").all()
        assert [tuple(r) for r in rows] == [(1, "none"), (2, "none")]
        assert [m.version for m in model_versions(store, "churn")] == [1, 2]


def test_a_failing_migration_leaves_the_previous_schema(store_url, tmp_path):
    with Store.open(store_url) as store:
        register(store, 1)
    with pytest.raises(RuntimeError, match="9001 failed midway"):
        Store.open(store_url, migrations=migrations_with_next(tmp_path, fail=True))
    with Store.open(store_url) as store:
        assert store.revision() == HEAD
        columns = {c["name"] for c in sa.inspect(store.engine).get_columns("model_versions")}
        assert "note" not in columns  # the column 9001 added before failing was rolled back
        assert [m.version for m in model_versions(store, "churn")] == [1]


@pytest.mark.parametrize("statement", [
    "INSERT INTO model_versions (kind, version, created_at, settings, metrics, data_fingerprint, payload) "
    "VALUES ('churn', 0, CURRENT_TIMESTAMP, '{}', '{}', 'f', '{}')",
    "INSERT INTO model_versions (kind, version, created_at, settings, metrics, data_fingerprint, payload) "
    "VALUES ('weather', 1, CURRENT_TIMESTAMP, '{}', '{}', 'f', '{}')",
    "INSERT INTO score_snapshots (model_version_id, as_of, created_at, data_fingerprint, customers, facts) "
    "VALUES (999, '2026-01-01', CURRENT_TIMESTAMP, 'f', 1, '{}')",
    "INSERT INTO customer_scores (snapshot_id, customer_id, probability, score, band, reasons) "
    "VALUES ({snapshot}, 'c1', 1.5, 50, 'high', '[]')",
    "INSERT INTO customer_scores (snapshot_id, customer_id, probability, score, band, reasons) "
    "VALUES ({snapshot}, 'c1', 0.5, 50, 'severe', '[]')",
])
def test_the_schema_itself_refuses_what_the_code_would(store_url, statement):
    """Another writer (psql, a second process) cannot store what Retentio would refuse."""
    with Store.open(store_url) as store:
        model = latest_model(store, "churn") or register_model(store, "churn", "{}", settings={}, metrics={},
                                                               data_fingerprint="f")
        snap = save_snapshot(store, model, dt.date(2026, 1, 1), "f", {}, pd.DataFrame(
            {"customer_id": ["c0"], "churn_probability": [0.2], "score": [20], "band": ["low"],
             "value_at_risk": [1.0], "reasons": [["no order for 40 days"]]}))
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as c:
            c.exec_driver_sql(statement.replace("{snapshot}", str(snap.id)))
        assert len(snapshot_scores(store, snap)) == 1


def test_concurrent_registrations_never_share_a_version(store_url):
    with Store.open(store_url) as store:
        versions: list[int] = []
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                versions.extend(register(store, 5))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(versions) == list(range(1, 21))
        assert latest_model(store, "churn").version == 20


def test_snapshots_round_trip_and_name_their_model(store_url):
    with Store.open(store_url) as store:
        m1, m2 = (register_model(store, "churn", "{}", settings={}, metrics={}, data_fingerprint="f") for _ in range(2))
        scores = pd.DataFrame({"customer_id": ["b", "a", "c"], "churn_probability": [0.9, 0.9, 0.1],
                               "score": [90, 90, 10], "band": ["high", "high", "low"],
                               "value_at_risk": [12.5, None, 0.0],
                               "reasons": [["no order for 90 days"], [], ["gave NPS 3 on 2026-01-02"]]})
        first = save_snapshot(store, m1, dt.date(2026, 3, 1), "f1", {"label": "orders"}, scores)
        save_snapshot(store, m2, dt.date(2026, 3, 1), "f1", {"label": "orders"}, scores.iloc[:1])
        back = snapshot_scores(store, first)
        assert list(back.customer_id) == ["a", "b", "c"]  # most likely first, ties by id
        assert back.set_index("customer_id").loc["b", "reasons"] == ["no order for 90 days"]
        assert pd.isna(back.set_index("customer_id").loc["a", "value_at_risk"])
        listed = snapshots(store)
        assert [(s.model_version, s.customers) for s in listed] == [(2, 1), (1, 3)]
        with pytest.raises(RetentioError, match="unknown churn band"):
            save_snapshot(store, m1, dt.date(2026, 3, 2), "f1", {}, scores.assign(band="severe"))


def test_an_unreachable_store_is_a_clear_error():
    with pytest.raises(RetentioError, match="cannot be reached"):
        Store.open("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(RetentioError, match="not a database URL"):
        Store.open("notadb://x")


def _open_when_released(url: str, barrier, results) -> None:
    barrier.wait()
    try:
        Store.open(url).close()
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put(repr(exc))


def test_many_processes_open_a_migrated_store_at_once(tmp_path):
    """Tills start together: opening a store already at the newest revision only reads it
    (it used to take SQLite's write lock while Alembic loaded its scripts, and some of 16
    processes then failed with "database is locked")."""
    import multiprocessing as mp

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    Store.open(url).close()
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(12), ctx.Queue()
    procs = [ctx.Process(target=_open_when_released, args=(url, barrier, results)) for _ in range(12)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert outcomes == ["ok"] * 12
