"""The ``retentio`` executable: Ctrl-C at any moment — while the command line is still
being imported, or while an error is being reported — ends like Ctrl-C anywhere else
(exit 130, no traceback)."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from retentio.faces.cli import main as run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
