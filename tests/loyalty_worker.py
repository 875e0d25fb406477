"""A process of the loyalty concurrency tests (started with multiprocessing's "spawn").

A worker is started once for a test module (starting a Python process that imports
SQLAlchemy and Alembic takes seconds on a busy 2-core machine) and serves one task per
test: it opens its own store and ledger, makes its connection, waits on the shared
barrier so that every process of the task starts its requests at the same moment, runs
its list of requests, closes the store and puts ``(index, outcomes)`` on the results
queue. An outcome is ``(status, value)``: ``("ok", result)``, ``("insufficient",
message)``, ``("conflict", message)``, ``("refused", message)`` (another
``LedgerError``) or ``("error", "Type: message")``.
"""

from __future__ import annotations

import traceback
from typing import Any

#: one request: the ledger's method, its positional and keyword arguments
Request = tuple[str, tuple, dict]
#: one task: the store's URL, the program's TOML and name, the requests, how many processes take part
Task = tuple[str, str, str, list[Request], int]


def serve(index: int, tasks: Any, results: Any, barriers: dict[int, Any]) -> None:
    """Say ``(index, "ready")`` once the imports are done, then run tasks until ``None`` comes."""
    import alembic.command  # noqa: F401 - imported now, not inside the first task
    import alembic.runtime.migration  # noqa: F401
    import alembic.script  # noqa: F401

    import retentio.actions.loyalty.ledger  # noqa: F401
    import retentio.data.store  # noqa: F401

    results.put((index, "ready"))
    while True:
        task = tasks.get()
        if task is None:
            return
        results.put((index, run(index, *task, barriers=barriers)))


def run(index: int, url: str, program_toml: str, program_name: str, requests: list[Request], parties: int, *,
        barriers: dict[int, Any]) -> list[tuple[str, Any]]:
    barrier = barriers[parties]
    try:
        from retentio.actions.loyalty.book import InsufficientPoints, LedgerError
        from retentio.actions.loyalty.ledger import KeyConflict, Ledger
        from retentio.actions.loyalty.programs import parse_program
        from retentio.data.store import Store

        store = Store.open(url)
        ledger = Ledger(store, parse_program(program_toml, f"{program_name}.toml", program_name),
                        actor=f"worker-{index}")
        with store.engine.connect() as connection:  # the connection is made (and pooled) before the start
            connection.exec_driver_sql("SELECT 1")
    except BaseException:  # noqa: BLE001 - a process that could not start reports why, and frees the others
        barrier.abort()
        return [("error", traceback.format_exc())]
    outcomes: list[tuple[str, Any]] = []
    try:
        barrier.wait(timeout=120)
        for method, args, kwargs in requests:
            try:
                outcomes.append(("ok", getattr(ledger, method)(*args, **kwargs)))
            except InsufficientPoints as exc:
                outcomes.append(("insufficient", str(exc)))
            except KeyConflict as exc:
                outcomes.append(("conflict", str(exc)))
            except LedgerError as exc:
                outcomes.append(("refused", str(exc)))
            except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
                outcomes.append(("error", f"{type(exc).__name__}: {exc}"))
    except BaseException:  # noqa: BLE001 - reported to the test, which fails on it
        outcomes.append(("error", traceback.format_exc()))
    finally:
        store.close()
    return outcomes
