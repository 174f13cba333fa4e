"""Column types of schemas we did not write: the field ``inspectdb`` guesses for
them (a TextField, mostly), or a custom field whose ``db_type()`` is the vendor's.

Each table is made with raw SQL and filled with values that are hard to keep
(``tests/legacy_tables.py``). A type that can be kept is backed up, found exact
by validation, changed, restored row by row and whole, and compared as plain SQL
reads it (PostgreSQL's ``::text``, MySQL's text and hex of the bytes, SQLite's
storage class and literal). A type that cannot be kept stops the backup with one
line naming the model, field and row, and leaves no file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management.base import CommandError
from django.db import connection, models
from django.test import override_settings

from backups_app.backup import create_backup
from backups_app.exceptions import RestoreError
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.legacy_tables import Column, execute, legacy_table, round_trip
from tests.utils import run_command

pytestmark = pytest.mark.django_db(transaction=connection.vendor == "mysql")

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's types"
)
on_mysql = pytest.mark.skipif(connection.vendor != "mysql", reason="MySQL's types")
on_sqlite = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's types")


class Money(models.DecimalField):
    """A custom field over PostgreSQL's money."""

    def db_type(self, connection):
        return "money"


def text() -> models.TextField:
    return models.TextField(null=True)


def char(length: int | None = None) -> models.CharField:
    return models.CharField(max_length=length, null=True)


def binary() -> models.BinaryField:
    return models.BinaryField(null=True)


MONEY = ["'0'", "'-92233720368547758.08'", "'92233720368547758.07'", "'12.345'"]
INTERVALS = [
    "'1 day'",
    "'1 mon 2 days 03:04:05.678'",
    "'-1 year'",
    "'00:00:00'",
    "'1 day -1 seconds'",
]

# What inspectdb writes over each: a TextField with "This field type is a guess."
# unless said otherwise.
POSTGRES_KEPT = {
    "money": Column("money", text(), MONEY, "'1'"),
    "money_custom_field": Column(
        "money", Money(max_digits=20, decimal_places=2, null=True), MONEY, "'1'"
    ),
    "inet": Column(
        "inet",
        models.GenericIPAddressField(null=True),  # inspectdb's
        ["'192.168.0.1/24'", "'::ffff:1.2.3.4'", "'2001:0db8::0001'", "'10.0.0.1/32'"],
        "'127.0.0.1'",
    ),
    "cidr": Column(
        "cidr",
        text(),
        ["'10.0.0.0/8'", "'2001:db8::/32'", "'192.168/16'"],
        "'1.0.0.0/8'",
    ),
    "macaddr": Column(
        "macaddr",
        text(),
        ["'08:00:2b:01:02:03'", "'0800.2b01.0203'", "'FF-FF-FF-FF-FF-FF'"],
        "'00:00:00:00:00:00'",
    ),
    "macaddr8": Column(
        "macaddr8",
        text(),
        ["'08:00:2b:01:02:03:04:05'", "'08002b:0102030405'", "'08:00:2b:01:02:03'"],
        "'00:00:00:00:00:00:00:00'",
    ),
    "bit": Column("bit(5)", text(), ["B'10101'", "B'00000'"], "B'01010'"),
    "varbit": Column("varbit", text(), ["B''", "B'1'", "B'10101010101'"], "B'0'"),
    "xml": Column(
        "xml",
        text(),
        [
            "'<a>x</a>'",
            "'text only'",
            # xml's output leaves out a declaration of version 1.0; its text keeps it.
            "'<?xml version=\"1.0\"?><a/>'",
            '\'<?xml version="1.0" encoding="UTF-8"?>\n<a/>\'',
            "''",
            "'  <a b=\"1\"  c=''2''/>  '",
        ],
        "'<b/>'",
    ),
    "point": Column(
        "point",
        text(),
        [
            "'(1,2)'",
            "'(1.5e300,-0)'",
            "'(NaN,Infinity)'",
            "'(0.1,0.30000000000000004)'",
        ],
        "'(0,0)'",
    ),
    "line": Column("line", text(), ["'{1,-1,0}'", "'[(0,0),(1,1)]'"], "'{1,1,1}'"),
    "lseg": Column(
        "lseg", text(), ["'[(0,0),(1,1)]'", "'(0.1,0.2),(3,4)'"], "'[(0,0),(0,1)]'"
    ),
    "box": Column("box", text(), ["'(1,1),(0,0)'", "'(0,0),(1,1)'"], "'(2,2),(0,0)'"),
    "path": Column(
        "path", text(), ["'[(0,0),(1,1)]'", "'((0,0),(1,1),(2,0))'"], "'[(0,0),(0,1)]'"
    ),
    "polygon": Column(
        "polygon", text(), ["'((0,0),(1,1),(2,0))'", "'(0,0)'"], "'((0,0),(0,1),(1,0))'"
    ),
    "circle": Column("circle", text(), ["'<(0,0),1>'", "'((1,2),0.5)'"], "'<(1,1),2>'"),
    "tsquery": Column(
        "tsquery",
        text(),
        [
            "'fat & rat'",
            "'fat & (rat | cat)'",
            "'!x'",
            "''",
            "'a <-> b'",
            "'''x y'':*AB'",
        ],
        "'z'",
    ),
    "interval_under_text": Column("interval", text(), INTERVALS, "'2 days'"),
    "interval_under_char": Column("interval", char(50), INTERVALS, "'2 days'"),
    "int4multirange": Column(
        "int4multirange",
        text(),
        ["'{}'", "'{[1,3),[5,7)}'", "'{[1,2]}'", "'{(,)}'"],
        "'{[9,10)}'",
    ),
    "nummultirange": Column(
        "nummultirange", text(), ["'{(,1.50],[2,)}'", "'{}'"], "'{[0,1)}'"
    ),
    "oid": Column("oid", text(), ["'0'", "'4294967295'", "'17'"], "'1'"),
    "pg_lsn": Column(
        "pg_lsn", text(), ["'0/0'", "'FFFFFFFF/FFFFFFFF'", "'16/B374D848'"], "'1/1'"
    ),
    "char": Column(
        "char(5)",
        char(5),  # inspectdb's
        ["'ab'", "''", "'abcde'", "'  a'"],
        "'x'",
        # The cast to text would drop the padding.
        shown=["format('[%s]', {})", "{} IS NULL"],
    ),
    "timetz": Column(
        "time with time zone",
        models.TimeField(null=True),  # inspectdb's
        [
            "'12:00:00+02'",
            "'23:59:59.999999-14:59'",
            "'00:00:00+00'",
            "'04:05:06.789+05:30:15'",
            "'24:00:00+01'",
        ],
        "'01:00:00+00'",
    ),
    "time_end_of_day": Column(
        "time",
        models.TimeField(null=True),  # Django's own TimeField, too
        ["'24:00:00'", "'00:00:00'", "'23:59:59.999999'"],
        "'01:00:00'",
    ),
    "enum": Column(
        "legacy_mood",
        text(),
        ["'sad'", "'happy'", "'o''k'"],
        "'sad'",
        before=["CREATE TYPE legacy_mood AS ENUM ('sad', 'o''k', 'happy')"],
        after=["DROP TYPE legacy_mood"],
    ),
    "domain": Column(
        "legacy_short",
        text(),
        ["'x'", "''", "'trailing  '"],
        "'y'",
        before=["CREATE DOMAIN legacy_short AS text CHECK (length(VALUE) < 20)"],
        after=["DROP DOMAIN legacy_short"],
    ),
    "text_array": Column(
        "text[]", text(), ['\'{a,"b c",NULL,"","NULL"}\'', "'{}'"], "'{x}'"
    ),
    "inet_array": Column(
        "inet[]", text(), ["'{10.0.0.1,::1,NULL}'", "'{{1.2.3.4},{5.6.7.8}}'"], "'{}'"
    ),
    "money_array": Column("money[]", text(), ["'{1.00,NULL,-3}'", "'{}'"], "'{}'"),
    "bit_array": Column("bit(3)[]", text(), ["'{101,000}'"], "'{}'"),
    "char_array": Column("char(3)[]", text(), ["'{a,\"  \"}'"], "'{}'"),
    "interval_array": Column("interval[]", text(), ["'{1 day,1 mon}'"], "'{}'"),
    "xml_array": Column(
        "xml[]", text(), ["ARRAY['<?xml version=\"1.0\"?><a/>'::xml]"], "'{}'"
    ),
    "macaddr_key": Column(
        "macaddr",
        models.TextField(),
        ["'08:00:2b:01:02:03'", "'00:00:00:00:00:01'", "'ff:00:00:00:00:00'"],
        "'00:00:00:00:00:02'",
        primary_key=True,
    ),
    "enum_key": Column(
        "legacy_size",
        models.TextField(),
        ["'small'", "'large'"],
        "'medium'",
        before=["CREATE TYPE legacy_size AS ENUM ('small', 'medium', 'large')"],
        after=["DROP TYPE legacy_size"],
        primary_key=True,
    ),
}

GEOMETRIES = [
    "ST_GeomFromText('POINT(1 2)')",
    "ST_GeomFromText('POINT(1 2)', 4326)",
    "ST_GeomFromText('LINESTRING(0 0,1 1,2 0)')",
    "ST_GeomFromText('GEOMETRYCOLLECTION EMPTY')",
]
BLOBS = ["X''", "X'00FF'", "'text'", "X'C3'"]

# The fields are inspectdb's, except a BinaryField or an IntegerField in place of
# its guess (a TextField over BIT, YEAR, BLOB and GEOMETRY, a CharField over BINARY),
# which gets bytes or a number, values no text field keeps.
MYSQL_KEPT = {
    "enum": Column("enum('a','b','c d','')", char(3), ["'a'", "'c d'", "''"], "'b'"),
    "set": Column("set('x','y','z')", char(5), ["'x,z'", "''", "'z,x'", "'y'"], "'x'"),
    "bit": Column("bit(9)", binary(), ["b'101'", "0", "511"], "1"),
    "bit_1": Column("bit(1)", binary(), ["0", "1"], "1"),
    "year": Column(
        "year", models.IntegerField(null=True), ["0", "1901", "2155", "'00'"], "2024"
    ),
    "binary": Column(
        "binary(4)", binary(), ["X'00'", "''", "'abcd'", "X'FF000000'"], "'x'"
    ),
    "varbinary": Column(
        "varbinary(10)", binary(), ["X'00'", "''", "'ab  '", "X'FF'"], "'x'"
    ),
    "tinyblob": Column("tinyblob", binary(), BLOBS, "'x'"),
    "blob": Column("blob", binary(), BLOBS, "'x'"),
    "geometry": Column(
        "geometry", binary(), GEOMETRIES, "POINT(0, 0)", shown=["HEX({})"]
    ),
    "point": Column(
        "point", binary(), GEOMETRIES[:2], "POINT(0, 0)", shown=["HEX({})"]
    ),
    "json": Column(
        "json",
        models.JSONField(null=True),
        ['\'{"b": 1, "a": [1e2, 1.0]}\'', "'null'", "'\"x\"'", "'  [ ]  '"],
        "'{}'",
    ),
    "decimal_65_30": Column(
        "decimal(65,30)",
        models.DecimalField(max_digits=65, decimal_places=30, null=True),
        [
            "'99999999999999999999999999999999999.999999999999999999999999999999'",
            "'-99999999999999999999999999999999999.999999999999999999999999999999'",
            "0",
            "'1e-30'",
            "'-0.5'",
        ],
        "1",
    ),
    "double": Column(
        "double",
        models.FloatField(null=True),
        [
            "1.7976931348623157e308",
            "-1.7976931348623157e308",
            "5e-324",
            "2.2250738585072014e-308",
            "-0e0",
            "0.30000000000000004",
        ],
        "1",
    ),
    # Single precision: six digits of text are not enough to give each value back.
    "float": Column(
        "float",
        models.FloatField(null=True),
        ["0.1", "3.4028234e38", "1.17549435e-38", "16777217", "0.123456789"],
        "1",
    ),
    "char_trailing_spaces": Column(
        "char(5)", char(5), ["'ab  '", "''", "'  a'", "'abcde'"], "'x'"
    ),
    "varchar_trailing_spaces": Column(
        "varchar(10)", char(10), ["'ab  '", "' '", "'a\\t'"], "'x'"
    ),
    "text_latin1": Column(
        "text character set latin1",
        text(),
        ["_latin1 X'80818D8F909DFF'", "'café'", "''", "'ab  '"],
        "'x'",
    ),
    "varchar_ascii": Column(
        "varchar(10) character set ascii", char(10), ["'abc'", "''"], "'x'"
    ),
    "inet6": Column(
        "inet6",
        char(),
        ["'::1'", "'::ffff:1.2.3.4'", "'2001:0DB8:0:0:0:0:0:1'", "'::'"],
        "'::2'",
    ),
    "inet4": Column("inet4", char(), ["'1.2.3.4'", "'0.0.0.0'"], "'4.3.2.1'"),
    "uuid": Column(
        "uuid",
        models.UUIDField(null=True),
        [
            "'123e4567-e89b-12d3-a456-426614174000'",
            "'123E4567E89B12D3A456426614174001'",
            "'00000000-0000-0000-0000-000000000000'",
        ],
        "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
    ),
    "uuid_under_char": Column(
        "uuid",
        char(),
        ["'123e4567-e89b-12d3-a456-426614174000'"],
        "'00000000-0000-0000-0000-000000000001'",
    ),
    "bigint_unsigned": Column(
        "bigint unsigned",
        models.PositiveBigIntegerField(null=True),
        ["18446744073709551615", "0"],
        "1",
    ),
}


@on_postgresql
@pytest.mark.parametrize("name", sorted(POSTGRES_KEPT))
def test_postgresql_keeps(name, tmp_path):
    with legacy_table(name, POSTGRES_KEPT[name]) as legacy:
        round_trip(legacy, tmp_path)


@on_postgresql
@override_settings(BACKUPS={"POSTGRES_COPY": False})
@pytest.mark.parametrize("name", ["xml", "money_array", "interval_under_text"])
def test_postgresql_keeps_without_copy(name, tmp_path):
    with legacy_table(name, POSTGRES_KEPT[name]) as legacy:
        round_trip(legacy, tmp_path)


@on_mysql
@pytest.mark.parametrize("name", sorted(MYSQL_KEPT))
def test_mysql_keeps(name, tmp_path):
    with legacy_table(name, MYSQL_KEPT[name]) as legacy:
        round_trip(legacy, tmp_path)


BYTES_HINT = (
    "give the field the column's type (a BinaryField for bytes), or exclude the model"
)
HINT = "give the field the column's type, or exclude the model"

# Refused: the column's values are not of the field's type, and the file would
# hold them as they are, which a reader refuses as damaged (or, bytes, cannot
# write). The first such value, its row and what the message says of it.
POSTGRES_REFUSED = {
    "numeric_under_integer": (
        Column("numeric(20,0)", models.IntegerField(null=True), ["1"], "2"),
        1,
        f"the stored value '1' is a string where an IntegerField holds a number; {HINT}",
    ),
}
MYSQL_REFUSED = {
    "year_under_text": (
        Column("year", text(), ["0", "1901"], "2024"),
        1,
        f"the stored value 0 is a number where a TextField holds a string; {HINT}",
    ),
    "bit_under_text": (
        Column("bit(9)", text(), ["b'101'"], "1"),
        1,
        f"the stored value b'\\x00\\x05' is bytes where a TextField holds a string; "
        f"{BYTES_HINT}",
    ),
    "binary_under_char": (
        Column("binary(4)", char(4), ["'ab'"], "'x'"),
        1,
        f"the stored value b'ab\\x00\\x00' is bytes where a CharField holds a "
        f"string; {BYTES_HINT}",
    ),
    "blob_under_text": (
        Column("blob", text(), ["'text only'"], "'x'"),
        1,
        f"the stored value b'text only' is bytes where a TextField holds a string; "
        f"{BYTES_HINT}",
    ),
    "tinyblob_under_text": (
        Column("tinyblob", text(), ["X'00'"], "'x'"),
        1,
        f"the stored value b'\\x00' is bytes where a TextField holds a string; "
        f"{BYTES_HINT}",
    ),
    "geometry_under_text": (
        Column("geometry", text(), ["ST_GeomFromText('POINT(1 2)')"], "POINT(0, 0)"),
        1,
        "the stored value b'\\x00\\x00\\x00\\x00\\x01\\x01\\x00\\x00\\x00\\x00\\x00"
        f"\\x00\\x00\\x0... is bytes where a TextField holds a string; {BYTES_HINT}",
    ),
    "tinyint_1_under_boolean": (
        Column("tinyint(1)", models.BooleanField(null=True), ["0", "1", "2"], "1"),
        3,
        f"the stored value 2 is a number where a BooleanField holds a boolean; {HINT}",
    ),
}
SQLITE_REFUSED = {
    # A declared type of NUMERIC affinity keeps numbers of the text written.
    "numeric_affinity_under_text": (
        Column("money", text(), ["'abc'", "'12.50'"], "'x'"),
        2,
        f"the stored value 12.5 is a number where a TextField holds a string; {HINT}",
    ),
    "blob_under_text": (
        Column("text", text(), ["'abc'", "X'00FF'"], "'x'"),
        2,
        f"the stored value b'\\x00\\xff' is bytes where a TextField holds a string; "
        f"{BYTES_HINT}",
    ),
    "text_under_integer": (
        Column("integer", models.IntegerField(null=True), ["1", "'abc'"], "2"),
        2,
        f"the stored value 'abc' is a string where an IntegerField holds a number; "
        f"{HINT}",
    ),
    # The declared type Django gives a BooleanField; sqlite3's converter for it
    # made False of 't' and 2.
    "text_under_boolean": (
        Column("bool", models.BooleanField(null=True), ["1", "0", "'t'"], "1"),
        3,
        f"the stored value 't' is a string where a BooleanField holds a boolean; "
        f"{HINT}",
    ),
    "number_under_boolean": (
        Column("bool", models.BooleanField(null=True), ["1", "2"], "1"),
        2,
        f"the stored value 2 is a number where a BooleanField holds a boolean; {HINT}",
    ),
}


def assert_backup_refused(name: str, case: tuple, directory: Path) -> None:
    column, pk, problem = case
    with legacy_table(name, column) as legacy:
        with pytest.raises(CommandError) as excinfo:
            run_command("backup", "--output", str(directory / "refused.jsonl.gz"))
        assert (str(excinfo.value), excinfo.value.returncode) == (
            f"{legacy.label}.value, pk {pk}: {problem}",
            1,
        )
        assert list(directory.iterdir()) == []


@on_postgresql
@pytest.mark.parametrize("name", sorted(POSTGRES_REFUSED))
def test_postgresql_refuses(name, tmp_path):
    assert_backup_refused(name, POSTGRES_REFUSED[name], tmp_path)


@on_mysql
@pytest.mark.parametrize("name", sorted(MYSQL_REFUSED))
def test_mysql_refuses(name, tmp_path):
    assert_backup_refused(name, MYSQL_REFUSED[name], tmp_path)


@on_sqlite
@pytest.mark.parametrize("name", sorted(SQLITE_REFUSED))
def test_sqlite_refuses(name, tmp_path):
    assert_backup_refused(name, SQLITE_REFUSED[name], tmp_path)


@on_mysql
def test_mysql_enum_error_value_stops_the_restore(tmp_path):
    # The empty string a lax sql_mode stores for a value the ENUM does not list:
    # kept by the backup, but no INSERT in strict mode can store it again.
    column = Column("enum('a','b')", char(1), ["'a'", "'zz'"], "'b'", sql_mode="")
    with legacy_table("enum_error", column) as legacy:
        file = tmp_path / "enum.jsonl.gz"
        create_backup(file)
        assert validate_backup(file).ok
        legacy.change()
        changed = legacy.stored()
        with pytest.raises(RestoreError) as excinfo:
            restore_backup(file, safety_backup=False, full=True)
        assert str(excinfo.value) == (
            f"Restore of {file} failed and was rolled back: {legacy.label}.value, pk 2: "
            "(1265, \"Data truncated for column 'value' at row 1\")"
        )
        assert legacy.stored() == changed


UNFIT = {
    "mysql": (Column("tinyint(1)", models.BooleanField(null=True), ["1"], "1"), "2"),
    "sqlite": (Column("bool", models.BooleanField(null=True), ["1"], "1"), "'t'"),
}


@pytest.mark.skipif(
    connection.vendor not in UNFIT, reason="a column of the field's type"
)
def test_a_restore_replaces_a_value_no_backup_can_hold(tmp_path):
    """Compared with a file, such a value only differs; only a backup of it (the
    safety backup) is refused."""
    column, unfit = UNFIT[connection.vendor]
    with legacy_table("unfit", column) as legacy:
        file = tmp_path / "fit.jsonl.gz"
        create_backup(file)
        before = legacy.stored()
        execute(f"UPDATE legacy_unfit SET value = {unfit} WHERE id = 1")
        report = validate_backup(file)
        (table,) = [t for t in report.tables if not t.matches]
        assert (table.label, table.changed) == (legacy.label, 1)
        with pytest.raises(RestoreError) as excinfo:
            restore_backup(file, safety_backup=True)
        message = str(excinfo.value)
        assert message.startswith(
            f"Restore of {file} failed and was rolled back: no safety backup could "
            f"be taken: {legacy.label}.value, pk 1: "
        ), message
        assert message.endswith("; restore without one to go on")
        assert legacy.stored() != before
        restore_backup(file, safety_backup=False)
        assert legacy.stored() == before
