"""How a column value becomes JSON in the file, and how it goes back into a database.

This is the only module that knows value encodings. The rules (see docs/format.md):

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

Reading works on raw database values plus the backend's own converters (which undo
vendor storage quirks such as SQLite's text datetimes); field ``from_db_value`` hooks
are deliberately skipped, so custom fields are copied as stored.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import math
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, cast

import orjson
from django.conf import settings
from django.db import models
from django.db.models.expressions import Col

from .writer import FORMAT_VERSION

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
    return orjson.loads(line)


def loads_block(block: bytes) -> list[list[Any]]:
    """Parse a block of row lines (each ending in a newline) with one orjson call.

    The same rows as parsing line by line: the newlines become commas of one array.
    """
    if not block:
        return []
    rows = orjson.loads(b"[" + block[:-1].replace(b"\n", b",") + b"]")
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


def kind(field: models.Field) -> str:
    return base_field(field).get_internal_type()


# --- encoding: database value -> JSON value ---------------------------------------


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


def column_encoder(field: models.Field, table: str, connection) -> Encoder | None:
    """Return a function from a raw column value (not None) to its JSON value."""
    base = base_field(field)
    field_kind = base.get_internal_type()
    fast = _fast_encoder(field_kind, base, table, connection)
    if fast is not None:
        return fast
    if field_kind == "JSONField":
        # Raw text: Django's converters would lose SQL NULL versus JSON null, and
        # the key order and spacing that a text-backed vendor keeps.
        return json_text
    steps = _encoder_steps(base, table, connection)
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else _chain(steps)


def _fast_encoder(field_kind: str, base, table: str, connection) -> Encoder | None:
    """Shortcuts for costly SQLite and MySQL converters, giving the same values faster."""
    if connection.vendor not in ("sqlite", "mysql"):
        return None
    if field_kind in TEMPORAL_KINDS and connection.vendor == "sqlite":
        return sqlite_temporal_encoder(field_kind, base, table, connection)
    if field_kind == "DateTimeField" and settings.USE_TZ:
        # The driver already made a naive datetime (sqlite3 from text); Django's
        # converter then only makes it aware in the connection's time zone.
        tz = connection.timezone
        slow = column_encoder_steps(base, table, connection)

        def encode_datetime(value, datetime_type=datetime.datetime):
            if type(value) is datetime_type and value.tzinfo is None:
                return value.replace(tzinfo=tz)
            return slow(value)

        return encode_datetime
    if field_kind == "DecimalField" and connection.vendor == "sqlite":
        return sqlite_decimal_encoder(base, table, connection)
    return None


MEMO_SIZE = 100_000


def sqlite_decimal_encoder(base, table: str, connection) -> Encoder:
    """Turn SQLite's float or integer decimals into the file's text directly.

    Django reads them with a 15-digit context and quantizes to the column's places;
    Python's "%.15g" rounds the same way (to nearest, ties to even, from the exact
    binary value), so padding its text with zeros gives the same result. Anything it
    cannot pad (more places than the column has, exponents, too many digits) goes
    through Django's converter.
    """
    slow = column_encoder_steps(base, table, connection)
    places = base.decimal_places
    whole_digits = base.max_digits - places

    # Columns of prices repeat their values a lot: remember recent texts. Zero is
    # left out, as 0.0 and -0.0 are one key but two texts.
    memo: dict[float | int, str] = {}

    def encode_decimal(value):
        if value and (text := memo.get(value)) is not None:
            return text
        text = padded(value)
        if text is None:
            return slow(value)
        if value:
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[value] = text
        return text

    def padded(value) -> str | None:
        if type(value) is float or type(value) is int:
            text = f"{value:.15g}"
            whole, _, fraction = text.partition(".")
            if (
                len(fraction) <= places
                and len(whole.lstrip("-")) <= whole_digits
                and "e" not in text
                and "n" not in text
            ):
                return f"{whole}.{fraction:0<{places}}" if places else whole
        return None

    return encode_decimal


# Lengths of the text Django writes on SQLite: "YYYY-MM-DD HH:MM:SS[.ffffff]",
# "HH:MM:SS[.ffffff]" (no fraction when it is zero, as in the file).
SQLITE_DATETIME_LENGTHS = frozenset({19, 26})
SQLITE_TIME_LENGTHS = frozenset({8, 15})


def sqlite_temporal_encoder(field_kind: str, base, table: str, connection) -> Encoder:
    """Turn SQLite's text dates, times and datetimes into the file's text directly.

    Text in any other shape (written by other programs, or with a zero fraction) goes
    through Django's converters, which parse it, and comes out the same as from any
    other vendor.
    """
    slow = _parsed(column_encoder_steps(base, table, connection))

    def usual(value, lengths) -> bool:
        return (
            type(value) is str
            and len(value) in lengths
            and not value.endswith(".000000")
        )

    if field_kind == "DateField":
        return lambda value: (
            value if type(value) is str and len(value) == 10 else slow(value)
        )
    if field_kind == "TimeField":
        return lambda value: value if usual(value, SQLITE_TIME_LENGTHS) else slow(value)
    if settings.USE_TZ and getattr(connection, "timezone_name", "UTC") != "UTC":
        return slow
    offset = "+00:00" if settings.USE_TZ else ""

    def encode_datetime(value):
        if usual(value, SQLITE_DATETIME_LENGTHS) and value[10] == " ":
            return value[:10] + "T" + value[11:] + offset
        return slow(value)

    return encode_datetime


def _parsed(encode: Encoder) -> Encoder:
    """Refuse text that Django's date parsers give up on (they return None)."""

    def parse(value):
        result = encode(value)
        if result is None:
            raise ValueError("Django's parser cannot read it")
        return result

    return parse


def _encoder_steps(base, table: str, connection) -> list[Encoder]:
    """The backend's converters for the column's type, then our encoding rule."""
    expression = Col(table, base)
    steps: list[Encoder] = [
        lambda value, c=converter: c(value, expression, connection)  # type: ignore[misc]
        for converter in connection.ops.get_db_converters(expression)
    ]
    if base.get_internal_type() in ENCODERS:
        steps.append(ENCODERS[base.get_internal_type()])
    return steps


def _chain(steps: list[Encoder]) -> Encoder:
    def encode(value, steps=tuple(steps)):
        for step in steps:
            value = step(value)
        return value

    return encode


def column_encoder_steps(base, table: str, connection) -> Encoder:
    """The general encoder of a column, which the shortcuts fall back on."""
    return _chain(_encoder_steps(base, table, connection))


def batch_encoder(fields, table: str, connection) -> Callable[[list], bytes]:
    """Return a function from a batch of raw rows to one JSON array: ``[[row],[row]]``."""
    steps = [
        (index, encoder)
        for index, field in enumerate(fields)
        if (encoder := column_encoder(field, table, connection)) is not None
    ]
    dumps = orjson.dumps
    if not steps:
        return dumps

    def encode_batch(rows):
        if not rows:
            return b"[]"
        # Column by column: one comprehension per column to convert rather than a
        # loop over the columns of every row (orjson writes tuples as arrays).
        columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
        for index, encoder in steps:
            columns[index] = [
                None if value is None else encoder(value) for value in columns[index]
            ]
        return dumps(list(zip(*columns, strict=True)))

    return encode_batch


def lines_encoder(
    fields, table: str, connection
) -> Callable[[list], memoryview | None]:
    """Return a function from a batch of raw rows to their lines, without the last
    newline, or None when the batch must be encoded row by row.

    One orjson call per batch: ``[[row],[row]]`` with each ``],[`` turned into a
    line break, the outer brackets left out. orjson escapes line breaks inside
    strings, so the lines are right exactly when there are as many line breaks as
    rows between them; a string value holding ``],[`` adds one.
    """
    return _lines_of(batch_encoder(fields, table, connection))


def _lines_of(
    encode_batch: Callable[[list], bytes],
) -> Callable[[list], memoryview | None]:
    def encode_lines(rows):
        data = encode_batch(rows).replace(b"],[", b"]\n[")
        if data.count(b"\n") != len(rows) - 1:
            return None
        return memoryview(data)[1:-1]

    return encode_lines


def block_encoder(fields, table: str, connection) -> Callable[[list], bytes]:
    """Return a function from a batch of raw rows to their lines, each ending in a
    newline: the bytes of the rows in a backup."""
    encode_batch = batch_encoder(fields, table, connection)
    encode_lines = _lines_of(encode_batch)

    def encode_block(rows):
        if not rows:
            return b""
        lines = encode_lines(rows)
        if lines is not None:
            return b"".join((lines, b"\n"))
        return b"".join(encode_batch([row])[1:-1] + b"\n" for row in rows)

    return encode_block


# --- decoding: JSON value -> parameter for an INSERT or COPY ------------------------


def _binary(value: str) -> bytes:
    return base64.b64decode(value)


def _float(value: Any) -> float:
    return float(value)


def _uuid_hex(value: str) -> str:
    return value.replace("-", "")


def _timedelta(value: int) -> datetime.timedelta:
    return datetime.timedelta(microseconds=value)


# "YYYY-MM-DDTHH:MM:SS" and the same with ".ffffff": datetimes without an offset.
NAIVE_ISO_LENGTHS = frozenset({19, 26})


def _datetime_decoder(connection) -> Encoder:
    ops = connection.ops
    utc = getattr(connection, "timezone_name", "UTC") == "UTC"

    def decode(value: str):
        # Django stores datetimes on SQLite and MySQL as naive UTC text with a space.
        if utc and value.endswith("+00:00"):
            return value[:-6].replace("T", " ", 1)
        if utc and len(value) in NAIVE_ISO_LENGTHS:
            return value.replace("T", " ", 1)
        return ops.adapt_datetimefield_value(datetime.datetime.fromisoformat(value))

    return decode


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


def column_decoder(
    field: models.Field, connection, version: int = FORMAT_VERSION
) -> Encoder | None:
    """Return a function from a JSON value (not None) to what the database accepts."""
    field_kind = kind(field)
    if field_kind == "TimeField" and version < 2:
        return v1_time
    if field_kind == "BinaryField":
        return _binary
    if field_kind == "FloatField":
        return _float
    if connection.vendor == "postgresql":
        # COPY parses ISO datetimes, decimals, UUIDs and JSON text by itself.
        if field_kind == "DurationField":
            return _timedelta
        return None
    if field_kind == "DurationField":
        return None if not connection.features.has_native_duration_field else _timedelta
    if field_kind == "UUIDField" and not connection.features.has_native_uuid_field:
        return _uuid_hex
    if field_kind == "DateTimeField":
        return _datetime_decoder(connection)
    return None


def row_decoder(
    fields, insert_fields, connection, version: int = FORMAT_VERSION
) -> Callable[[list], tuple]:
    """Return a function from a row of the file (format ``version``) to the tuple an
    INSERT takes."""
    positions = [fields.index(f) for f in insert_fields]
    steps = []
    for index, field in enumerate(insert_fields):
        decoder = column_decoder(field, connection, version)
        if decoder is not None:
            steps.append((index, decoder))
    keep_all = positions == list(range(len(fields)))
    if not steps and keep_all:
        return tuple

    def decode(row):
        if not keep_all:
            row = [row[i] for i in positions]
        for index, decoder in steps:
            value = row[index]
            if value is not None:
                row[index] = decoder(value)
        return tuple(row)

    return decode


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
    fields, *, version: int, same_vendor: bool
) -> Callable[[list], list] | None:
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

    def normalise(row: list) -> list:
        for index, step in steps:
            if isinstance(row[index], str):
                row[index] = step(row[index])
        return row

    return normalise


def lines_normaliser(
    fields, *, version: int, same_vendor: bool
) -> Callable[[bytes], bytes] | None:
    """Return ``row_normaliser`` for row lines (without their newline), or None."""
    normalise = row_normaliser(fields, version=version, same_vendor=same_vendor)
    if normalise is None:
        return None
    return lambda line: orjson.dumps(normalise(orjson.loads(line)))


# --- ordering keys, so validation can merge two sorted streams ----------------------


def pk_key_function(fields, pk_fields) -> Callable[[list], tuple]:
    """Return a function from a decoded row to a key sorted as the database sorts pks."""
    positions = [fields.index(f) for f in pk_fields]
    converters: list[Callable[[Any], Any] | None] = []
    for field in pk_fields:
        field_kind = kind(field)
        if field_kind == "DecimalField":
            converters.append(Decimal)
        elif field_kind == "FloatField":
            converters.append(float)
        else:
            converters.append(None)

    def key(row):
        return tuple(
            row[i] if convert is None or row[i] is None else convert(row[i])
            for i, convert in zip(positions, converters, strict=True)
        )

    return key


def pk_value(fields, pk_fields, row) -> Any:
    """Return the primary key of a decoded row as shown to people: a value or a list."""
    values = [row[fields.index(f)] for f in pk_fields]
    return values[0] if len(values) == 1 else values
