import time
from contextlib import contextmanager

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS

from project.shop import files, seeding

DEFAULT_ROWS = 2_000


class Command(BaseCommand):
    help = "Fill the demo shop with realistic, reproducible data, or change some of it."

    def add_arguments(self, parser):
        parser.add_argument(
            "--rows",
            type=int,
            help=f"Rows in total across the shop tables (default {DEFAULT_ROWS:,}).",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help='Database alias to fill (default "default").',
        )
        parser.add_argument(
            "--seed", type=int, default=1, help="Random seed; same seed, same data."
        )
        parser.add_argument(
            "--clear",
            action="store_true",
            help="Delete every row of the shop tables first.",
        )
        parser.add_argument(
            "--mutate",
            action="store_true",
            help="Add, change and delete a few rows (and files) of the existing data "
            "instead.",
        )
        parser.add_argument(
            "--no-media",
            action="store_false",
            dest="media",
            help="Draw no product photos and write no invoice PDFs.",
        )

    def handle(self, *args, rows, database, seed, clear, mutate, media, **options):
        verbosity = options["verbosity"]
        if database not in settings.DATABASES:
            raise CommandError(f"Unknown database alias {database!r}.")
        tables = {m._meta.db_table for m in seeding.SHOP_MODELS}
        if seeding.shop_tables_in(database) != tables:
            raise CommandError(
                f"The shop tables do not exist in database {database!r}; "
                f"run 'manage.py migrate --database {database}' first."
            )
        if mutate:
            if rows is not None or clear:
                raise CommandError(
                    "--mutate cannot be combined with --rows or --clear."
                )
            self.mutate(database, seed, verbosity, media)
            return
        if rows is None:
            rows = DEFAULT_ROWS
        if rows < seeding.MIN_ROWS:
            raise CommandError(f"--rows must be at least {seeding.MIN_ROWS:,}.")
        if not clear and any(
            m._base_manager.using(database).exists() for m in seeding.SHOP_MODELS
        ):
            raise CommandError(
                f"The shop tables in database {database!r} are not empty; "
                "pass --clear to replace their rows."
            )

        started = time.perf_counter()
        with _queries_not_logged():
            summary = seeding.seed(rows, using=database, seed=seed, clear=clear)
            drawn = files.add_media(using=database) if media else None
        elapsed = time.perf_counter() - started

        if verbosity >= 2:
            for label, count in summary.rows.items():
                self.stdout.write(f"  {label}: {count:,}")
            created, reused = summary.users_created, summary.users_reused
            self.stdout.write(
                f"  auth users for owners: {created} created, {reused} reused"
            )
        if verbosity >= 1:
            total, n_tables = summary.total, len(summary.rows)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created {total:,} rows in {n_tables} tables in {elapsed:.1f} s."
                )
            )
        if verbosity >= 1 and drawn is not None:
            self.stdout.write(
                f"Drew {drawn.photos} product photos and wrote {drawn.invoices} "
                f"invoice PDFs ({drawn.bytes / 1024:.1f} KB) into the media storage."
            )

    def mutate(self, database, seed, verbosity, media):
        if not all(
            m._base_manager.using(database).exists() for m in seeding.MUTATED_MODELS
        ):
            raise CommandError(
                f"The shop in database {database!r} is empty; "
                "run 'manage.py seeddemo' first."
            )
        summary = seeding.mutate(using=database, seed=seed)
        changed = files.mutate_media(using=database, seed=seed) if media else None
        if verbosity >= 1:
            added, updated, deleted = summary.added, summary.updated, summary.deleted
            n_tables = len(summary.tables)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Changed the demo data: added {added} rows, updated {updated}, "
                    f"deleted {deleted}, in {n_tables} tables."
                )
            )
        if verbosity >= 1 and changed is not None:
            self.stdout.write(
                f"Changed the demo files: retouched {changed.changed} photos, lost "
                f"{changed.deleted} invoice, wrote {changed.added} new invoice."
            )


@contextmanager
def _queries_not_logged():
    """Switch DEBUG off for a bulk load, so that queries are not logged."""
    # With DEBUG on, a connection keeps the SQL of its last 9,000 statements (over
    # 100 MB of INSERTs here), and on SQLite each statement costs one more query to
    # render it: together they nearly double the time a million rows take.
    debug = settings.DEBUG
    settings.DEBUG = False
    try:
        yield
    finally:
        settings.DEBUG = debug
