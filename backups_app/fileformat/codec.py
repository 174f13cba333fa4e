"""How values are written in a backup file and read back from it: the file side.

The rules (see docs/format.md):

- integers, strings, booleans and null are JSON as they are;
- floats are JSON numbers, except NaN and the infinities, which are the strings
  ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (orjson would write null);
- decimals are strings in plain notation with the column's scale (``"12.50"``);
- datetimes, dates and times are ISO 8601 strings with six digits of microseconds
  when non-zero; aware datetimes carry their UTC offset;
- UUIDs are lower-case hyphenated strings;
- durations are whole microseconds;
- binary values are base64 strings;
- JSON columns hold the JSON document as a string, the text the database keeps
  (key order and spacing included on vendors that store JSON as text), so that it
  goes back byte for byte and SQL NULL (null) and JSON null (``"null"``) stay apart.

Within one vendor and format version, values are compared as the very bytes of
their lines. Across vendors (or with a version 1 file) the columns whose text may
differ while the value is the same are compared by meaning (``row_normaliser``).

This module needs no database connection and knows no vendor: turning a
database's raw values into these (and back into parameters for an INSERT or COPY)
is ``backups_app.db.values``.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, cast

import orjson
from django.db import models

Encoder = Callable[[Any], Any]


TEMPORAL_KINDS = frozenset({"DateTimeField", "DateField", "TimeField"})


TEXT_KINDS = frozenset(
    {
        "CharField",
        "TextField",
        "SlugField",
        "EmailField",
        "URLField",
        "FilePathField",
        "FileField",
        "ImageField",
    }
)


def loads_row(line: bytes) -> list[Any]:
    row: list[Any] = orjson.loads(line)
    return row


def loads_block(block: bytes) -> list[list[Any]]:
    """Parse a block of row lines (each ending in a newline) with one orjson call.

    The same rows as parsing line by line: the newlines become commas of one array.
    """
    if not block:
        return []
    rows: list[list[Any]] = orjson.loads(b"[" + block[:-1].replace(b"\n", b",") + b"]")
    if len(rows) != block.count(b"\n"):
        # Some line is not one JSON value; let the line-by-line parse say which.
        rows = [orjson.loads(line) for line in block[:-1].split(b"\n")]
    return rows


def base_field(field: models.Field[Any, Any]) -> models.Field[Any, Any]:
    """Return the field whose type decides the stored value: FK targets, generated outputs."""
    while (
        field.is_relation
        and (target := cast("models.ForeignKey[Any, Any]", field).target_field)
        is not field
    ):
        field = target
    if field.generated:
        output = cast("models.GeneratedField", field).output_field
        field = cast("models.Field[Any, Any]", output)  # set on a generated field
    return field


def kind(field: models.Field[Any, Any]) -> str:
    return base_field(field).get_internal_type()


# --- encoding: Python value -> JSON value ----------------------------------------


def json_text(value: Any) -> str:
    """Return a JSON column's value as the database keeps it.

    SQLite and MariaDB keep the text that was written (key order, spacing and
    escapes included); writing it back unchanged is what makes the restore exact.
    PostgreSQL's jsonb hands out its own normalised text, which it reads back the
    same.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode()
    # Not text: a number or boolean written by another program; its JSON text.
    return json.dumps(value)


# Times as ``HH:MM:SS`` or ``HH:MM:SS.ffffff``, always six fraction digits: Python's
# own isoformat (a C method, called on the datetime.time every driver and Django's
# converters hand out). Not orjson: 3.13.0 writes time(21, 28, 28, 33608) as
# "21:28:28.33608", which every ISO 8601 reader takes for .336080.
time_text = datetime.time.isoformat


def canonical_json(value: Any) -> str:
    """Return a JSON document as compact text with sorted keys.

    The standard library, not orjson, reads it: orjson turns integers beyond 64 bits
    into floats and refuses NaN, both of which Django's JSONField can store.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode()
    return json.dumps(
        json.loads(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def uuid_text(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(uuid.UUID(value))


def binary_text(value: Any) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


def decimal_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    return format(value, "f")


def float_value(value: Any) -> Any:
    value = float(value)
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def duration_micros(value: Any) -> int:
    if isinstance(value, datetime.timedelta):
        return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    return int(value)


ENCODERS: dict[str, Encoder] = {
    "JSONField": json_text,
    "TimeField": time_text,
    "UUIDField": uuid_text,
    "BinaryField": binary_text,
    "DecimalField": decimal_text,
    "FloatField": float_value,
    "DurationField": duration_micros,
}


# The JSON types each column type's values are written as (docs/format.md, Values),
# besides null: what a reader accepts, and what a backup writes. Columns of other
# types (custom fields, contrib.postgres arrays) may hold any JSON value.
_INTEGER = frozenset({int})
_TEXT = frozenset({str})
JSON_TYPES: dict[str, frozenset[type]] = {
    **dict.fromkeys(
        [
            "AutoField",
            "BigAutoField",
            "SmallAutoField",
            "IntegerField",
            "BigIntegerField",
            "SmallIntegerField",
            "PositiveIntegerField",
            "PositiveBigIntegerField",
            "PositiveSmallIntegerField",
        ],
        _INTEGER,
    ),
    # Microseconds; PostgreSQL's intervals with months or years as its text.
    "DurationField": frozenset({int, str}),
    **dict.fromkeys(
        [
            *sorted(TEXT_KINDS),
            *sorted(TEMPORAL_KINDS),
            "GenericIPAddressField",
            "IPAddressField",
            "DecimalField",
            "UUIDField",
            "BinaryField",
            "JSONField",
        ],
        _TEXT,
    ),
    "BooleanField": frozenset({bool}),
    "NullBooleanField": frozenset({bool}),
    # Numbers; NaN and the infinities as strings.
    "FloatField": frozenset({float, int, str}),
}
# How messages name a value's JSON type (and bytes, which JSON has not).
JSON_NAMES = {
    type(None): "null",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
    bytes: "bytes",
}


def lines_of(
    encode_batch: Callable[[list[Any]], bytes],
) -> Callable[[list[Any]], memoryview | None]:
    """Turn a function writing rows as one JSON array, ``[[row],[row]]``, into one
    writing their lines without the last newline, or None when that fails.

    Each ``],[`` becomes a line break and the outer brackets are left out. orjson
    escapes line breaks inside strings, so the lines are right exactly when there
    are as many line breaks as rows between them; a string holding ``],[`` adds one.
    """

    def encode_lines(rows: list[Any]) -> memoryview | None:
        data = encode_batch(rows).replace(b"],[", b"]\n[")
        if data.count(b"\n") != len(rows) - 1:
            return None
        return memoryview(data)[1:-1]

    return encode_lines


# --- decoding: JSON value -> Python value ----------------------------------------


def binary_value(value: str) -> bytes:
    return base64.b64decode(value)


def float_number(value: Any) -> float:
    return float(value)


def duration_value(value: int) -> datetime.timedelta:
    return datetime.timedelta(microseconds=value)


def v1_time(value: str) -> str:
    """Return a time of a version 1 file with the fraction it meant.

    The version 1 writer (orjson 3.13) wrote microseconds 10,000-99,999 with five
    digits, dropping the leading zero; every other time has none or six. Five
    digits in such a file are therefore the microseconds themselves.
    """
    head, dot, fraction = value.partition(".")
    if dot and len(fraction) == 5:
        return f"{head}.0{fraction}"
    return value


# --- comparing by meaning: across vendors, and with version 1 files -----------------


class _Constant(str):
    """NaN or an infinity inside a JSON document (Python's extension to JSON)."""


def _number_text(value: Decimal) -> str:
    """Return a number as digits and exponent with no trailing zeros: 100, 1e2 and
    100.0 all become ``1e2``; any zero becomes ``0``."""
    sign, digits, exponent = value.as_tuple()
    text = "".join(map(str, digits)).lstrip("0")
    if not text:
        return "0"
    stripped = text.rstrip("0")
    exponent = cast(int, exponent) + len(text) - len(stripped)  # finite here
    return f"{'-' if sign else ''}{stripped}e{exponent}"


def _meaning_text(value: Any) -> str:
    if isinstance(value, _Constant):
        return str.__str__(value)
    if isinstance(value, str):
        return json.dumps(value)
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, Decimal)):
        return _number_text(Decimal(value))
    if isinstance(value, list):
        return "[" + ",".join(map(_meaning_text, value)) + "]"
    return (
        "{"
        + ",".join(
            f"{json.dumps(key)}:{_meaning_text(value[key])}" for key in sorted(value)
        )
        + "}"
    )


def json_meaning(text: str) -> str:
    """Return what a JSON document means, as text equal for equal documents.

    Key order, spacing, escapes and the spelling of numbers (PostgreSQL's jsonb
    writes 1e2 as 100) do not count; numbers compare by value, exactly. Text that
    is not JSON is returned as it is, so that it still differs from any document.
    """
    try:
        document = json.loads(text, parse_float=Decimal, parse_constant=_Constant)
    except ValueError:
        return text
    return _meaning_text(document)


def ip_meaning(text: str) -> str:
    """Return an IP address in one spelling: PostgreSQL's inet compresses IPv6 text
    that other vendors keep as written. Text that is no address is left as it is."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def row_normaliser(
    fields: Sequence[models.Field[Any, Any]], *, version: int, same_vendor: bool
) -> Callable[[list[Any]], list[Any]] | None:
    """Return a function that puts a decoded row's values in the form that compares
    equal for equal values, or None when the row's bytes can be compared as they are.

    JSON text is kept as stored, so it compares by meaning when the file comes from
    another vendor or holds canonical text (version 1); so do IP addresses from
    another vendor; version 1 times get the fraction they meant.
    """
    steps: list[tuple[int, Callable[[str], str]]] = []
    for index, field in enumerate(fields):
        field_kind = kind(field)
        if field_kind == "JSONField" and (version < 2 or not same_vendor):
            steps.append((index, json_meaning))
        elif field_kind == "TimeField" and version < 2:
            steps.append((index, v1_time))
        elif field_kind == "GenericIPAddressField" and not same_vendor:
            steps.append((index, ip_meaning))
    if not steps:
        return None

    def normalise(row: list[Any]) -> list[Any]:
        for index, step in steps:
            if isinstance(row[index], str):
                row[index] = step(row[index])
        return row

    return normalise


def lines_normaliser(
    fields: Sequence[models.Field[Any, Any]], *, version: int, same_vendor: bool
) -> Callable[[bytes], bytes] | None:
    """Return ``row_normaliser`` for row lines (without their newline), or None."""
    normalise = row_normaliser(fields, version=version, same_vendor=same_vendor)
    if normalise is None:
        return None
    return lambda line: orjson.dumps(normalise(orjson.loads(line)))


# --- ordering keys, so validation can merge two sorted streams ----------------------


def pk_key_function(
    fields: Sequence[models.Field[Any, Any]],
    pk_fields: Sequence[models.Field[Any, Any]],
) -> Callable[[list[Any]], tuple[Any, ...]]:
    """Return a function from a decoded row to a key sorted as the database sorts pks."""
    return key_function([fields.index(f) for f in pk_fields], map(kind, pk_fields))


def key_function(
    positions: Sequence[int], kinds: Iterable[str]
) -> Callable[[list[Any]], tuple[Any, ...]]:
    """Return a function from a decoded row to the key, in file order, of the
    columns at ``positions``, whose field types (``kind``) are ``kinds``."""
    converters: list[Callable[[Any], Any] | None] = []
    for field_kind in kinds:
        if field_kind == "DecimalField":
            converters.append(Decimal)
        elif field_kind == "FloatField":
            converters.append(float)
        else:
            converters.append(None)

    def key(row: list[Any]) -> tuple[Any, ...]:
        return tuple(
            row[i] if convert is None or row[i] is None else convert(row[i])
            for i, convert in zip(positions, converters, strict=True)
        )

    return key


def pk_value(
    fields: Sequence[models.Field[Any, Any]],
    pk_fields: Sequence[models.Field[Any, Any]],
    row: list[Any],
) -> Any:
    """Return the primary key of a decoded row as shown to people: a value or a list."""
    values = [row[fields.index(f)] for f in pk_fields]
    return values[0] if len(values) == 1 else values
