"""Run one command as a child process and report its wall time and peak memory.

    python bench/measure.py [--stdin FILE] [--stdout FILE] -- cmd arg...

prints one JSON line on stderr: {"seconds", "max_rss_mb", "returncode", "cpu_seconds"}.

The peak memory comes from ``os.wait4`` on that one child: the kernel's ``ru_maxrss``
of the child (and of any descendants it waited for, taking the largest), so no other
command of the benchmark can leak into the figure, unlike ``RUSAGE_CHILDREN`` of a
long-running parent, which is the maximum over every child it ever had.
``bench/run.py`` imports ``measure`` from here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass


@dataclass
class Measurement:
    seconds: float
    max_rss_mb: float
    returncode: int
    cpu_seconds: float = 0.0  # user + system time of the child (not the server's)


def measure(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    stdin: str | None = None,
    stdout: str | None = None,
    stderr=None,
) -> Measurement:
    """Run ``cmd``; return its wall time, peak RSS (MiB) and exit code."""
    stdin_file = open(stdin, "rb") if stdin else subprocess.DEVNULL  # noqa: SIM115
    stdout_file = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
    try:
        started = time.perf_counter()
        process = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdin=stdin_file, stdout=stdout_file, stderr=stderr
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        for file in (stdin_file, stdout_file):
            if hasattr(file, "close"):
                file.close()
    # Linux reports ru_maxrss in KiB.
    return Measurement(
        round(seconds, 3),
        round(usage.ru_maxrss / 1024, 1),
        process.returncode,
        round(usage.ru_utime + usage.ru_stime, 3),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stdin")
    parser.add_argument("--stdout")
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command given")
    result = measure(cmd, stdin=args.stdin, stdout=args.stdout)
    print(json.dumps(asdict(result)), file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
