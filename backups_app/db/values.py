"""How a database's raw column values become the file's values, and go back.

The file's rules are ``backups_app.fileformat.codec``; this module adds what depends
on the connection: the backend's own converters (which undo vendor storage quirks
such as SQLite's text datetimes), faster shortcuts giving the same values on SQLite
and MySQL, and the parameters each vendor takes for an INSERT or COPY.

Reading works on raw database values plus the backend's converters; field
``from_db_value`` hooks are deliberately skipped, so custom fields are copied as
stored.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, cast

import orjson
from django.conf import settings
from django.db import models
from django.db.models.expressions import Col

from ..fileformat.codec import (
    ENCODERS,
    JSON_NAMES,
    JSON_TYPES,
    TEMPORAL_KINDS,
    Encoder,
    base_field,
    binary_value,
    duration_micros,
    duration_value,
    float_number,
    json_text,
    kind,
    lines_of,
    v1_time,
)
from ..fileformat.writer import FORMAT_VERSION

# --- encoding: database value -> JSON value ---------------------------------------


def column_encoder(
    field: models.Field[Any, Any], table: str, connection: Any
) -> Encoder | None:
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


# Lengths of the text Django writes on SQLite, and MySQL hands out:
# "YYYY-MM-DD HH:MM:SS[.ffffff]", "HH:MM:SS[.ffffff]" (no fraction when it is zero,
# as in the file, on SQLite; always six digits from a datetime(6) on MySQL).
DATETIME_TEXT_LENGTHS = frozenset({19, 26})
TIME_TEXT_LENGTHS = frozenset({8, 15})


def _fast_encoder(
    field_kind: str, base: models.Field[Any, Any], table: str, connection: Any
) -> Encoder | None:
    """Shortcuts for costly SQLite and MySQL converters, giving the same values faster,
    and the values some backends read as text (``postgres_interval``, ``text_kept``)."""
    if field_kind == "DurationField" and connection.vendor == "postgresql":
        return postgres_interval
    if field_kind == "TimeField" and connection.vendor == "postgresql":
        return text_kept(column_encoder_steps(base, table, connection))
    if connection.vendor not in ("sqlite", "mysql"):
        return None
    if field_kind in TEMPORAL_KINDS and connection.vendor == "sqlite":
        return sqlite_temporal_encoder(field_kind, base, table, connection)
    if field_kind in ("DateField", "DateTimeField") and connection.vendor == "mysql":
        return mysql_temporal_encoder(
            field_kind,
            _object_encoder(field_kind, base, table, connection),
            connection,
        )
    if field_kind == "TimeField" and connection.vendor == "mysql":
        return mysql_time_encoder(column_encoder_steps(base, table, connection))
    if field_kind == "DecimalField" and connection.vendor == "sqlite":
        return sqlite_decimal_encoder(base, table, connection)
    return None


def _object_encoder(
    field_kind: str, base: models.Field[Any, Any], table: str, connection: Any
) -> Encoder:
    """A MySQL date or datetime column's encoder of the driver's objects."""
    if field_kind == "DateTimeField" and settings.USE_TZ:
        # The driver already made a naive datetime; Django's converter then only
        # makes it aware in the connection's time zone.
        tz = connection.timezone
        slow = column_encoder_steps(base, table, connection)

        def encode_datetime(
            value: Any, datetime_type: type[datetime.datetime] = datetime.datetime
        ) -> Any:
            if type(value) is datetime_type and value.tzinfo is None:
                return value.replace(tzinfo=tz)
            return slow(value)

        return encode_datetime
    return column_encoder_steps(base, table, connection)


# MySQL's dates that are no dates: the zero date, a zero month or day, or a day its
# month lacks (ALLOW_INVALID_DATES). mysqlclient makes None of them.
MYSQL_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
MYSQL_DATETIME_TEXT = re.compile(
    r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?"
)


def mysql_temporal_encoder(
    field_kind: str, encode_object: Encoder, connection: Any
) -> Encoder:
    """Turn MySQL's text dates and datetimes (``stream_rows`` and ``fetch_rows`` ask
    for text) into the file's text directly; the driver's objects as before.

    Text that is not a valid date or datetime of the usual shape (fractions of
    other lengths) is parsed as mysqlclient would have and encoded from there, so
    that it comes out as it did from objects. A date that is no date (``0000-00-00``,
    ``2026-02-31``), which mysqlclient would make None of, is kept as the server's
    text in the file's shape (``invalid_date_text``), so that it is restored as
    stored rather than as NULL.
    """
    from MySQLdb.times import Date_or_None, DateTime_or_None

    if field_kind == "DateField":

        def encode_date(
            value: Any, parse: Callable[[str], Any] = datetime.date.fromisoformat
        ) -> Any:
            if type(value) is not str:
                return encode_object(value)
            if len(value) == 10:
                try:
                    parse(value)  # a zero date, or the 31st of February, is not
                except ValueError:
                    pass
                else:
                    return value
            parsed = Date_or_None(value)
            if parsed is None and MYSQL_DATE_TEXT.fullmatch(value):
                return value
            return _encoded(parsed, encode_object)

        return encode_date
    # Naive UTC text, as Django stores aware datetimes on MySQL, becomes the
    # file's "+00:00"; in another connection time zone, objects are made first.
    offset: str | None = ""
    if settings.USE_TZ:
        utc = getattr(connection, "timezone_name", "UTC") == "UTC"
        offset = "+00:00" if utc else None

    def encode_datetime(
        value: Any,
        parse: Callable[[str], Any] = datetime.datetime.fromisoformat,
        lengths: frozenset[int] = DATETIME_TEXT_LENGTHS,
    ) -> Any:
        if type(value) is not str:
            return encode_object(value)
        if offset is not None and len(value) in lengths and value[10] == " ":
            try:
                parse(value)  # a zero date, or the 31st of February, is not
            except ValueError:
                pass
            else:
                if value[19:] == ".000000":
                    return f"{value[:10]}T{value[11:19]}{offset}"
                return f"{value[:10]}T{value[11:]}{offset}"
        parsed = DateTime_or_None(value)
        if parsed is None and (kept := invalid_date_text(value, offset)) is not None:
            return kept
        return _encoded(parsed, encode_object)

    return encode_datetime


# MySQL's TIME text: up to 838 hours either way, as time spans are stored.
MYSQL_TIME_TEXT = re.compile(r"-?\d{2,3}:\d{2}:\d{2}(?:\.\d{1,6})?")


def mysql_time_encoder(encode_object: Encoder) -> Encoder:
    """Turn MySQL's text times (our reads ask for text) into the file's text.

    A TIME column holds a span of up to 838 hours either way. A time of day is
    written as Django's own parse of it would be; a value outside the day (such as
    ``100:00:00`` or ``-01:00:00``), which that parse refuses, is kept as the
    server's text, without a zero fraction, and restored as stored.
    """
    from django.db.backends.utils import typecast_time

    def encode_time(value: Any, lengths: frozenset[int] = TIME_TEXT_LENGTHS) -> Any:
        if type(value) is not str:
            return encode_object(value)
        if len(value) in lengths and value[2] == ":" and "00" <= value[:2] <= "23":
            return value[:8] if value[8:] == ".000000" else value
        if value[:1] != "-" and value.find(":") == 2 and value[:2] <= "23":
            return encode_object(typecast_time(value))  # another fraction length
        if MYSQL_TIME_TEXT.fullmatch(value):
            return value.removesuffix(".000000")
        return encode_object(typecast_time(value))

    return encode_time


def invalid_date_text(value: str, offset: str | None) -> str | None:
    """MySQL's text of a datetime whose date is no date, in the file's shape: "T"
    between date and time, six digits of fraction unless it is zero, and the
    file's UTC offset (none where the connection's time zone is not UTC, as no
    offset can be worked out for it). None for any other text."""
    match = MYSQL_DATETIME_TEXT.fullmatch(value)
    if match is None:
        return None
    day, time, fraction = match.groups()
    fraction = (fraction or "").ljust(6, "0")
    shown = "" if fraction == "000000" else f".{fraction}"
    return f"{day}T{time}{shown}{offset or ''}"


def postgres_interval(value: Any) -> Any:
    """An interval as microseconds; one with months or years, which the backend
    reads as PostgreSQL's text (``1 year 2 mons``), as that text, which
    PostgreSQL reads back as the same interval."""
    return value if type(value) is str else duration_micros(value)


def text_kept(encode: Encoder) -> Encoder:
    """Keep the text a backend read for a value Python cannot hold (PostgreSQL's
    ``24:00:00``, ``postgresql._text_when_out_of_range``); encode any other."""

    def encode_value(value: Any) -> Any:
        return value if type(value) is str else encode(value)

    return encode_value


def _interval_parameter(value: Any) -> Any:
    return value if type(value) is str else duration_value(value)


def _encoded(value: Any, encode: Encoder) -> Any:
    return None if value is None else encode(value)


MEMO_SIZE = 100_000


def sqlite_decimal_encoder(
    base: models.Field[Any, Any], table: str, connection: Any
) -> Encoder:
    """Turn SQLite's float or integer decimals into the file's text directly.

    Django reads them with a 15-digit context and quantizes to the column's places;
    Python's "%.15g" rounds the same way (to nearest, ties to even, from the exact
    binary value), so padding its text with zeros gives the same result. Anything it
    cannot pad (more places than the column has, exponents, too many digits) goes
    through Django's converter.
    """
    slow = column_encoder_steps(base, table, connection)
    decimal_field = cast("models.DecimalField[Any, Any]", base)  # its kind says so
    places = decimal_field.decimal_places
    whole_digits = decimal_field.max_digits - places

    # Columns of prices repeat their values a lot: remember recent texts. Zero is
    # left out, as 0.0 and -0.0 are one key but two texts; the usual zeros (0 and
    # 0.0, common in columns of discounts) have their text ready.
    memo: dict[float | int, str] = {}

    def encode_decimal(value: Any) -> Any:
        if value:
            if (text := memo.get(value)) is not None:
                return text
        elif zero is not None and (
            type(value) is int
            or (type(value) is float and math.copysign(1.0, value) > 0)
        ):
            return zero
        text = padded(value)
        if text is None:
            return slow(value)
        if value:
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[value] = text
        return text

    def padded(value: Any) -> str | None:
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

    zero = padded(0)
    return encode_decimal


def sqlite_temporal_encoder(
    field_kind: str, base: models.Field[Any, Any], table: str, connection: Any
) -> Encoder:
    """Turn SQLite's text dates, times and datetimes into the file's text directly.

    Text in any other shape (written by other programs, or with a zero fraction) goes
    through Django's converters, which parse it, and comes out the same as from any
    other vendor.
    """
    slow = _parsed(column_encoder_steps(base, table, connection))

    def usual(value: Any, lengths: frozenset[int]) -> bool:
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
        return lambda value: value if usual(value, TIME_TEXT_LENGTHS) else slow(value)
    if settings.USE_TZ and getattr(connection, "timezone_name", "UTC") != "UTC":
        return slow
    offset = "+00:00" if settings.USE_TZ else ""

    def encode_datetime(
        value: Any, lengths: frozenset[int] = DATETIME_TEXT_LENGTHS
    ) -> Any:
        # usual(), written out: this runs for every datetime of a table.
        if (
            type(value) is str
            and len(value) in lengths
            and value[10] == " "
            and not value.endswith(".000000")
        ):
            return value[:10] + "T" + value[11:] + offset
        return slow(value)

    return encode_datetime


def _parsed(encode: Encoder) -> Encoder:
    """Refuse text that Django's date parsers give up on (they return None)."""

    def parse(value: Any) -> Any:
        result = encode(value)
        if result is None:
            raise ValueError("Django's parser cannot read it")
        return result

    return parse


def _encoder_steps(
    base: models.Field[Any, Any], table: str, connection: Any
) -> list[Encoder]:
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
    def encode(value: Any, steps: tuple[Encoder, ...] = tuple(steps)) -> Any:
        for step in steps:
            value = step(value)
        return value

    return encode


def column_encoder_steps(
    base: models.Field[Any, Any], table: str, connection: Any
) -> Encoder:
    """The general encoder of a column, which the shortcuts fall back on."""
    return _chain(_encoder_steps(base, table, connection))


class UnfitValueError(TypeError):
    """A column holds a value of another type than its field's values have in a
    backup (``checked_types``)."""


def checked_types(field: models.Field[Any, Any]) -> frozenset[type] | None:
    """Return the types a column's values may have once encoded, when the field's
    type has no encoding rule of ours (integers, booleans, text, IP addresses):
    the JSON types of that type in a backup (``JSON_TYPES``), and None. None for
    the other types, whose rules make values of the right type or fail.

    A value of another type comes from a column whose own type is not the field's:
    a MySQL ``YEAR`` (a number) or ``BLOB`` (bytes) under the TextField that
    ``inspectdb`` guesses, a ``tinyint(1)`` holding 2 under a BooleanField, numbers
    that SQLite keeps in the column of a text field. A file holding it would be
    refused as damaged by every reader.
    """
    field_kind = kind(field)
    if field_kind in ENCODERS or field_kind in TEMPORAL_KINDS:
        return None
    allowed = JSON_TYPES.get(field_kind)
    return None if allowed is None else allowed | {type(None)}


def unfit_value(field: models.Field[Any, Any], value: Any) -> str:
    """Say what is wrong with a value that ``checked_types`` does not allow."""
    field_kind = kind(field)
    holds = " or ".join(sorted({JSON_NAMES[t] for t in JSON_TYPES[field_kind]}))
    found = JSON_NAMES.get(type(value), f"a {type(value).__name__}")
    hint = " (a BinaryField for bytes)" if isinstance(value, bytes) else ""
    article = "an" if field_kind[0] in "AEIOU" else "a"
    return (
        f"is {found} where {article} {field_kind} holds {holds}; give the field "
        f"the column's type{hint}, or exclude the model"
    )


def _types_vary(field_kind: str, connection: Any) -> bool:
    """Whether the values of one column may come in more than one type: on SQLite,
    which keeps any value in any column, and MySQL's booleans, of which Django's
    converter makes True and False of 1 and 0 only. Elsewhere the column's type
    decides the driver's type, and one value tells for all."""
    return connection.vendor == "sqlite" or (
        connection.vendor == "mysql" and field_kind == "BooleanField"
    )


def batch_encoder(
    fields: Sequence[models.Field[Any, Any]],
    table: str,
    connection: Any,
    *,
    checked: bool = False,
) -> Callable[[list[Any]], bytes]:
    """Return a function from a batch of raw rows to one JSON array: ``[[row],[row]]``.

    ``checked``, for rows that go into a file: raise UnfitValueError for a value
    of another type than its field's (``checked_types``). Unchecked, such a value
    is written as it is, which only compares as different from a file's."""
    steps = [
        (index, encoder)
        for index, field in enumerate(fields)
        if (encoder := column_encoder(field, table, connection)) is not None
    ]
    checks = [
        (index, allowed, _types_vary(kind(field), connection))
        for index, field in enumerate(fields)
        if checked and (allowed := checked_types(field)) is not None
    ]
    every = [(index, allowed) for index, allowed, vary in checks if vary]
    sampled = [(index, allowed) for index, allowed, vary in checks if not vary]
    by_column = bool(steps or every)
    dumps = orjson.dumps
    if not by_column and not sampled:
        return dumps

    def unfit(index: int, value: Any) -> UnfitValueError:
        field = fields[index]
        return UnfitValueError(
            f"{field.model._meta.label}.{field.name}: a stored value "
            f"{unfit_value(field, value)}"
        )

    def encode_batch(rows: list[Any]) -> bytes:
        if not rows:
            return b"[]"
        # Column by column: one comprehension per column to convert rather than a
        # loop over the columns of every row (orjson writes tuples as arrays).
        columns: list[Sequence[Any]] = (
            list(zip(*rows, strict=True)) if by_column else []
        )
        for index, encoder in steps:
            columns[index] = [
                None if value is None else encoder(value) for value in columns[index]
            ]
        for index, allowed in every:
            if not set(map(type, columns[index])) <= allowed:
                raise unfit(
                    index, next(v for v in columns[index] if type(v) not in allowed)
                )
        for index, allowed in sampled:
            values = columns[index] if by_column else (row[index] for row in rows)
            value = next((v for v in values if v is not None), None)
            if type(value) not in allowed:
                raise unfit(index, value)
        return dumps(list(zip(*columns, strict=True)) if steps else rows)

    return encode_batch


def lines_encoder(
    fields: Sequence[models.Field[Any, Any]], table: str, connection: Any
) -> Callable[[list[Any]], memoryview | None]:
    """Return a function from a batch of raw rows to their lines, without the last
    newline, or None when the batch must be encoded row by row.

    One orjson call per batch: ``[[row],[row]]`` with each ``],[`` turned into a
    line break, the outer brackets left out. orjson escapes line breaks inside
    strings, so the lines are right exactly when there are as many line breaks as
    rows between them; a string value holding ``],[`` adds one.
    """
    return lines_of(batch_encoder(fields, table, connection))


def block_encoder(
    fields: Sequence[models.Field[Any, Any]],
    table: str,
    connection: Any,
    *,
    checked: bool = False,
) -> Callable[[list[Any]], bytes]:
    """Return a function from a batch of raw rows to their lines, each ending in a
    newline: the bytes of the rows in a backup (``checked``: see ``batch_encoder``)."""
    encode_batch = batch_encoder(fields, table, connection, checked=checked)
    encode_lines = lines_of(encode_batch)

    def encode_block(rows: list[Any]) -> bytes:
        if not rows:
            return b""
        lines = encode_lines(rows)
        if lines is not None:
            return b"".join((lines, b"\n"))
        return b"".join(encode_batch([row])[1:-1] + b"\n" for row in rows)

    return encode_block


def owned_bytes(value: Any) -> Any:
    """A driver's memoryview (PostgreSQL's bytea) as bytes, which compare, hash and
    pickle by value; any other value as it is."""
    return bytes(value) if isinstance(value, memoryview) else value


# --- decoding: JSON value -> parameter for an INSERT or COPY ------------------------


def _uuid_hex(value: str) -> str:
    return value.replace("-", "")


# "YYYY-MM-DDTHH:MM:SS" and the same with ".ffffff": datetimes without an offset.
NAIVE_ISO_LENGTHS = frozenset({19, 26})
# ``invalid_date_text`` in the file, with or without an offset.
FILE_INVALID_DATE = re.compile(
    r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2}(?:\.\d{6})?)(?:[+-]\d{2}:\d{2})?"
)


def _datetime_decoder(connection: Any) -> Encoder:
    ops = connection.ops
    utc = getattr(connection, "timezone_name", "UTC") == "UTC"
    mysql = connection.vendor == "mysql"

    def decode(value: str) -> Any:
        # Django stores datetimes on SQLite and MySQL as naive UTC text with a space.
        if utc and value.endswith("+00:00"):
            return value[:-6].replace("T", " ", 1)
        if utc and len(value) in NAIVE_ISO_LENGTHS:
            return value.replace("T", " ", 1)
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            # A MySQL date that is no date (``invalid_date_text``): no time zone
            # applies to it; MySQL takes the text.
            if mysql and (match := FILE_INVALID_DATE.fullmatch(value)):
                return " ".join(match.groups())
            raise
        return ops.adapt_datetimefield_value(moment)

    return decode


def column_decoder(
    field: models.Field[Any, Any], connection: Any, version: int = FORMAT_VERSION
) -> Encoder | None:
    """Return a function from a JSON value (not None) to what the database accepts."""
    field_kind = kind(field)
    if field_kind == "TimeField" and version < 2:
        return v1_time
    if field_kind == "BinaryField":
        return binary_value
    if field_kind == "FloatField":
        return float_number
    if connection.vendor == "postgresql":
        # COPY parses ISO datetimes, decimals, UUIDs and JSON text by itself, and
        # intervals kept as text (``postgres_interval``).
        if field_kind == "DurationField":
            return _interval_parameter
        return None
    if field_kind == "DurationField":
        return (
            None
            if not connection.features.has_native_duration_field
            else duration_value
        )
    if field_kind == "UUIDField" and not connection.features.has_native_uuid_field:
        return _uuid_hex
    if field_kind == "DateTimeField":
        return _datetime_decoder(connection)
    return None


def row_decoder(
    fields: Sequence[models.Field[Any, Any]],
    insert_fields: Sequence[models.Field[Any, Any]],
    connection: Any,
    version: int = FORMAT_VERSION,
) -> Callable[[list[Any]], tuple[Any, ...]]:
    """Return a function from a row of the file (format ``version``) to the tuple an
    INSERT takes."""
    positions = [fields.index(f) for f in insert_fields]
    steps: list[tuple[int, Encoder]] = []
    for index, field in enumerate(insert_fields):
        decoder = column_decoder(field, connection, version)
        if decoder is not None:
            steps.append((index, decoder))
    keep_all = positions == list(range(len(fields)))
    if not steps and keep_all:
        return tuple

    def decode(row: list[Any]) -> tuple[Any, ...]:
        if not keep_all:
            row = [row[i] for i in positions]
        for index, decoder in steps:
            value = row[index]
            if value is not None:
                row[index] = decoder(value)
        return tuple(row)

    return decode
