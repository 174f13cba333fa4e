"""Summarise a py-spy ``--format raw`` profile: self and total time per function.

py-spy record --format raw -o prof.txt -- python manage.py backup ...
python bench/pyspy_top.py prof.txt [N]
"""

from __future__ import annotations

import collections
import sys


def main() -> None:
    path = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    with open(path) as file:
        for line in file:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            samples += n
            frames = [
                f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].rstrip(")")
                for f in stack.split(";")
            ]
            own[frames[-1]] += n
            for frame in set(frames):
                total[frame] += n
    print(f"{samples} samples")
    print("-- self --")
    for frame, n in own.most_common(limit):
        print(f"{100 * n / samples:5.1f}%  {frame}")
    print("-- total --")
    for frame, n in total.most_common(limit):
        print(f"{100 * n / samples:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
