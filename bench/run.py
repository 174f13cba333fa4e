"""Benchmark backup / restore / validatebackup against Django's and the vendor's tools.

    python bench/run.py --backend sqlite|postgres|mysql --rows 1000000 --runs 3
                        [--django-runs 1] [--skip-django-tools] [--skip-native]
                        [--change-fraction 0.001 0.01 1.0]
                        [--memory-rows 100000] [--workdir /tmp/backups_bench]

Creates a scratch database it owns (dropped and created again: ``backups_bench`` on
PostgreSQL and MariaDB, a file under --workdir for SQLite), fills it with the demo
shop (``seeddemo --rows N``), and times every command as a whole process of its own
(wall time, peak RSS of that process, file size). Every restore is checked for
exactness: ``validatebackup`` of the reference backup must exit 0 afterwards.
Prints a markdown table (medians) and writes JSON to bench/results/.
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import Measurement, measure  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MANAGE = [PYTHON, str(ROOT / "manage.py")]
DBTOOL = [PYTHON, str(ROOT / "bench" / "dbtool.py")]
FLOOR = [PYTHON, str(ROOT / "bench" / "floor.py")]
SCRATCH = "backups_bench"
PG = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
MY = ["-h", "127.0.0.1", "-P", "3306", "-u", "root"]


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.backend = args.backend
        self.work = Path(args.workdir) / args.backend
        self.work.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ)
        self.env["DATABASE_URL"] = self.database_url()
        # Production settings: DEBUG keeps a log of queries, which costs every tool.
        self.env["DJANGO_DEBUG"] = "0"
        # As installed: Python keeps the compiled modules (some environments turn
        # that off, which makes every command compile the app again).
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.results: dict[str, list[dict]] = {}
        self.notes: dict[str, object] = {}
        self.reference = self.work / "reference.jsonl.gz"

    # -- the scratch database ----------------------------------------------------

    def database_url(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.work / 'bench.sqlite3'}"
        if self.backend == "postgres":
            return f"postgres://postgres@127.0.0.1:5432/{SCRATCH}"
        return f"mysql://root@127.0.0.1:3306/{SCRATCH}"

    def sh(self, cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            cmd, env=self.env, cwd=ROOT, check=True, capture_output=True, **kwargs
        )

    def create_database(self, rows: int) -> None:
        log(f"creating the scratch database with {rows:,} rows")
        if self.backend == "sqlite":
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(str(self.work / "bench.sqlite3") + suffix).unlink(missing_ok=True)
        elif self.backend == "postgres":
            self.sh(
                [
                    "psql",
                    *PG,
                    "-q",
                    "-c",
                    f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)",
                ]
            )
            self.sh(["psql", *PG, "-q", "-c", f"CREATE DATABASE {SCRATCH}"])
        else:
            self.sh(
                [
                    "mariadb",
                    *MY,
                    "-e",
                    f"DROP DATABASE IF EXISTS {SCRATCH}; CREATE DATABASE {SCRATCH} "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
                ]
            )
        self.sh([*MANAGE, "migrate", "-v0"])
        started = time.perf_counter()
        self.sh([*MANAGE, "seeddemo", "--rows", str(rows), "--clear", "-v0"])
        self.notes[f"seed_seconds_{rows}"] = round(time.perf_counter() - started, 1)
        if self.backend == "postgres":
            # What autovacuum would do soon after a bulk load; every tool profits alike.
            self.sh(["psql", *PG, "-q", "-d", SCRATCH, "-c", "VACUUM ANALYZE"])

    def counts(self) -> dict[str, int]:
        return json.loads(self.sh([*DBTOOL, "count"]).stdout)

    # -- running and recording ---------------------------------------------------

    def run(
        self,
        name: str,
        cmd: list[str],
        *,
        stdin=None,
        stdout=None,
        size_of: Path | None = None,
        check: bool = True,
    ) -> dict:
        err = self.work / f"{name}.stderr"
        with open(err, "wb") as stderr:
            result: Measurement = measure(
                cmd,
                env=self.env,
                cwd=str(ROOT),
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
            )
        record = asdict(result)
        if size_of is not None and size_of.exists():
            record["size_mb"] = round(size_of.stat().st_size / 2**20, 1)
        log(
            f"{name}: {result.seconds:.2f} s, {result.max_rss_mb:.0f} MB, "
            f"exit {result.returncode}"
        )
        if check and result.returncode != 0:
            raise SystemExit(
                f"{name} failed (exit {result.returncode}):\n{err.read_text()[-3000:]}"
            )
        self.results.setdefault(name, []).append(record)
        return record

    def validate_exact(
        self,
        after: str,
        required: bool = True,
        against: Path | None = None,
        media: bool = True,
    ) -> None:
        """The database must equal the reference backup (or ``against``), table by
        table, and its media files too unless ``media`` is False."""
        out = self.work / "validate-check.json"
        record = measure(
            [
                *MANAGE,
                "validatebackup",
                str(against or self.reference),
                "--json",
                *([] if media else ["--no-media"]),
            ],
            env=self.env,
            cwd=str(ROOT),
            stdout=str(out),
        )
        if record.returncode != 0 and not required:
            report = json.loads(out.read_text())
            differing = {
                t["label"]: {
                    k: t[k] for k in ("missing", "extra", "changed", "problem") if t[k]
                }
                for t in report["tables"]
                if t["status"] != "match"
            }
            rows = sum(
                sum(v for v in d.values() if isinstance(v, int))
                for d in differing.values()
            )
            self.notes.setdefault("inexact", []).append(
                {"after": after, "rows_differing": rows, "tables": differing}
            )
            log(f"NOT exact after {after}: {rows} rows differ in {sorted(differing)}")
            return
        if record.returncode != 0:
            raise SystemExit(
                f"not exact after {after}: validatebackup exit {record.returncode}\n"
                + out.read_text()[-3000:]
            )
        self.notes.setdefault("exact_after", []).append(after)
        log(f"exact after {after}")

    def mutate(self) -> None:
        self.sh([*MANAGE, "seeddemo", "--mutate", "-v0"])

    def change(self, fraction: float, seed: int) -> list[dict]:
        """Change ``fraction`` of every table's rows (bench/changes.py), untimed."""
        return json.loads(self.sh([*DBTOOL, "change", str(fraction), str(seed)]).stdout)

    def restore_command(self, *options: str) -> list[str]:
        return [
            *MANAGE,
            "restore",
            str(self.reference),
            "--noinput",
            "--no-safety-backup",
            "--json",
            *options,
        ]

    # -- the three tools ---------------------------------------------------------

    def ours(self, rows: int, runs: int, suffix: str = "") -> None:
        for i in range(runs):
            target = self.reference if i == 0 else self.work / f"ours-{i}.jsonl.gz"
            self.run(
                f"backup{suffix}",
                [*MANAGE, "backup", "-o", str(target), "--json"],
                stdout=str(self.work / "backup.json"),
                size_of=target,
            )
            if i == 0:
                summary = json.loads((self.work / "backup.json").read_text())
                self.notes[f"rows{suffix}"] = summary["rows"]
        for _ in range(runs):
            self.run(
                f"validate{suffix}",
                [*MANAGE, "validatebackup", str(self.reference), "--json"],
                stdout=str(self.work / "validate.json"),
            )
        for _ in range(runs):
            self.mutate()
            # Every table reloaded, as the native tools do (and as restores did
            # before they compared first).
            self.run(
                f"restore{suffix}",
                self.restore_command("--full"),
                stdout=str(self.work / "restore.json"),
            )
            self.validate_exact(f"restore{suffix}")
        for _ in range(runs):
            # From where the native tools' restores start (native()): every table
            # emptied beforehand, untimed. The one above also empties them, inside
            # its transaction, which on MariaDB is most of the difference.
            self.sh([*DBTOOL, "empty-data"])
            self.run(
                f"restore_emptied{suffix}",
                self.restore_command("--full"),
                stdout=str(self.work / "restore.json"),
            )
            self.validate_exact(f"restore into emptied tables{suffix}")
        for _ in range(runs):
            self.mutate()
            self.run(
                f"restore_mutate{suffix}",
                self.restore_command(),
                stdout=str(self.work / "restore.json"),
            )
            self.validate_exact(f"restore after seeddemo --mutate{suffix}")

    def differential(self, fractions: list[float], runs: int, suffix: str = "") -> None:
        """Per fraction: change that much of every table, restore (comparing
        first); change again, restore --full. Each checked exact."""
        for fraction in fractions:
            for run in range(runs):
                for name, options in (
                    (f"restore@{fraction}{suffix}", ()),
                    (f"restore_full@{fraction}{suffix}", ("--full",)),
                ):
                    changed = self.change(fraction, run)
                    out = self.work / "restore.json"
                    self.run(name, self.restore_command(*options), stdout=str(out))
                    summary = json.loads(out.read_text())
                    self.notes.setdefault("changed", {}).setdefault(name, []).append(
                        {
                            "rows_touched": sum(
                                t["deleted"] + t["updated"] + t["inserted"]
                                for t in changed
                            ),
                            **{
                                key: summary.get(key)
                                for key in (
                                    "rows_deleted",
                                    "rows_inserted",
                                    "rows_updated",
                                    "tables_changed",
                                    "tables_unchanged",
                                )
                            },
                            "tables_reloaded": len(summary.get("reloaded", [])),
                        }
                    )
                    self.validate_exact(name)

    def undo(self, fractions: list[float], runs: int) -> None:
        """Per fraction, ×runs: change that much of every table and restore the
        reference (rows only, --no-media) from the backup storage with an undo
        file, then restore the undo file (checked exact against a backup of the
        changed state, untimed); the same restore with a whole safety backup; and
        without a safety backup."""
        storage = self.work / "storage"
        shutil.rmtree(storage, ignore_errors=True)
        storage.mkdir()
        shutil.copyfile(self.reference, storage / self.reference.name)
        before = self.work / "before-restore.jsonl.gz"
        out = self.work / "restore.json"
        restore = [*MANAGE, "restore", "--noinput", "--json"]
        env = self.env
        self.env = {**env, "BACKUPS_STORAGE_DIR": str(storage)}
        try:
            for fraction in fractions:
                for run in range(runs):
                    for case, undo_files, options in (
                        ("restore_undo_file", "1", ()),
                        ("restore_whole_safety", "0", ()),
                        ("restore_no_safety", "1", ("--no-safety-backup",)),
                    ):
                        name = f"{case}@{fraction}"
                        self.change(fraction, run)
                        self.env["BACKUPS_UNDO_FILES"] = undo_files
                        if case == "restore_undo_file":
                            self.sh([*MANAGE, "backup", "-o", str(before), "-v0"])
                        # The rows only: a restore that puts media files back
                        # keeps a whole safety backup (with them).
                        self.run(
                            name,
                            [*restore, self.reference.name, "--no-media", *options],
                            stdout=str(out),
                        )
                        self.validate_exact(name)
                        safety_name = json.loads(out.read_text())["safety_backup"]
                        if safety_name is None:
                            continue
                        safety = storage / safety_name
                        self.results[name][-1]["safety_mb"] = round(
                            safety.stat().st_size / 2**20, 2
                        )
                        if case == "restore_undo_file":
                            self.run(
                                f"undo@{fraction}",
                                [*restore, safety.name, "--no-safety-backup"],
                                stdout=str(out),
                            )
                            self.validate_exact(f"undo@{fraction}", against=before)
                            # Back to the reference for the next case (untimed).
                            self.sh(
                                [*restore, self.reference.name, "--no-safety-backup"]
                            )
                        safety.unlink()
        finally:
            self.env = env

    def floor(self, runs: int) -> None:
        """What any restore on this machine costs at least, to read figures by."""
        for _ in range(runs):
            self.run("floor_startup", [*FLOOR, "startup"])
            self.run("floor_read", [*FLOOR, "read", str(self.reference)])
            self.run("floor_loop", [*FLOOR, "loop"])

    def ours_with_safety_backup(self) -> None:
        backups = ROOT / "backups"
        before = set(backups.glob("safety-*")) if backups.exists() else set()
        self.mutate()
        self.run(
            "restore_with_safety_backup",
            [*MANAGE, "restore", str(self.reference), "--noinput", "--json", "--full"],
            stdout=str(self.work / "restore.json"),
        )
        self.validate_exact("restore with safety backup")
        for path in set(backups.glob("safety-*")) - before:
            path.unlink()

    def native_dump_command(self) -> tuple[list[str], Path]:
        """The vendor's dump: its command, and the file it writes (to stdout, but
        for PostgreSQL's -f)."""
        if self.backend == "postgres":
            dump = self.work / "native.pgdump"
            # -Fc: compressed custom format (gzip, default level), data only.
            command = [
                "pg_dump",
                *PG,
                "-d",
                SCRATCH,
                "-Fc",
                "--data-only",
                "-f",
                str(dump),
            ]
            return command, dump
        dump = self.work / "native.sql"
        if self.backend == "mysql":
            command = [
                "mariadb-dump",
                *MY,
                "--single-transaction",
                "--no-create-info",
                "--skip-triggers",
                SCRATCH,
            ]
            return command, dump
        return ["sqlite3", str(self.work / "bench.sqlite3"), ".dump --data-only"], dump

    def native_dumps(self, runs: int) -> None:
        """The vendor's dumps, right before our backups: the tables as freshly
        loaded for both. (After a series of restores, InnoDB's tables still hold
        the row versions it has yet to purge, which made mariadb-dump 2x slower.)"""
        command, dump = self.native_dump_command()
        for _ in range(runs):
            if self.backend == "postgres":
                self.run("native_dump", command, size_of=dump)
            else:
                self.run("native_dump", command, stdout=str(dump), size_of=dump)

    def native(self, runs: int) -> None:
        """The vendor's restores, of the dump native_dumps() wrote."""
        _command, dump = self.native_dump_command()
        if self.backend == "postgres":
            for _ in range(runs):
                self.sh([*DBTOOL, "empty-all"])
                # One transaction, foreign keys checked as rows arrive (pg_restore
                # orders the tables by their foreign keys), like our restore.
                self.run(
                    "native_restore",
                    [
                        "pg_restore",
                        *PG,
                        "-d",
                        SCRATCH,
                        "--data-only",
                        "--single-transaction",
                        "--exit-on-error",
                        str(dump),
                    ],
                )
                self.validate_exact("pg_restore")
        elif self.backend == "mysql":
            for _ in range(runs):
                self.sh([*DBTOOL, "empty-all"])
                self.run("native_restore", ["mariadb", *MY, SCRATCH], stdin=str(dump))
                self.validate_exact("mariadb < dump.sql")
            atomic = self.atomic_dump()
            for _ in range(runs):
                # From where our full restore starts: changed tables, full ones.
                self.mutate()
                self.run(
                    "native_atomic_restore",
                    ["mariadb", *MY, SCRATCH],
                    stdin=str(atomic),
                )
                # seeddemo --mutate changes media files too, which no dump holds.
                self.validate_exact(
                    "mariadb < dump.sql in one transaction", media=False
                )
            # The files back, untimed, for what comes after.
            self.sh(self.restore_command())
            self.validate_exact("restore after the native restores")
        else:
            # A data-only dump has no BEGIN/COMMIT: without them every INSERT would
            # be a transaction of its own. One transaction, like the others.
            script = self.work / "native-restore.sql"
            with open(script, "wb") as out, open(dump, "rb") as data:
                out.write(b"BEGIN;\n")
                shutil.copyfileobj(data, out)
                out.write(b"COMMIT;\n")
            path = str(self.work / "bench.sqlite3")
            for _ in range(runs):
                self.sh([*DBTOOL, "empty-all"])
                self.run(
                    "native_restore", ["sqlite3", "-bail", path], stdin=str(script)
                )
                self.validate_exact("sqlite3 < dump.sql")

    def atomic_dump(self) -> Path:
        """A MariaDB dump that restores as one transaction, as ours does: every
        table emptied by DELETE, then loaded, then one COMMIT (without the dump's
        LOCK TABLES and ALTER TABLE ... DISABLE KEYS, which would commit)."""
        script = self.work / "native-atomic.sql"
        tables = self.sh(
            [
                "mariadb",
                *MY,
                "-N",
                "-e",
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                f"TABLE_SCHEMA = '{SCRATCH}' AND TABLE_TYPE = 'BASE TABLE'",
            ]
        ).stdout.split()
        with open(script, "wb") as out:
            out.write(b"SET autocommit = 0;\nSET FOREIGN_KEY_CHECKS = 0;\n")
            for table in tables:
                out.write(b"DELETE FROM `" + table + b"`;\n")
            out.flush()
            subprocess.run(
                [
                    "mariadb-dump",
                    *MY,
                    "--single-transaction",
                    "--no-create-info",
                    "--skip-triggers",
                    "--skip-add-locks",
                    "--skip-disable-keys",
                    SCRATCH,
                ],
                stdout=out,
                check=True,
            )
            out.write(b"COMMIT;\n")
        return script

    def django_tools(self, runs: int) -> None:
        dump = self.work / "dumpdata.json"
        for _ in range(runs):
            # backups_app's own tables are left out, as every backup of ours does.
            self.run(
                "dumpdata",
                [*MANAGE, "dumpdata", "-e", "backups_app", "-o", str(dump)],
                size_of=dump,
            )
        # The documented way: flush, then loaddata. flush's post_migrate re-creates
        # content types and permissions in another order, so loaddata fails.
        self.sh([*MANAGE, "flush", "--noinput"])
        failed = self.run(
            "flush_loaddata", [*MANAGE, "loaddata", str(dump)], check=False
        )
        left = self.counts()
        left.pop("django_migrations", None)
        error = (self.work / "flush_loaddata.stderr").read_text().strip().splitlines()
        self.notes["flush_loaddata"] = {
            "returncode": failed["returncode"],
            "rows_left": sum(left.values()),
            "rows_left_by_table": {k: v for k, v in left.items() if v},
            "error": error[-1] if error else "",
        }
        log(
            f"flush + loaddata: exit {failed['returncode']}, "
            f"{sum(left.values())} rows left"
        )
        for _ in range(runs):
            self.sh([*DBTOOL, "empty"])
            self.run("loaddata", [*MANAGE, "loaddata", str(dump)])
            # dumpdata keeps milliseconds of datetimes only and renumbers the rows of
            # many-to-many tables: recorded, not fatal.
            self.validate_exact("empty + loaddata", required=False)

    def memory_run(self, rows: int) -> None:
        self.create_database(rows)
        self.ours(rows, 1, suffix=f"@{rows}")
        self.differential(self.args.change_fraction, 1, suffix=f"@{rows}")


def median(records: list[dict], key: str = "seconds") -> float | None:
    values = [r[key] for r in records if key in r]
    return statistics.median(values) if values else None


def peak(records: list[dict]) -> float | None:
    return max((r["max_rss_mb"] for r in records), default=None)


def report(bench: Bench, rows: int) -> tuple[str, dict]:
    r = bench.results
    native_names = {
        "postgres": (
            "pg_dump -Fc --data-only",
            "pg_restore --data-only --single-transaction",
        ),
        "mysql": ("mariadb-dump --no-create-info", "mariadb < dump.sql"),
        "sqlite": ("sqlite3 .dump --data-only", "sqlite3 < dump.sql"),
    }[bench.backend]
    labels = {
        "backup": "backup",
        "restore": "restore --full --no-safety-backup",
        "restore_emptied": "restore --full --no-safety-backup into emptied tables",
        "restore_mutate": "restore --no-safety-backup, after seeddemo --mutate",
        "restore_with_safety_backup": "restore --full (with safety backup)",
        "validate": "validatebackup",
        "dumpdata": "dumpdata",
        "loaddata": "(empty tables) + loaddata",
        "native_dump": native_names[0],
        "native_restore": native_names[1],
        "native_atomic_restore": "mariadb < dump.sql, as one transaction that "
        "first empties every table",
    }
    lines = [
        f"### {bench.backend}, {rows:,} rows "
        f"(medians of {bench.args.runs}; Django tools: {bench.args.django_runs})",
        "",
        "| command | seconds | rows/s | CPU s | peak RSS MB | file MB | runs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    medians = {}
    for name, label in labels.items():
        if name not in r:
            continue
        seconds = median(r[name])
        size = median(r[name], "size_mb")
        cpu = median(
            [x for x in r[name] if x.get("cpu_seconds") is not None], "cpu_seconds"
        )
        medians[name] = seconds
        lines.append(
            f"| {label} | {seconds:.2f} | {rows / seconds:,.0f} "
            f"| {'' if cpu is None else f'{cpu:.2f}'} | {peak(r[name]):.0f} "
            f"| {'' if size is None else f'{size:.1f}'} | {len(r[name])} |"
        )
    merged = bench.notes.get("merged")
    if merged:
        lines += [
            "",
            f"({', '.join(merged['keys'])}: from a separate run on the same "
            f"machine, {Path(merged['from']).name})",
        ]
    ratios = {}

    def ratio(name: str, a: str, b: str) -> None:
        if medians.get(a) and medians.get(b):
            ratios[name] = round(medians[a] / medians[b], 2)

    ratio("dumpdata / backup", "dumpdata", "backup")
    ratio("loaddata / restore", "loaddata", "restore")
    ratio("backup / native dump", "backup", "native_dump")
    ratio("restore / native restore", "restore", "native_restore")
    ratio(
        "restore into emptied tables / native restore",
        "restore_emptied",
        "native_restore",
    )
    ratio(
        "restore / native restore as one transaction",
        "restore",
        "native_atomic_restore",
    )
    ratio("validate / backup", "validate", "backup")
    ratio("restore with safety / restore", "restore_with_safety_backup", "restore")
    if ratios:
        lines += ["", "| ratio | value |", "| --- | ---: |"]
        lines += [f"| {k} | {v:.2f}x |" for k, v in ratios.items()]
    memory_rows = bench.args.memory_rows
    if memory_rows and f"backup@{memory_rows}" in r:
        lines += [
            "",
            f"| peak RSS MB | {memory_rows:,} rows | {rows:,} rows | growth |",
            "| --- | ---: | ---: | ---: |",
        ]
        names = ["backup", "restore", "validate"] + [
            f"restore@{fraction}" for fraction in bench.args.change_fraction
        ]
        for name in names:
            if f"{name}@{memory_rows}" not in r or name not in r:
                continue
            small, big = peak(r[f"{name}@{memory_rows}"]), peak(r[name])
            lines.append(f"| {name} | {small:.0f} | {big:.0f} | {big - small:+.0f} |")
    lines += differential_report(bench, medians)
    lines += undo_report(bench)
    lines += floor_report(bench)
    for inexact in bench.notes.get("inexact", []):
        lines += [
            "",
            f"Not exact after {inexact['after']}: {inexact['rows_differing']:,} "
            f"rows differ ({', '.join(sorted(inexact['tables']))})",
        ]
    failure = bench.notes.get("flush_loaddata")
    if failure:
        lines += [
            "",
            f"flush + loaddata as documented: exit {failure['returncode']}, "
            f"{failure['rows_left']:,} of {rows:,} rows left "
            f"({failure['error'][:200]})",
        ]
    return "\n".join(lines), {"medians": medians, "ratios": ratios}


def differential_report(bench: Bench, medians: dict) -> list[str]:
    """Restores after changing a fraction of every table, next to full reloads."""
    r = bench.results
    fractions = [f for f in bench.args.change_fraction if f"restore@{f}" in r]
    if not fractions:
        return []
    native = medians.get("native_restore")
    lines = [
        "",
        "| rows changed | restore s | CPU s | peak RSS MB | restore --full s "
        "| restore / --full | restore / native restore | tables reloaded whole |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fraction in fractions:
        ours, full = r[f"restore@{fraction}"], r.get(f"restore_full@{fraction}", [])
        seconds, full_seconds = median(ours), median(full)
        cpu = median(ours, "cpu_seconds")
        notes = bench.notes.get("changed", {}).get(f"restore@{fraction}", [])
        touched = statistics.median(n["rows_touched"] for n in notes) if notes else 0
        reloaded = (
            statistics.median(n["tables_reloaded"] for n in notes) if notes else 0
        )
        medians[f"restore@{fraction}"] = seconds
        lines.append(
            f"| {fraction:g} ({touched:,.0f} rows) | {seconds:.2f} | {cpu:.2f} "
            f"| {peak(ours):.0f} | {'' if full_seconds is None else f'{full_seconds:.2f}'} "
            f"| {'' if not full_seconds else f'{seconds / full_seconds:.2f}x'} "
            f"| {'' if not native else f'{seconds / native:.2f}x'} | {reloaded:g} |"
        )
    return lines


def undo_report(bench: Bench) -> list[str]:
    """Restores from the backup storage with their safety backup: an undo file,
    or a whole backup; and the restore of the undo file."""
    r = bench.results
    fractions = [f for f in bench.args.undo_fraction if f"undo@{f}" in r]
    if not fractions:
        return []
    lines = [
        "",
        "| rows changed | restore, no safety backup s | restore, undo file s "
        "| undo file MB | restore, whole safety backup s | safety backup MB "
        "| restore the undo file s | peak RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fraction in fractions:
        undo_file = r[f"restore_undo_file@{fraction}"]
        whole = r[f"restore_whole_safety@{fraction}"]
        none = r.get(f"restore_no_safety@{fraction}", [])
        undo = r[f"undo@{fraction}"]
        lines.append(
            f"| {fraction:g} | {'' if not none else f'{median(none):.2f}'} "
            f"| {median(undo_file):.2f} "
            f"| {median(undo_file, 'safety_mb'):.2f} | {median(whole):.2f} "
            f"| {median(whole, 'safety_mb'):.1f} | {median(undo):.2f} "
            f"| {max(peak(undo_file), peak(undo)):.0f} |"
        )
    return lines


def floor_report(bench: Bench) -> list[str]:
    r = bench.results
    labels = {
        "floor_startup": "python + django.setup()",
        "floor_read": "read the backup: gunzip and parse every row (one thread)",
        "floor_loop": "10,000,000 turns of a Python loop",
    }
    present = [name for name in labels if name in r]
    if not present:
        return []
    lines = ["", "| floor (this machine) | seconds | CPU s |", "| --- | ---: | ---: |"]
    for name in present:
        lines.append(
            f"| {labels[name]} | {median(r[name]):.2f} "
            f"| {median(r[name], 'cpu_seconds'):.2f} |"
        )
    return lines


def merge(bench: Bench, path: str) -> None:
    earlier = json.loads(Path(path).read_text())
    merged = [k for k in earlier["results"] if k not in bench.results]
    for key in merged:
        bench.results[key] = earlier["results"][key]
    for key in ("flush_loaddata", "inexact"):
        if key in earlier["notes"] and key not in bench.notes:
            bench.notes[key] = earlier["notes"][key]
    bench.notes["merged"] = {
        "from": path,
        "keys": merged,
        "commit": earlier.get("commit"),
    }


def render(args: argparse.Namespace) -> None:
    path = Path(args.render)
    data = json.loads(path.read_text())
    saved = argparse.Namespace(**data["args"])
    saved.workdir = "/tmp/backups_bench_render"
    bench = Bench(saved)
    bench.results, bench.notes = data["results"], data["notes"]
    if args.merge:
        merge(bench, args.merge)
    table, summary = report(bench, data["rows"])
    print(table)
    if args.merge:
        data.update(results=bench.results, notes=bench.notes, table=table, **summary)
        path.write_text(json.dumps(data, indent=2))
    shutil.rmtree(saved.workdir, ignore_errors=True)


def main() -> None:
    global SCRATCH
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend", choices=["sqlite", "postgres", "mysql"], required=True
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--django-runs", type=int, default=1)
    parser.add_argument("--skip-django-tools", action="store_true")
    parser.add_argument("--skip-native", action="store_true")
    parser.add_argument("--skip-safety-backup", action="store_true")
    parser.add_argument(
        "--skip-ours",
        action="store_true",
        help="Only the other tools (to run the slow ones apart), and --undo-fraction.",
    )
    parser.add_argument(
        "--merge",
        metavar="JSON",
        help="Take the results this run lacks (say dumpdata/loaddata) "
        "from an earlier results file; the table says so.",
    )
    parser.add_argument(
        "--change-fraction",
        type=float,
        nargs="+",
        default=[],
        metavar="FRACTION",
        help="Also restore after changing this fraction of every table's rows "
        "(0.001 0.01 1.0), comparing first and with --full.",
    )
    parser.add_argument(
        "--undo-fraction",
        type=float,
        nargs="+",
        default=[],
        metavar="FRACTION",
        help="Also restore from the backup storage after changing this fraction "
        "of every table's rows, with an undo file and with a whole safety backup, "
        "and restore the undo file.",
    )
    parser.add_argument(
        "--memory-rows",
        type=int,
        default=100_000,
        help="Also measure our peak RSS at this size (0: skip).",
    )
    parser.add_argument("--workdir", default="/tmp/backups_bench")
    parser.add_argument("--keep", action="store_true", help="Keep the work files.")
    parser.add_argument(
        "--database-name",
        default=SCRATCH,
        help="Scratch database on PostgreSQL/MariaDB (dropped first).",
    )
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="Print the table of an earlier results file (with --merge: "
        "merged, and the file rewritten); run nothing.",
    )
    args = parser.parse_args()
    SCRATCH = args.database_name

    if args.render:
        render(args)
        return
    bench = Bench(args)
    started = time.perf_counter()
    bench.create_database(args.rows)
    if not args.skip_native:
        bench.native_dumps(args.runs)
    if args.skip_ours:
        bench.sh([*MANAGE, "backup", "-o", str(bench.reference), "-v0"])
    else:
        bench.ours(args.rows, args.runs)
        bench.floor(args.runs)
        bench.differential(args.change_fraction, args.runs)
    bench.undo(args.undo_fraction, args.runs)
    if not args.skip_safety_backup and not args.skip_ours:
        bench.ours_with_safety_backup()
    if not args.skip_native:
        bench.native(args.runs)
    if not args.skip_django_tools:
        bench.django_tools(args.django_runs)
    if args.memory_rows:
        bench.memory_run(args.memory_rows)
    if args.merge:
        merge(bench, args.merge)
    table, summary = report(bench, args.rows)
    print(table)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = results / f"{args.backend}-{args.rows}-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "backend": args.backend,
                "rows": args.rows,
                "args": vars(args),
                "commit": commit,
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                },
                "total_seconds": round(time.perf_counter() - started, 1),
                "results": bench.results,
                "notes": bench.notes,
                **summary,
                "table": table,
            },
            indent=2,
        )
    )
    log(f"results: {out}")
    if not args.keep:
        shutil.rmtree(bench.work, ignore_errors=True)


if __name__ == "__main__":
    main()
