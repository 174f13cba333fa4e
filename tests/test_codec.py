"""Every value rule of the file format, one by one."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from decimal import Decimal

import orjson
import pytest

from backups_app.db import values as db_values
from backups_app.fileformat import codec


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ('{"b": [1, 2], "a": {"z": 1, "y": null}}', '{"a":{"y":null,"z":1},"b":[1,2]}'),
        ("null", "null"),
        ('"just a string"', '"just a string"'),
        ("9007199254740991", "9007199254740991"),
        ('{"ü": "😀"}', '{"ü":"😀"}'),
        # The standard library's own extensions, which orjson refuses to read.
        ('{"x": NaN}', '{"x":NaN}'),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
    ],
)
def test_json_documents_become_compact_text_with_sorted_keys(text, canonical):
    assert codec.canonical_json(text) == canonical
    assert codec.canonical_json(text.encode()) == canonical


def test_sql_null_and_json_null_stay_apart_in_a_row():
    encode = codec.ENCODERS["JSONField"]
    row = [None, encode("null")]
    assert orjson.loads(orjson.dumps(row)) == [None, "null"]


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0.1, 0.1),
        (-0.0, -0.0),
        (5e-324, 5e-324),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
    ],
)
def test_floats_keep_every_bit_and_name_the_infinities(value, encoded):
    result = codec.float_value(value)
    assert result == encoded
    back = codec.float_number(orjson.loads(orjson.dumps(result)))
    assert back.hex() == value.hex()


def test_nan_is_a_string_not_null():
    assert codec.float_value(math.nan) == "NaN"
    assert math.isnan(codec.float_number("NaN"))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("12.50"), "12.50"),
        (Decimal("0E-10"), "0.0000000000"),
        (
            Decimal("-99999999999999999999.9999999999"),
            "-99999999999999999999.9999999999",
        ),
        (Decimal("1E+3"), "1000"),
        ("42.00", "42.00"),
    ],
)
def test_decimals_are_plain_text(value, text):
    assert codec.decimal_text(value) == text


@pytest.mark.parametrize(
    "value",
    [
        dt.timedelta(0),
        dt.timedelta(microseconds=-1),
        dt.timedelta(days=-3, microseconds=1),
        dt.timedelta(days=99999, seconds=86399, microseconds=999999),
    ],
)
def test_durations_are_whole_microseconds(value):
    micros = codec.duration_micros(value)
    assert isinstance(micros, int)
    assert codec.duration_value(micros) == value
    # SQLite and MySQL store the microseconds already.
    assert codec.duration_micros(micros) == micros


def test_uuids_are_hyphenated_whatever_the_driver_returns():
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert codec.uuid_text(value) == str(value)
    assert codec.uuid_text(value.hex) == str(value)
    assert db_values._uuid_hex(str(value)) == value.hex


def test_binary_is_base64_of_every_byte():
    data = bytes(range(256))
    assert codec.binary_value(codec.binary_text(memoryview(data))) == data
    assert codec.binary_text(b"") == ""


def test_datetimes_keep_microseconds_and_offset():
    moment = dt.datetime(2024, 2, 29, 13, 14, 15, 161718, tzinfo=dt.UTC)
    assert orjson.dumps(moment) == b'"2024-02-29T13:14:15.161718+00:00"'


class FakeOps:
    def adapt_datetimefield_value(self, value):
        return f"adapted {value.isoformat()}"


class FakeConnection:
    ops = FakeOps()
    timezone_name = "UTC"
    vendor = "mysql"


class FakeParisConnection(FakeConnection):
    timezone_name = "Europe/Paris"


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("2024-02-29T13:14:15.161718+00:00", "2024-02-29 13:14:15.161718"),
        ("2024-02-29T13:14:15+00:00", "2024-02-29 13:14:15"),
        ("2024-02-29T13:14:15", "2024-02-29 13:14:15"),
        ("2024-02-29T15:14:15+02:00", "adapted 2024-02-29T15:14:15+02:00"),
    ],
)
def test_datetimes_are_stored_as_django_stores_them_on_sqlite_and_mysql(text, stored):
    assert db_values._datetime_decoder(FakeConnection())(text) == stored


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("0000-00-00T00:00:00+00:00", "0000-00-00 00:00:00"),
        ("2024-02-31T12:00:00.250000", "2024-02-31 12:00:00.250000"),
        ("2024-02-29T15:14:15+02:00", "adapted 2024-02-29T15:14:15+02:00"),
    ],
)
def test_mysqls_dates_that_are_no_dates_go_back_as_text_in_any_time_zone(text, stored):
    assert db_values._datetime_decoder(FakeParisConnection())(text) == stored


def test_elsewhere_a_date_that_is_no_date_cannot_be_converted():
    connection = FakeParisConnection()
    connection.vendor = "sqlite"
    with pytest.raises(ValueError, match="year 0 is out of range"):
        db_values._datetime_decoder(connection)("0000-00-00T00:00:00+00:00")


def test_primary_key_order_of_decimals_is_numeric():
    from django.db import models

    field = models.DecimalField(max_digits=10, decimal_places=2)
    field.column = "amount"
    key = codec.pk_key_function([field], [field])
    assert sorted([["10.00"], ["9.50"]], key=key) == [["9.50"], ["10.00"]]


def sqlite_connection():
    """A SQLite connection object, never opened: its converters are what count."""
    from django.db.utils import ConnectionHandler

    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    )
    return handler["default"]


@pytest.mark.parametrize("places", [0, 2, 4, 10])
def test_sqlite_decimal_shortcut_agrees_with_djangos_converter(places):
    import random

    from django.db import models

    connection = sqlite_connection()
    field = models.DecimalField(max_digits=places + 12, decimal_places=places)
    field.set_attributes_from_name("amount")
    fast = db_values.sqlite_decimal_encoder(field, "t", connection)
    slow = db_values.column_encoder_steps(field, "t", connection)
    generator = random.Random(places)
    values = [0, 0.0, -0.0, 0.1, 2.675, 1.005, 1 / 3, 123456.785, -7, 10**11]
    values += [
        round(generator.uniform(-1e9, 1e9), generator.randint(0, 6))
        for _ in range(5000)
    ]
    for value in values:
        try:
            expected = slow(value)
        except decimal.InvalidOperation:
            continue
        assert fast(value) == expected, value
        assert fast(value) == expected, value  # and again, from the memo


@pytest.mark.parametrize(("max_digits", "places"), [(4, 2), (2, 2), (3, 0)])
def test_sqlite_decimal_zeros_agree_with_djangos_converter(max_digits, places):
    """Zeros skip the memo (0.0 and -0.0 are one key but two texts)."""
    from django.db import models

    connection = sqlite_connection()
    field = models.DecimalField(max_digits=max_digits, decimal_places=places)
    field.set_attributes_from_name("amount")
    fast = db_values.sqlite_decimal_encoder(field, "t", connection)
    slow = db_values.column_encoder_steps(field, "t", connection)
    # In every order, so that no zero's text is taken for another's.
    for zeros in ([0, 0.0, -0.0], [-0.0, 0.0, 0], [0.0, -0.0, 0]):
        assert [fast(value) for value in zeros] == [slow(value) for value in zeros]


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("DateTimeField", "2024-02-29 13:14:15.161718"),
        ("DateTimeField", "2024-02-29 13:14:15"),
        ("DateTimeField", "2024-02-29 13:14:15.000000"),
        ("DateTimeField", "2024-02-29T13:14:15.5"),
        ("DateTimeField", "0001-01-01 00:00:00"),
        ("DateField", "2024-02-29"),
        ("TimeField", "23:59:59.999999"),
        ("TimeField", "00:00:00"),
        ("TimeField", "12:00:00.000000"),
    ],
)
def test_sqlite_temporal_shortcut_agrees_with_djangos_converters(kind, text):
    from django.db import models

    connection = sqlite_connection()
    field = getattr(models, kind)()
    field.set_attributes_from_name("moment")
    fast = db_values.sqlite_temporal_encoder(kind, field, "t", connection)
    slow = db_values.column_encoder_steps(field, "t", connection)
    assert orjson.dumps(fast(text)) == orjson.dumps(slow(text))


def test_times_always_have_six_fraction_digits():
    # orjson 3.13.0 writes time(21, 28, 28, 33608) as "21:28:28.33608" (.336080 to
    # any ISO 8601 reader); the codec writes times itself.
    for micros in range(1_000_000):
        text = codec.time_text(dt.time(21, 28, 28, micros))
        assert text == (f"21:28:28.{micros:06d}" if micros else "21:28:28"), micros
    assert codec.time_text(dt.time(0)) == "00:00:00"
    assert codec.time_text(dt.time(23, 59, 59, 999999)) == "23:59:59.999999"


@pytest.mark.parametrize("aware", [False, True])
def test_orjsons_datetimes_and_dates_are_the_formats_text(aware):
    # The format relies on orjson for datetimes and dates: pin every shape.
    tz = dt.UTC if aware else None
    offset = "+00:00" if aware else ""
    for micros in range(0, 1_000_000, 7):
        moment = dt.datetime(2024, 2, 29, 13, 14, 15, micros, tzinfo=tz)
        fraction = f".{micros:06d}" if micros else ""
        expected = f'"2024-02-29T13:14:15{fraction}{offset}"'.encode()
        assert orjson.dumps(moment) == expected, micros
    for year in (1, 999, 1000, 2000, 9999):
        moment = dt.datetime(year, 12, 31, 23, 59, 59, 10000, tzinfo=tz)
        expected = f'"{year:04d}-12-31T23:59:59.010000{offset}"'.encode()
        assert orjson.dumps(moment) == expected
        assert orjson.dumps(dt.date(year, 2, 28)) == f'"{year:04d}-02-28"'.encode()
    assert orjson.dumps(dt.date(2000, 2, 29)) == b'"2000-02-29"'


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("21:28:28.33608", "21:28:28.033608"),
        ("00:00:00.10000", "00:00:00.010000"),
        ("21:28:28.033608", "21:28:28.033608"),
        ("21:28:28.336080", "21:28:28.336080"),
        ("21:28:28", "21:28:28"),
    ],
)
def test_version_1_times_with_five_fraction_digits_lost_a_leading_zero(text, meant):
    assert codec.v1_time(text) == meant


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ('{"type": "none", "title": "Public"}', '{"title":"Public","type":"none"}'),
        ('{"a": [1, 2]}', '{ "a" : [ 1 , 2 ] }'),
        ("1e2", "100"),
        ("100.0", "100"),
        ("-0.0", "0"),
        ('"\\u00fc"', '"ü"'),
        ("123456789012345678901234567890", "1.2345678901234567890123456789e29"),
        ('{"x": NaN}', '{"x":NaN}'),
    ],
)
def test_json_documents_with_the_same_meaning_compare_equal(one, other):
    assert codec.json_meaning(one) == codec.json_meaning(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ('{"a": 1}', '{"a": 2}'),
        ('"1"', "1"),
        ("[1, 2]", "[2, 1]"),
        ("null", '"null"'),
        ("12345678901234567890123456789012", "12345678901234567890123456789013"),
        ("not json", "null"),
    ],
)
def test_json_documents_with_another_meaning_compare_unequal(one, other):
    assert codec.json_meaning(one) != codec.json_meaning(other)


def test_json_columns_keep_the_stored_text():
    stored = '{"type": "none",  "title": "Public"}'
    assert codec.json_text(stored) == stored
    assert codec.json_text(stored.encode()) == stored


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::ffff:1.2.3.4", "::ffff:102:304"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_ip_addresses_from_another_vendor_compare_by_address(one, other):
    assert codec.ip_meaning(one) == codec.ip_meaning(other)
    assert codec.ip_meaning("not an address") == "not an address"
    assert codec.ip_meaning("10.0.0.1") != codec.ip_meaning("10.0.0.2")
