"""Rows fetched on a thread (db/prefetch.py): in order, errors raised to the caller,
nothing left running, and the connection usable after."""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.db import DatabaseError, connection
from django.test import SimpleTestCase, TestCase

from backups_app.db.backends import backend_for
from backups_app.db.prefetch import prefetched
from backups_app.db.tables import table_specs
from tests.testapp.models import Label


def fetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "backups_app-fetch"]


class PrefetchedTests(SimpleTestCase):
    def test_every_batch_in_order(self):
        assert list(prefetched(iter_batches(range(10)))) == list(range(10))
        assert fetch_threads() == []

    def test_an_error_of_the_fetch_is_raised_in_the_callers_thread(self):
        def failing():
            yield 1
            raise DatabaseError("the server went away")

        seen = []
        with pytest.raises(DatabaseError, match="the server went away"):
            for batch in prefetched(failing()):
                seen.append((batch, threading.current_thread().name))
        assert seen == [(1, threading.main_thread().name)]
        assert fetch_threads() == []

    def test_closed_early_the_batches_are_closed_on_their_thread(self):
        closed_on = []

        def batches():
            try:
                yield from range(1000)
            finally:
                closed_on.append(threading.current_thread().name)

        stream = prefetched(batches())
        assert next(stream) == 0
        stream.close()
        assert closed_on == ["backups_app-fetch"]
        assert fetch_threads() == []


def iter_batches(values):
    yield from values


@pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite has no server to wait for"
)
class ServerStreamTests(TestCase):
    databases = {"default"}

    def setUp(self):
        Label.objects.bulk_create(Label(name=f"label {n}") for n in range(25))
        (self.spec,) = [s for s in table_specs("default") if s.model is Label]
        self.backend = backend_for("default")

    def test_the_rows_of_a_stream_are_the_tables(self):
        rows = [
            row for batch in self.backend.stream_rows(self.spec, 4) for row in batch
        ]
        assert rows == list(Label.objects.order_by("pk").values_list("pk", "name"))
        assert fetch_threads() == []

    def test_a_stream_left_early_leaves_the_connection_usable(self):
        stream = self.backend.stream_rows(self.spec, 4)
        next(stream)
        stream.close()
        assert fetch_threads() == []
        assert Label.objects.count() == 25

    def test_a_database_error_on_the_fetch_thread_reaches_the_caller(self):
        with (
            mock.patch.object(
                type(self.backend), "select_sql", return_value="SELECT * FROM nowhere"
            ),
            pytest.raises(DatabaseError),
        ):
            list(self.backend.stream_rows(self.spec, 4))
        assert fetch_threads() == []
