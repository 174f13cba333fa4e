"""Every value of every field type comes back as the database stored it, on each vendor.

Property tests (hypothesis): random values of one field type, boundaries included,
are written to ``default``, backed up, restored into ``other``, and the stored values
are compared with raw SQL (not the ORM, not backups_app.fileformat.codec). The file is decoded
independently, with the decoder of docs/format.md and the standard library, and
compared with what the database holds. Rows of every primary key type are checked
to come in the format's order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import connections
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from backups_app.backup import create_backup
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.valuesapp.models import (
    AutoKey,
    BigAutoKey,
    CharKey,
    CharParentChild,
    CompositeKey,
    DateKey,
    DecimalKey,
    IPKey,
    SmallAutoKey,
    UUIDKey,
    UUIDParentChild,
    Value,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"
VENDOR = connections["default"].vendor
UTC = dt.UTC
EXAMPLES = 25
SLOW_EXAMPLES = 300


def docs_decoder():
    """Return ``decode`` from docs/format.md, run as written (standard library only)."""
    blocks = re.findall(
        r"```python\n(.*?)```", (DOCS / "format.md").read_text(), re.DOTALL
    )
    (block,) = [block for block in blocks if "def decode(" in block]
    namespace: dict[str, Any] = {}
    exec(compile(block, "docs/format.md", "exec"), namespace)  # noqa: S102
    return namespace["decode"]


decode = docs_decoder()


def other_apps() -> list[str]:
    return [
        config.label for config in apps.get_app_configs() if config.label != "valuesapp"
    ]


def all_but_values() -> list[str]:
    """What a backup of the Value table alone leaves out."""
    return other_apps() + [
        model._meta.label
        for model in apps.get_app_config("valuesapp").get_models()
        if model is not Value
    ]


def read_file(path: Path) -> tuple[dict, dict[str, tuple[list[str], list[list]]]]:
    """Return a backup's header and ``{label: (columns, rows)}``, by json alone."""
    header, sections, current = None, {}, None
    with open(path, "rb") as lines:
        for line in lines:
            value = json.loads(line)
            if isinstance(value, list):
                sections[current][1].append(value)
            elif value["kind"] == "header":
                header = value
            elif value["kind"] == "table":
                current = value["label"]
                sections[current] = (value["columns"], [])
    return header, sections


def column_types(header: dict, label: str) -> dict[str, str]:
    (table,) = [t for t in header["tables"] if t["label"] == label]
    return {column["name"]: column["type"] for column in table["columns"]}


# --- raw stored values ---------------------------------------------------------------


def raw_column(alias: str, table: str, column: str) -> list[tuple]:
    """Return ``(id, stored value)`` of every row, by raw SQL, in id order.

    SQLite: the storage class and the value as stored (unary + drops the declared
    type, so no converter of sqlite3 or Django runs). PostgreSQL: the server's own
    text of the value. MySQL: the driver's value (text protocol, exact).
    """
    connection = connections[alias]
    quote = connection.ops.quote_name
    c, t = quote(column), quote(table)
    if connection.vendor == "sqlite":
        select = f"typeof({c}), +{c}"
    elif connection.vendor == "postgresql":
        select = f"{c}::text"
    else:
        select = c
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {select} FROM {t} ORDER BY id")
        rows = [tuple(row) for row in cursor.fetchall()]
    return [
        tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows
    ]


def driver_column(alias: str, table: str, column: str) -> dict[int, Any]:
    """Return ``{id: value}`` as the driver reads the column (no ORM converters)."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    c = quote(column)
    if connection.vendor == "sqlite":
        c = f"+{c}"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {c} FROM {quote(table)}")
        return dict(cursor.fetchall())


def python_value(kind: str, value: Any, vendor: str) -> Any:
    """Return a stored value (``driver_column``) as the Python value it means."""
    if value is None:
        return None
    if kind == "BooleanField":
        return bool(value)
    if kind == "DecimalField":
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if kind == "FloatField":
        return float(value)
    if kind == "DateField" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if kind == "DateTimeField":
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if kind == "TimeField" and isinstance(value, str):
        return dt.time.fromisoformat(value)
    if kind == "DurationField" and isinstance(value, int):
        return dt.timedelta(microseconds=value)
    if kind == "UUIDField":
        return uuid.UUID(str(value))
    if kind == "BinaryField":
        return bytes(value)
    if kind == "JSONField":
        return json.loads(value)
    return value


def same(kind: str, a: Any, b: Any) -> bool:
    if kind == "FloatField" and a is not None and b is not None:
        return a.hex() == b.hex() or (a != a and b != b)
    return type(a) is type(b) and a == b


# --- strategies ----------------------------------------------------------------------

# PostgreSQL refuses NUL in text and in jsonb strings; SQLite and MariaDB keep it.
NO_NUL = VENDOR == "postgresql"
CHARACTERS = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\x00" if NO_NUL else ""
)


def text(max_size: int) -> st.SearchStrategy:
    return st.text(CHARACTERS, max_size=max_size)


def largest_decimal(max_digits: int, places: int) -> Decimal:
    # Spelled out: arithmetic would round to the context's 28 digits.
    return Decimal("9" * (max_digits - places) + "." + "9" * places)


def decimals(max_digits: int, places: int) -> st.SearchStrategy:
    largest = largest_decimal(max_digits, places)
    return st.decimals(
        min_value=largest.copy_negate(),
        max_value=largest,
        places=places,
        allow_nan=False,
        allow_infinity=False,
    )


def decimal_boundaries(max_digits: int, places: int) -> list[Decimal]:
    largest = largest_decimal(max_digits, places)
    smallest = Decimal(10) ** -places
    return [
        largest,
        largest.copy_negate(),
        smallest,
        smallest.copy_negate(),
        Decimal(0),
    ]


# MariaDB's uuid type (10.7+) refuses some UUIDs outside the RFC 4122 variant or
# with a version nibble of 8 or more (which ones depends on the other bits; the
# README lists it as a limit), so on MySQL/MariaDB the variant is RFC 4122's and the
# version 0-7; every other bit varies there too. (Whether the server has the uuid
# type cannot be asked at import time.)
RFC_VARIANT = VENDOR == "mysql"


def rfc_variant(value: uuid.UUID) -> uuid.UUID:
    """Return ``value`` with the RFC 4122 variant bits and a version of 0-7."""
    bits = (value.int & ~(0xC000 << 48) & ~(0x8 << 76)) | (0x8000 << 48)
    return uuid.UUID(int=bits)


def uuid_pattern(value: uuid.UUID) -> uuid.UUID:
    return rfc_variant(value) if RFC_VARIANT else value


# Durations that fit SQLite's and MySQL's bigint of microseconds.
LONGEST = dt.timedelta(days=106751)

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text(20)
)
JSON_DOCUMENTS = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(text(8), children, max_size=4)
    ),
    max_leaves=12,
)
JSON_LAYOUTS = st.sampled_from(
    [
        {},
        {"separators": (",", ":")},
        {"indent": 2, "ensure_ascii": False},
        {"separators": (" , ", " : "), "ensure_ascii": False},
    ]
)
JSON_TEXTS = st.builds(
    lambda doc, layout: json.dumps(doc, **layout), JSON_DOCUMENTS, JSON_LAYOUTS
)

LONG_TEXT = st.builds(lambda c, n: c * n, CHARACTERS, st.integers(1000, 70000))

# column: (strategy, boundary values, which vendors hold them (None: all))
FIELDS: dict[str, tuple[st.SearchStrategy, list[Any]]] = {
    "boolean": (st.booleans(), [True, False]),
    "char": (text(255), ["", " ", "x" * 255, "😀" * 255, "a  "]),
    "text": (text(300) | LONG_TEXT, ["", "😀👩‍👩‍👧 e\u0301\r\n\t"]),
    "slug": (text(100), ["-_"]),
    "email": (text(254), ["o'brien+tag@example.com"]),
    "url": (text(500), ["https://example.com/ä?q=1#x"]),
    "file_path": (text(200), ["/srv/a b.txt"]),
    "file": (text(200), ["attachments/ä.pdf"]),
    "image": (text(200), ["pictures/x.png"]),
    "integer": (st.integers(-(2**31), 2**31 - 1), [-(2**31), 2**31 - 1, 0]),
    "small_integer": (st.integers(-(2**15), 2**15 - 1), [-(2**15), 2**15 - 1]),
    "big_integer": (st.integers(-(2**63), 2**63 - 1), [-(2**63), 2**63 - 1]),
    "positive_integer": (st.integers(0, 2**31 - 1), [0, 2**31 - 1]),
    "positive_small_integer": (st.integers(0, 2**15 - 1), [0, 2**15 - 1]),
    "positive_big_integer": (st.integers(0, 2**63 - 1), [0, 2**63 - 1]),
    "floating": (
        st.floats(allow_nan=VENDOR == "postgresql", allow_infinity=VENDOR != "mysql"),
        [0.1, 5e-324, 1.7976931348623157e308, -2.5],
    ),
    "decimal": (decimals(15, 5), decimal_boundaries(15, 5)),
    "decimal_wide": (decimals(30, 10), decimal_boundaries(30, 10)),
    "day": (
        st.dates(),
        [dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(2024, 2, 29)],
    ),
    "moment": (
        st.datetimes(timezones=st.just(UTC)),
        [
            dt.datetime(1, 1, 1, tzinfo=UTC),
            dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            dt.datetime(2024, 2, 29, 13, 14, 15, 33608, tzinfo=UTC),
        ],
    ),
    "clock": (
        st.times(),
        [
            dt.time(0),
            dt.time(23, 59, 59, 999999),
            dt.time(21, 28, 28, 33608),
            dt.time(0, 0, 0, 1),
            dt.time(0, 0, 0, 10000),
            dt.time(0, 0, 0, 99999),
            dt.time(0, 0, 0, 100000),
        ],
    ),
    "duration": (
        st.timedeltas(min_value=-LONGEST, max_value=LONGEST),
        [-LONGEST, LONGEST, dt.timedelta(microseconds=-1), dt.timedelta(0)],
    ),
    "identifier": (
        st.uuids().map(uuid_pattern),
        [uuid_pattern(uuid.UUID(int=0)), uuid_pattern(uuid.UUID(int=2**128 - 1))],
    ),
    "binary": (st.binary(max_size=300), [b"", bytes(range(256))]),
    "ip_address": (
        st.ip_addresses().map(str),
        ["0.0.0.0", "255.255.255.255", "::", "::ffff:1.2.3.4", "2001:db8::1"],
    ),
    "document": (
        JSON_TEXTS,
        [
            '{"type": "none", "title": "Public"}',
            "null",
            '{"b":1,"a":[1e2, 100, 1.0, -0.0, 123456789012345678901234567890]}',
            '{"ü": "😀", "\\u00fc2": "\\ud83d\\ude00"}',
            "  [ ]  ",
        ],
    ),
}

# Vendors that cannot hold a column's values at all, with the vendor feature.
UNSUPPORTED = {
    ("decimal_wide", "sqlite"): "SQLite stores decimals as 64-bit REAL (15 digits)",
}


def insert(column: str, values: list[Any]) -> None:
    """Write the values through the ORM (JSON as text, through raw SQL)."""
    Value.objects.using("default").all().delete()
    if column != "document":
        Value.objects.using("default").bulk_create(
            Value(**{column: value}) for value in values
        )
        return
    connection = connections["default"]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for value in values:
            cursor.execute(
                f"INSERT INTO {quote(Value._meta.db_table)} ({quote(column)}) "
                "VALUES (%s)",
                [value],
            )


class ValueChecks:
    databases = {"default", "other"}

    def check_values(self, column: str, values: list[Any]) -> None:
        insert(column, values)
        table = Value._meta.db_table
        field = Value._meta.get_field(column)
        path = Path(self.tmp_dir) / "values.jsonl"
        create_backup(path, using="default", exclude=all_but_values())
        # The file, decoded by the documented rules alone, holds the stored values.
        header, sections = read_file(path)
        columns, rows = sections["valuesapp.Value"]
        kind = column_types(header, "valuesapp.Value")[field.column]
        position = columns.index(field.column)
        from_file = {row[0]: decode(kind, row[position]) for row in rows}
        stored = driver_column("default", table, field.column)
        assert from_file.keys() == stored.keys()
        for key, value in stored.items():
            expected = python_value(kind, value, VENDOR)
            assert same(kind, from_file[key], expected), (key, from_file[key], expected)
        for row in rows:
            encoded = row[position]
            if kind == "TimeField" and encoded is not None:
                assert re.fullmatch(r"\d\d:\d\d:\d\d(\.\d{6})?", encoded), encoded
            if kind == "DecimalField" and encoded is not None:
                assert len(encoded.partition(".")[2]) == field.decimal_places, encoded
            if kind == "JSONField" and encoded is not None:
                # The very text the database keeps, not a re-serialised form.
                assert encoded == stored[row[0]]
        # Restored into another database, the stored values are the same.
        restore_backup(path, using="other", safety_backup=False)
        assert raw_column("other", table, field.column) == raw_column(
            "default", table, field.column
        )
        assert validate_backup(path, using="other").ok


def value_test(column: str, examples: int):
    strategy, boundaries = FIELDS[column]
    rows = st.lists(strategy | st.none(), max_size=6)
    reason = UNSUPPORTED.get((column, VENDOR))
    if reason:

        @pytest.mark.skip(reason=reason)
        def unsupported(self):
            """Left out: the vendor cannot hold these values."""

        return unsupported

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(values=rows)
    @example(values=boundaries + [None])
    def test(self, values):
        self.check_values(column, values)

    test.__name__ = f"test_{column}"
    return test


def _make_class(name: str, examples: int, marks=()):
    body = {f"test_{column}": value_test(column, examples) for column in FIELDS}
    cls = type(name, (ValueChecks, HypothesisTestCase), body)
    for mark in marks:
        cls = mark(cls)
    return cls


ValuePropertyTests = _make_class("ValuePropertyTests", EXAMPLES)
SlowValuePropertyTests = _make_class(
    "SlowValuePropertyTests", SLOW_EXAMPLES, [pytest.mark.slow]
)


@pytest.fixture(autouse=True)
def tmp_dir_on_instance(request, tmp_path):
    if request.instance is not None:
        request.instance.tmp_dir = tmp_path


@pytest.fixture(autouse=True)
def slow_only_when_asked(request):
    """Run the slow variant only when -m names it: it takes half an hour a vendor."""
    markexpr = request.config.option.markexpr or ""
    if request.node.get_closest_marker("slow") and "slow" not in markexpr:
        pytest.skip("300 examples per field type: run with -m slow")


# --- primary key order ---------------------------------------------------------------

TEXT_KEYS = [
    "apple",
    "Banana",
    "cherry",
    "Émile",
    "zoë",
    "10",
    "9",
    "_under",
    "~tilde",
    "中文",
    "😀smile",
    "ω",
    "a b",
    "Zulu",
]
# RFC 4122 variant on every vendor, so that the keys move to MariaDB too.
UUID_KEYS = [
    rfc_variant(uuid.UUID(int=n * 0x0123456789ABCDEF0123456789ABCDEF % 2**128))
    for n in range(1, 40)
] + [uuid.uuid1() for _ in range(10)]

KEY_ROWS = {
    AutoKey: [{"id": n} for n in (1, 2, 9, 10, 100, 2**31 - 1)],
    BigAutoKey: [{"id": n} for n in (1, 9, 10, 2**31, 2**63 - 1)],
    SmallAutoKey: [{"id": n} for n in (1, 9, 10, 2**15 - 1)],
    CharKey: [{"code": code} for code in TEXT_KEYS],
    UUIDKey: [{"id": key} for key in UUID_KEYS],
    DecimalKey: [
        {"amount": Decimal(text)}
        for text in ("-5.500", "0.000", "9.500", "10.000", "123456789.123", "-123.001")
    ],
    DateKey: [
        {"day": day}
        for day in (
            dt.date(1000, 1, 1),
            dt.date(2024, 2, 29),
            dt.date(1999, 12, 31),
            dt.date(9999, 12, 31),
            dt.date(2000, 1, 1),
        )
    ],
    IPKey: [
        {"address": address}
        for address in (
            "10.0.0.1",
            "9.0.0.1",
            "192.168.0.1",
            "::1",
            "2001:db8::1",
            "::ffff:1.2.3.4",
        )
    ],
    CompositeKey: [
        {"code": code, "number": number}
        for code, number in (("b", 2), ("a", 10), ("a", 9), ("B", 1), ("é", 0))
    ],
    UUIDParentChild: [{"id": key, "note": "x"} for key in UUID_KEYS[:20]],
    CharParentChild: [{"code": f"p{code}", "note": "x"} for code in TEXT_KEYS],
}


def spec_key(kind: str, value: Any) -> Any:
    """The format's order of one primary key value, from its JSON value."""
    if kind == "DecimalField":
        return Decimal(value)
    if kind == "FloatField":
        return float(value)
    return value  # text, UUID, date and time text by code point; numbers by value


def file_keys(path: Path, model) -> list[tuple]:
    header, sections = read_file(path)
    columns, rows = sections[model._meta.label]
    types = column_types(header, model._meta.label)
    pk_columns = [field.column for field in model._meta.pk_fields]
    positions = [columns.index(column) for column in pk_columns]
    return [
        tuple(
            spec_key(types[c], row[i])
            for c, i in zip(pk_columns, positions, strict=True)
        )
        for row in rows
    ]


def fill_keys(model, alias: str) -> None:
    manager = model._base_manager.using(alias)
    manager.all().delete()
    for values in KEY_ROWS[model]:
        model(**values).save(using=alias, force_insert=True)


@pytest.mark.parametrize("model", list(KEY_ROWS), ids=lambda m: m.__name__)
@pytest.mark.django_db(databases=["default", "other"])
def test_rows_come_in_the_formats_primary_key_order(model, tmp_path):
    fill_keys(model, "default")
    path = tmp_path / "keys.jsonl"
    create_backup(path, using="default", exclude=other_apps())
    keys = file_keys(path, model)
    assert len(keys) == len(KEY_ROWS[model])
    assert keys == sorted(keys)
    restore_backup(path, using="other", safety_backup=False)
    assert validate_backup(path, using="other").ok


# --- version 1 files -----------------------------------------------------------------


def as_version_1(source: Path, target: Path) -> None:
    """Write ``source`` (version 2, uncompressed) as the version 1 writer wrote it:
    JSON columns canonical, times of 10,000-99,999 microseconds with five digits."""
    header, sections = read_file(source)
    header["version"] = 1
    out, whole = [], hashlib.sha256()

    def emit(line: bytes) -> None:
        out.append(line)
        whole.update(line)

    emit(json.dumps(header).encode() + b"\n")
    for label, (columns, rows) in sections.items():
        types = column_types(header, label)
        (table,) = [t["table"] for t in header["tables"] if t["label"] == label]
        record = {"kind": "table", "label": label, "table": table, "columns": columns}
        emit(json.dumps(record).encode() + b"\n")
        digest = hashlib.sha256()
        for row in rows:
            for index, column in enumerate(columns):
                value = row[index]
                if value is None:
                    continue
                if types[column] == "JSONField":
                    row[index] = json.dumps(
                        json.loads(value),
                        sort_keys=True,
                        separators=(",", ":"),
                        ensure_ascii=False,
                    )
                elif types[column] == "TimeField" and re.search(r"\.0\d{5}$", value):
                    row[index] = value.replace(".0", ".", 1)
            line = json.dumps(row, ensure_ascii=False).encode() + b"\n"
            digest.update(line)
            emit(line)
        end = {"kind": "end", "label": label, "rows": len(rows)}
        end["digest"] = digest.hexdigest()
        emit(json.dumps(end).encode() + b"\n")
    trailer = {"kind": "trailer", "tables": len(sections), "rows": 0}
    trailer["rows"] = sum(len(rows) for _, rows in sections.values())
    trailer["digest"] = whole.hexdigest()
    out.append(json.dumps(trailer).encode() + b"\n")
    target.write_bytes(b"".join(out))


@pytest.mark.django_db(databases=["default", "other"])
def test_a_version_1_file_restores_and_validates_as_its_writer_meant(tmp_path):
    insert("clock", [dt.time(21, 28, 28, 33608), dt.time(0, 0, 0, 10000), dt.time(1)])
    connection = connections["default"]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Value._meta.db_table)} SET {quote('document')} = %s",
            ['{"type": "none", "title": "Public", "n": 1e2}'],
        )
    current = tmp_path / "current.jsonl"
    create_backup(current, using="default", exclude=all_but_values())
    old = tmp_path / "old.jsonl"
    as_version_1(current, old)
    columns, rows = read_file(old)[1]["valuesapp.Value"]
    position = columns.index("clock")
    assert sorted(row[position] for row in rows) == [
        "00:00:00.10000",
        "01:00:00",
        "21:28:28.33608",
    ]
    assert validate_backup(old, using="default").ok
    restore_backup(old, using="other", safety_backup=False)
    table = Value._meta.db_table
    assert raw_column("other", table, "clock") == raw_column("default", table, "clock")
    documents = driver_column("other", table, "document").values()
    for document in documents:
        # PostgreSQL's jsonb writes 1e2 as 100 itself.
        assert json.loads(document, parse_float=Decimal, parse_int=Decimal) == {
            "n": Decimal(100),
            "title": "Public",
            "type": "none",
        }
    assert validate_backup(old, using="other").ok
    # What a version 1 file cannot give back: the JSON text as it was stored, on
    # the vendors that keep text (PostgreSQL's jsonb keeps its own form anyway).
    (report,) = validate_backup(current, using="other").tables
    changed = 0 if VENDOR == "postgresql" else 3
    assert (report.changed, report.missing, report.extra) == (changed, 0, 0)
