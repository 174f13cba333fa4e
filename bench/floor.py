"""The floor: what this machine takes for work every restore does, or for plain Python.

    python bench/floor.py startup      # start Python and set up the demo project
    python bench/floor.py read FILE    # gunzip a backup and parse every row, one thread
    python bench/floor.py loop         # 10,000,000 turns of a Python loop

Printed beside the bench's figures (bench/run.py runs them) so that readers can see
how fast the machine was: the issue measured the same code on a CPU that runs
Python about three times slower than another.
"""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def startup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()


def read(path: str) -> None:
    import orjson

    rows = 0
    rest = b""
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(2 << 20):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if line.startswith(b"["):
                    orjson.loads(line)
                    rows += 1
    print(rows)


def loop() -> None:
    total = 0
    for number in range(10_000_000):
        total += number
    print(total)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "startup":
        startup()
    elif command == "read":
        read(sys.argv[2])
    elif command == "loop":
        loop()
    else:
        raise SystemExit(f"unknown command {command!r}")
