"""The foreign key check after a load finds every row without a parent.

On MySQL and MariaDB a key that many rows share is first probed once per distinct
value (``integrity.orphan_value_sql``, ``MySQLBackend.may_have_orphans``); the
query that names the first such row runs only when the probe finds one.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from backups_app.db.backends import backend_for
from backups_app.db.integrity import ForeignKey, orphan_value_sql
from backups_app.db.tables import table_specs
from tests.testapp.models import Author, Book, Profile


def key_of(model, column: str) -> ForeignKey:
    backend = backend_for("default")
    return next(
        fk
        for fk in backend.foreign_keys(table_specs("default"))
        if fk.table == model._meta.db_table and fk.column == column
    )


class OrphanValueTests(TestCase):
    databases = {"default"}

    def setUp(self):
        author = Author.objects.create(name="Here")
        self.books = [
            Book.objects.create(title=f"Book {n}", author=author) for n in range(3)
        ]
        self.key = key_of(Book, "author_id")

    def point_at(self, book: Book, author_id: int) -> None:
        with connection.constraint_checks_disabled(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Book._meta.db_table} SET author_id = %s WHERE id = %s",
                [author_id, book.pk],
            )

    def orphan_value(self):
        with connection.cursor() as cursor:
            cursor.execute(orphan_value_sql(self.key, connection.ops.quote_name))
            return list(cursor.fetchall())

    def test_a_shared_key_is_known_to_be_shared_and_a_one_to_one_is_not(self):
        assert self.key.shared
        assert not key_of(Profile, "user_id").shared

    def test_no_value_when_every_row_has_its_parent(self):
        assert self.orphan_value() == []
        # Only MySQL probes first; elsewhere the row-by-row search always runs.
        expected = connection.vendor != "mysql"
        with connection.cursor() as cursor:
            assert backend_for("default").may_have_orphans(cursor, self.key) is expected

    def test_the_value_no_parent_holds_is_found(self):
        self.point_at(self.books[1], 987654)
        # Put right before the test case checks the constraints at its end.
        self.addCleanup(self.point_at, self.books[1], self.books[0].author_id)
        assert self.orphan_value() == [(987654,)]
        with connection.cursor() as cursor:
            assert backend_for("default").may_have_orphans(cursor, self.key)

    def test_a_one_to_one_key_is_searched_row_by_row_without_a_probe(self):
        Profile.objects.create(user=User.objects.create(username="someone"))
        backend, key = backend_for("default"), key_of(Profile, "user_id")
        with connection.cursor() as cursor, CaptureQueriesContext(connection) as seen:
            assert backend.may_have_orphans(cursor, key)
        assert len(seen) == 0
