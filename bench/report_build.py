"""Building the HTML report for the default demo (20,000 customers): the report alone
(with a churn model already trained, as after `retentio churn train`) and with training.

    python bench/report_build.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _report import table, write_section  # noqa: E402


def main() -> None:
    from retentio import Workspace
    from retentio.analytics.churn import train as churn
    from retentio.data.demo import generate
    from retentio.faces.report import build

    with tempfile.TemporaryDirectory(prefix="retentio-report-") as tmp:
        data = generate()
        ws = Workspace.init(Path(tmp) / "ws", timezone="Europe/Moscow", currency="RUB")
        for name, frame in data.tables().items():
            ws.load(name, frame)
        t0 = time.perf_counter()
        churn.train(ws)
        t1 = time.perf_counter()
        result = build(ws, Path(tmp) / "report.html")
        t2 = time.perf_counter()
        build(ws, Path(tmp) / "report_ru.html", lang="ru", png_dir=Path(tmp) / "png")
        t3 = time.perf_counter()
    rows = [
        {"step": "report (en), churn model already trained", "seconds": f"{t2 - t1:.1f}"},
        {"step": "churn model training (out-of-time test + 3-cutoff backtest)", "seconds": f"{t1 - t0:.1f}"},
        {"step": "report (ru) with every chart exported as PNG", "seconds": f"{t3 - t2:.1f}"},
    ]
    body = (table(rows) + f"\n\nDefault demo: 20,000 customers (seed 7). The HTML file is "
            f"{result['bytes'] / 1e6:.1f} MB with {result['charts']} charts and the Vega JavaScript inlined. "
            "Target: under a minute for the report.")
    write_section("Building the report", body)


if __name__ == "__main__":
    main()
