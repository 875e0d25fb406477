"""The process of the loyalty crash test (``tests/test_loyalty_crash.py``): one
``apply_orders`` run, which the test may kill with SIGKILL midway.

    python tests/loyalty_crash_worker.py TASK.json

The task file holds ``url`` (the store), ``orders`` (a parquet file of order_id,
customer_id, ordered_at, amount, status), ``program`` (the program's TOML), ``name``
(its name), ``from`` and ``to`` (ISO times) and ``batch_size``. The worker prints
``ready`` once the store is open, then the run's result as one JSON line.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path


def main(task_path: str) -> None:
    import pandas as pd

    from retentio.actions.loyalty.ledger import Ledger
    from retentio.actions.loyalty.orders import OrderInputs, apply_orders
    from retentio.actions.loyalty.programs import parse_program
    from retentio.data.store import Store

    task = json.loads(Path(task_path).read_text(encoding="utf-8"))
    orders = pd.read_parquet(task["orders"])
    program = parse_program(task["program"], f"{task['name']}.toml", task["name"])
    with Store.open(task["url"]) as store:
        print("ready", flush=True)
        result = apply_orders(Ledger(store, program, actor="crash-test"), OrderInputs(orders=orders),
                              dt.datetime.fromisoformat(task["from"]), dt.datetime.fromisoformat(task["to"]),
                              batch_size=int(task["batch_size"]))
    print(json.dumps(result.as_dict()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
