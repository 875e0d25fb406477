"""The process of the loyalty crash test (``tests/test_loyalty_crash.py``): one run on a
store, which the test may kill with SIGKILL midway.

    python tests/loyalty_crash_worker.py TASK.json

The task file holds ``url`` (the store), ``orders`` (a parquet file of order_id,
customer_id, ordered_at, amount, status), ``program`` (the program's TOML), ``name``
(its name), ``start``, ``mid`` and ``end`` (ISO times), ``batch_size`` and ``mode``:

* ``history`` — the first year (``start`` … ``mid``) as it was known at its end: the
  orders returned later were still completed. Then, at ``mid``, every other member
  who will return a first-year order redeems four fifths of the available points (so
  that some returns find their points spent).
* ``apply`` — ``apply_orders`` over the second year (``mid`` … ``end``) with the final
  statuses: the crash-tested run.

The worker prints ``ready`` once the store is open, then the run's result as one JSON
line.
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
    start, mid, end = (dt.datetime.fromisoformat(task[k]) for k in ("start", "mid", "end"))
    orders = pd.read_parquet(task["orders"])
    program = parse_program(task["program"], f"{task['name']}.toml", task["name"])
    with Store.open(task["url"]) as store:
        print("ready", flush=True)
        ledger = Ledger(store, program, actor="crash-test")
        if task["mode"] == "history":
            year = orders[orders["ordered_at"] < mid]
            as_known = year.assign(status=year["status"].replace({"returned": "completed"}))
            result = apply_orders(ledger, OrderInputs(orders=as_known), start, mid,
                                  batch_size=int(task["batch_size"])).as_dict()
            returning = sorted(set(year.loc[year["status"] == "returned", "customer_id"].astype(str)))
            result["redeem"] = 0
            for customer in returning[::2]:
                available = ledger.balance(customer, at=mid)["available"]
                if available >= 20:
                    ledger.redeem(customer, available - available // 5, key=f"redeem:{customer}", at=mid)
                    result["redeem"] += 1
        else:
            result = apply_orders(ledger, OrderInputs(orders=orders), mid, end,
                                  batch_size=int(task["batch_size"])).as_dict()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
