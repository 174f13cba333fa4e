"""Factories for the model zoo, and the awkward values a backup must carry exactly.

``make_<model>(using=..., **overrides)`` creates one row with plain defaults.
``populate_zoo(using)`` fills every zoo table with a few rows of edge values, and
``mutate_zoo(using)`` then inserts, deletes and updates rows in every zoo table.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connections, models, transaction

from tests.testapp.models import (
    AllFields,
    Author,
    Book,
    CharChild,
    CharPk,
    City,
    Club,
    Comment,
    CompositeItem,
    Country,
    CycleA,
    CycleB,
    Label,
    Membership,
    Node,
    OddTable,
    Person,
    Pizzeria,
    Place,
    Profile,
    ProxyPlace,
    Restaurant,
    Secretive,
    Tagged,
    UUIDChild,
    UUIDPk,
)

UTC = dt.UTC

# Django 6.1 names a stored JSON null JSONNull(); Value(None, JSONField()) means the
# same on every version this app supports.
JSON_NULL = (
    models.JSONNull()
    if hasattr(models, "JSONNull")
    else models.Value(None, output_field=models.JSONField())
)

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

UNICODE_TEXT = (
    "Zoë 😀 👩‍👩‍👧 שלום עולם مرحبا e\u0301 \ufeffBOM \u2028sep\n"
    "line two\r\nline three\ttab 'single' \"double\" back\\slash %s %% {} "
    "; -- DROP TABLE x; trailing spaces   "
)

JSON_NESTED = {
    "nested": {
        "list": [1, 2.5, "três", None, True, False, {"deep": [[], {}]}],
        "emoji": "😀",
        "max_safe": 2**53 - 1,
        "min_safe": -(2**53 - 1),
    },
    "": "empty key",
    'quote"key': "back\\slash",
    "rtl": "שלום",
}


def vendor(using: str = "default") -> str:
    """Return the vendor of ``using``: ``sqlite``, ``postgresql`` or ``mysql``."""
    return connections[using].vendor


def stores_infinity(using: str = "default") -> bool:
    """Return whether FloatField keeps +-infinity on ``using`` (MySQL refuses it)."""
    return vendor(using) in {"sqlite", "postgresql"}


def stores_nan(using: str = "default") -> bool:
    """Return whether FloatField keeps NaN on ``using``.

    SQLite silently stores NaN as NULL, and MySQL refuses it.
    """
    return vendor(using) == "postgresql"


def widest_decimal(using: str = "default", *, negative: bool = False) -> Decimal:
    """Return a value for ``decimal_wide`` (30 digits, 10 places) using every digit.

    SQLite keeps decimals as 64-bit floats: Django reads back only 15 significant
    digits there, and fails to read a value with more, so SQLite gets the widest
    value it can hold.
    """
    digits = (
        "12345.6789012345" if vendor(using) == "sqlite" else "9" * 20 + "." + "9" * 10
    )
    return Decimal("-" + digits if negative else digits)


def _create(model: type[models.Model], using: str, fields: dict[str, Any]) -> Any:
    return model._base_manager.db_manager(using).create(**fields)


def make_all_fields(using: str = "default", **overrides: Any) -> AllFields:
    """Create an AllFields row; ``modified`` and ``created`` may be overridden too.

    auto_now and auto_now_add would stamp the current time, so the stored values
    are written by an UPDATE after the insert.
    """
    stamps = {
        "modified": overrides.pop(
            "modified", dt.datetime(2002, 2, 2, 2, 2, 2, 222222, tzinfo=UTC)
        ),
        "created": overrides.pop(
            "created", dt.datetime(2001, 1, 1, 1, 1, 1, 111111, tzinfo=UTC)
        ),
    }
    fields = {"char": "plain", "text": "plain text", "gen_a": 1, "gen_b": 2}
    fields.update(overrides)
    row = _create(AllFields, using, fields)
    AllFields._base_manager.using(using).filter(pk=row.pk).update(**stamps)
    row.refresh_from_db(using=using)
    return row


def make_node(using: str = "default", **overrides: Any) -> Node:
    return _create(Node, using, {"name": "node", **overrides})


def make_author(using: str = "default", **overrides: Any) -> Author:
    return _create(Author, using, {"name": "author", **overrides})


def make_book(using: str = "default", **overrides: Any) -> Book:
    fields = {"title": "book", **overrides}
    if "author" not in fields and "author_id" not in fields:
        fields["author"] = make_author(using)
    return _create(Book, using, fields)


@contextlib.contextmanager
def foreign_key_checks_off(connection: Any) -> Iterator[None]:
    """Foreign key checks off for the block, and back on after it only if they were
    on before: Django's ``constraint_checks_disabled`` turns MySQL's back on when it
    ends, even inside a caller that had them off."""
    if connection.vendor == "mysql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@foreign_key_checks")
            (on,) = cursor.fetchone()
        if not on:
            yield
            return
    with connection.constraint_checks_disabled():
        yield


def make_cycle_pair(
    using: str = "default", name: str = "pair"
) -> tuple[CycleA, CycleB]:
    """Create a CycleA and a CycleB that point at each other, both non-nullable.

    PostgreSQL and SQLite defer foreign key checks to the end of the transaction;
    MySQL checks each statement unless the checks are disabled.
    """
    connection = connections[using]
    with transaction.atomic(using=using), foreign_key_checks_off(connection):
        # The CycleB row does not exist yet: point at a placeholder (not 0, which
        # MySQL refuses for an AutoField) and fix it below.
        a = _create(CycleA, using, {"name": name + "-a", "b_id": -1})
        b = _create(CycleB, using, {"name": name + "-b", "a": a})
        a.b = b
        a.save(using=using, update_fields=["b"])
        connection.check_constraints(
            table_names=[CycleA._meta.db_table, CycleB._meta.db_table]
        )
    return a, b


def make_person(using: str = "default", **overrides: Any) -> Person:
    return _create(Person, using, {"name": "person", **overrides})


def make_club(using: str = "default", **overrides: Any) -> Club:
    return _create(Club, using, {"name": "club", **overrides})


def make_membership(using: str = "default", **overrides: Any) -> Membership:
    fields = {"role": "member", "joined": dt.date(2020, 2, 29), **overrides}
    if "person" not in fields and "person_id" not in fields:
        fields["person"] = make_person(using)
    if "club" not in fields and "club_id" not in fields:
        fields["club"] = make_club(using)
    return _create(Membership, using, fields)


def make_label(using: str = "default", **overrides: Any) -> Label:
    fields = {"name": "label-" + uuid.uuid4().hex[:8], **overrides}
    return _create(Label, using, fields)


def make_tagged(using: str = "default", **overrides: Any) -> Tagged:
    return _create(Tagged, using, {"title": "tagged", **overrides})


def make_place(using: str = "default", **overrides: Any) -> Place:
    return _create(Place, using, {"name": "place", "address": "1 Main St", **overrides})


def make_restaurant(using: str = "default", **overrides: Any) -> Restaurant:
    fields = {"name": "restaurant", "address": "2 Main St", "serves_pasta": True}
    return _create(Restaurant, using, {**fields, **overrides})


def make_pizzeria(using: str = "default", **overrides: Any) -> Pizzeria:
    fields = {"name": "pizzeria", "address": "3 Main St", "serves_pasta": True}
    return _create(Pizzeria, using, {**fields, "wood_fired": True, **overrides})


def make_proxy_place(using: str = "default", **overrides: Any) -> ProxyPlace:
    return _create(ProxyPlace, using, {"name": "proxied place", **overrides})


def make_comment(
    using: str = "default", *, target: models.Model, **overrides: Any
) -> Comment:
    content_type = ContentType.objects.db_manager(using).get_for_model(
        target, for_concrete_model=False
    )
    fields = {
        "content_type": content_type,
        "object_id": str(target.pk),
        "body": "comment",
        **overrides,
    }
    return _create(Comment, using, fields)


def make_user(using: str = "default", **overrides: Any) -> Any:
    user_model = get_user_model()
    fields = {"username": "user-" + uuid.uuid4().hex[:8], "password": "!", **overrides}
    return _create(user_model, using, fields)


def make_profile(using: str = "default", **overrides: Any) -> Profile:
    fields = {"bio": "bio", **overrides}
    if "user" not in fields and "user_id" not in fields:
        fields["user"] = make_user(using)
    return _create(Profile, using, fields)


def make_uuid_pk(using: str = "default", **overrides: Any) -> UUIDPk:
    return _create(UUIDPk, using, {"name": "uuid", **overrides})


def make_uuid_child(using: str = "default", **overrides: Any) -> UUIDChild:
    fields = {"note": "uuid child", **overrides}
    if "parent" not in fields and "parent_id" not in fields:
        fields["parent"] = make_uuid_pk(using)
    return _create(UUIDChild, using, fields)


def make_char_pk(using: str = "default", **overrides: Any) -> CharPk:
    fields = {"code": "code-" + uuid.uuid4().hex[:8], "name": "char", **overrides}
    return _create(CharPk, using, fields)


def make_char_child(using: str = "default", **overrides: Any) -> CharChild:
    fields = {"note": "char child", **overrides}
    if "parent" not in fields and "parent_id" not in fields:
        fields["parent"] = make_char_pk(using)
    return _create(CharChild, using, fields)


def make_composite_item(using: str = "default", **overrides: Any) -> CompositeItem:
    fields = {"tenant": 1, "code": "item-" + uuid.uuid4().hex[:8], **overrides}
    return _create(CompositeItem, using, fields)


def make_secretive(using: str = "default", **overrides: Any) -> Secretive:
    return _create(Secretive, using, {"name": "secret", **overrides})


def make_odd_table(using: str = "default", **overrides: Any) -> OddTable:
    return _create(OddTable, using, {"name": "odd", "position": 1, **overrides})


def make_country(using: str = "default", **overrides: Any) -> Country:
    return _create(
        Country, using, {"iso_code": "NL", "name": "Netherlands", **overrides}
    )


def make_city(using: str = "default", **overrides: Any) -> City:
    fields = {"name": "city", **overrides}
    if "country" not in fields and "country_id" not in fields:
        fields["country"] = make_country(using)
    return _create(City, using, fields)


def populate_zoo(using: str = "default") -> None:
    """Fill every zoo table with a few rows of edge values."""
    with transaction.atomic(using=using):
        _populate_all_fields(using)
        _populate_relations(using)


def all_fields_rows(using: str = "default") -> list[dict[str, Any]]:
    """Return the AllFields rows populate_zoo writes on ``using``, as create() kwargs.

    ``char`` names each row. Rows depend on the vendor only where a value cannot
    be stored there at all.
    """
    rows: list[dict[str, Any]] = [
        {
            "char": "😀" * 255,
            "boolean": True,
            "null_boolean": True,
            "text": UNICODE_TEXT,
            "slug": "a-slug_with-123",
            "email": "o'brien+tag@example.com",
            "url": "https://example.com/päth?q=1&r=%20#frag",
            "integer": INT32_MAX,
            "small_integer": 2**15 - 1,
            "big_integer": INT64_MAX,
            "positive_integer": INT32_MAX,
            "positive_small_integer": 2**15 - 1,
            "positive_big_integer": INT64_MAX,
            "floating": 1e308,
            "decimal_wide": widest_decimal(using),
            "decimal_money": Decimal("99999999.99"),
            "day": dt.date(9999, 12, 31),
            "moment": dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            "clock": dt.time(23, 59, 59, 999999),
            "duration": dt.timedelta(days=99999, seconds=86399, microseconds=999999),
            "identifier": uuid.UUID(int=2**128 - 1),
            "binary": bytes(range(256)),
            "json": JSON_NESTED,
            "ip_address": "2001:db8::ff00:42:8329",
            "file_path": "/srv/backups-app-tests/a b.txt",
            "attachment": "attachments/report 2024 (final).pdf",
            "picture": "pictures/ünïcode.png",
            "db_counter": -1,
            "db_stamp": dt.datetime(2000, 2, 29, 12, 0, 0, 1, tzinfo=UTC),
            "gen_a": 1000,
            "gen_b": -1,
        },
        {
            "char": "",
            "boolean": False,
            "null_boolean": False,
            "text": "",
            "integer": -(2**31),
            "small_integer": -(2**15),
            "big_integer": -(2**63),
            "positive_integer": 0,
            "positive_small_integer": 0,
            "positive_big_integer": 0,
            "floating": 5e-324,
            "decimal_wide": widest_decimal(using, negative=True),
            "decimal_money": Decimal("-99999999.99"),
            "day": dt.date(1, 1, 1),
            "moment": dt.datetime(1, 1, 1, tzinfo=UTC),
            "clock": dt.time(0, 0),
            "duration": dt.timedelta(days=-3, microseconds=1),
            "identifier": uuid.UUID(int=0),
            "binary": b"",
            "json": JSON_NULL,
            "ip_address": "192.0.2.1",
            "modified": dt.datetime(1, 1, 1, tzinfo=UTC),
            "created": dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            "gen_a": 0,
            "gen_b": 0,
        },
        # Every nullable column NULL; the db_default columns are left to the database.
        {
            "char": "nulls",
            "json": None,
            "identifier": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        },
        {
            "char": "typical",
            "integer": 0,
            "floating": 0.1,
            "decimal_wide": Decimal("-0.0000000001"),
            "decimal_money": Decimal("0.10"),
            "day": dt.date(2024, 2, 29),
            "moment": dt.datetime(2024, 2, 29, 13, 14, 15, 161718, tzinfo=UTC),
            "clock": dt.time(12, 0, 0, 1),
            "duration": dt.timedelta(microseconds=-1),
            "json": "just a string",
            "ip_address": "::ffff:192.0.2.128",
        },
        {
            "char": "json number",
            "floating": 1 / 3,
            "duration": dt.timedelta(0),
            "json": 2**53 - 1,
        },
        {"char": "json float", "floating": -1e-308, "json": 0.1},
        {"char": "json empty list", "json": []},
        {"char": "json empty object", "json": {}},
        {"char": "json false", "json": False},
    ]
    if stores_infinity(using):
        rows.append({"char": "infinity", "floating": math.inf})
        rows.append({"char": "-infinity", "floating": -math.inf})
    if stores_nan(using):
        rows.append({"char": "nan", "floating": math.nan})
    return rows


def _populate_all_fields(using: str) -> None:
    for fields in all_fields_rows(using):
        make_all_fields(using, **fields)
    if vendor(using) == "postgresql":
        # PostgreSQL keeps the sign of -0.0, but Django writes the parameter as a
        # client-side literal "-0.0", which PostgreSQL reads as numeric 0, so
        # only SQL can store it. SQLite and MariaDB store -0.0 as 0 whatever is
        # sent, so no other vendor gets this row.
        row = make_all_fields(using, char="negative zero")
        connection = connections[using]
        table = connection.ops.quote_name(AllFields._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE " + table + " SET floating = '-0'::float8 WHERE id = %s",
                [row.pk],
            )


def _populate_relations(using: str) -> None:
    # A tree whose parent is inserted after its child (higher primary key), so a
    # restore cannot simply follow primary key order.
    root = make_node(using, name="root")
    child = make_node(using, name="child", parent=root)
    make_node(using, name="grandchild", parent=child)
    orphan = make_node(using, name="late child")
    late_parent = make_node(using, name="late parent", parent=root)
    orphan.parent = late_parent
    orphan.save(using=using)

    ann = make_author(using, name="Ann")
    bob = make_author(using, name="Bob")
    first = make_book(using, title="First", author=ann)
    make_book(using, title="Second", author=ann)
    third = make_book(using, title="Third", author=bob)
    ann.favorite_book = third
    ann.save(using=using)
    bob.favorite_book = first
    bob.save(using=using)
    make_author(using, name="No favorite")

    make_cycle_pair(using, "one")
    make_cycle_pair(using, "two")

    alice = make_person(using, name="Alice")
    bert = make_person(using, name="Bert")
    cleo = make_person(using, name="Cleo")
    make_person(using, name="Loner")
    alice.friends.add(bert, cleo)
    bert.friends.add(bert)
    chess = make_club(using, name="Chess")
    make_club(using, name="Empty club")
    make_membership(using, person=alice, club=chess, role="chair")
    make_membership(using, person=bert, club=chess, role="", joined=None)

    red = make_label(using, name="red")
    green = make_label(using, name="green")
    make_label(using, name="unused")
    both = make_tagged(using, title="both")
    both.labels.add(red, green)
    make_tagged(using, title="red only").labels.add(red)
    make_tagged(using, title="none")
    make_tagged(using, title="spare")

    place = make_place(using, name="Plain place", opened=dt.date(1999, 12, 31))
    restaurant = make_restaurant(using, name="Trattoria")
    pizzeria = make_pizzeria(using, name="Da Michele", wood_fired=False)
    make_pizzeria(using, name="Napoli")
    make_proxy_place(using, name="Through a proxy")

    make_profile(using, user=make_user(using, username="alice"), bio=UNICODE_TEXT)
    make_profile(using, user=make_user(using, username="bob"), bio="")
    make_user(using, username="no-profile")

    plain_uuid = make_uuid_pk(using, name="fixed", id=uuid.UUID(int=1))
    make_uuid_pk(using, name="childless")
    make_uuid_child(using, parent=plain_uuid, note="first")
    make_uuid_child(using, parent=plain_uuid, note="second")

    alpha = make_char_pk(using, code="ALPHA", name="upper")
    make_char_pk(using, code="ünï-ß", name="unicode")
    make_char_pk(using, code="with space", name="spaced")
    make_char_child(using, parent=alpha, note="alpha child")
    make_char_child(using, parent=alpha, note="beta child")

    make_composite_item(using, tenant=1, code="A", quantity=INT32_MAX)
    make_composite_item(using, tenant=1, code="B", quantity=-(2**31))
    make_composite_item(using, tenant=2, code="A", note=UNICODE_TEXT)

    make_secretive(using, name="visible")
    make_secretive(using, name="hidden", hidden=True)
    make_secretive(using, name="also hidden", hidden=True)

    make_odd_table(using, name="first", position=1, node=root)
    make_odd_table(using, name="second", position=-1)

    netherlands = make_country(using, iso_code="NL", name="Netherlands")
    make_country(using, iso_code="BE", name="Belgium")
    make_city(using, name="Amsterdam", country=netherlands)
    make_city(using, name="Utrecht", country=netherlands)

    for target in (first, root, plain_uuid, alpha, pizzeria, restaurant, place, ann):
        make_comment(using, target=target, body=f"on {target}")
    make_comment(using, target=alice, body=UNICODE_TEXT)


def mutate_zoo(using: str = "default") -> None:
    """Insert, delete and update rows in every zoo table populated by populate_zoo."""
    connection = connections[using]
    with transaction.atomic(using=using):
        _mutate_all_fields(using)

        make_node(
            using, name="new leaf", parent=Node.objects.using(using).get(name="root")
        )
        Node.objects.using(using).filter(name="grandchild").delete()
        Node.objects.using(using).filter(name="late child").update(
            name="moved", parent=Node.objects.using(using).get(name="child")
        )

        ann = Author.objects.using(using).get(name="Ann")
        make_book(using, title="Fourth", author=ann)
        Book.objects.using(using).filter(title="Second").delete()
        Book.objects.using(using).filter(title="First").update(title="First, revised")
        Author.objects.using(using).filter(name="No favorite").delete()
        make_author(using, name="Newcomer")
        Author.objects.using(using).filter(name="Bob").update(favorite_book=None)

        make_cycle_pair(using, "three")
        with connection.constraint_checks_disabled():
            CycleA.objects.using(using).filter(name="one-a").delete()
        CycleB.objects.using(using).filter(name="two-b").update(name="two-b renamed")
        CycleA.objects.using(using).filter(name="two-a").update(name="two-a renamed")

        _mutate_people(using)
        _mutate_labels(using)
        _mutate_places(using)

        make_profile(using, bio="new profile")
        Profile.objects.using(using).filter(user__username="bob").delete()
        Profile.objects.using(using).filter(user__username="alice").update(bio="edited")

        uuid_parent = UUIDPk.objects.using(using).get(id=uuid.UUID(int=1))
        make_uuid_pk(using, name="new")
        make_uuid_child(using, parent=uuid_parent, note="third")
        UUIDPk.objects.using(using).filter(name="childless").delete()
        UUIDPk.objects.using(using).filter(name="fixed").update(name="fixed, renamed")
        UUIDChild.objects.using(using).filter(note="first").delete()
        UUIDChild.objects.using(using).filter(note="second").update(note="second!")

        alpha = CharPk.objects.using(using).get(code="ALPHA")
        make_char_pk(using, code="NEW", name="new")
        CharPk.objects.using(using).filter(code="with space").delete()
        CharPk.objects.using(using).filter(code="ünï-ß").update(name="renamed")
        make_char_child(using, parent=alpha, note="second alpha child")
        CharChild.objects.using(using).filter(note="alpha child").delete()
        CharChild.objects.using(using).filter(note="beta child").update(note="edited")

        make_composite_item(using, tenant=3, code="A")
        CompositeItem.objects.using(using).filter(tenant=1, code="B").delete()
        CompositeItem.objects.using(using).filter(tenant=2, code="A").update(quantity=7)

        secretive = Secretive._base_manager.using(using)
        make_secretive(using, name="new hidden", hidden=True)
        secretive.filter(name="also hidden").delete()
        secretive.filter(name="hidden").update(name="hidden, renamed")

        make_odd_table(using, name="third", position=3)
        OddTable.objects.using(using).filter(name="second").delete()
        OddTable.objects.using(using).filter(name="first").update(position=0, node=None)

        make_country(using, iso_code="DE", name="Germany")
        Country.objects.using(using).filter(iso_code="BE").delete()
        Country.objects.using(using).filter(iso_code="NL").update(name="Nederland")
        make_city(using, name="Berlin", country_id="DE")
        City.objects.using(using).filter(name="Utrecht").delete()
        City.objects.using(using).filter(name="Amsterdam").update(name="Mokum")

        make_comment(using, target=alpha, body="new comment")
        Comment.objects.using(using).filter(body="on Ann").delete()
        Comment.objects.using(using).filter(body="on root").update(body="edited")


def _mutate_all_fields(using: str) -> None:
    rows = AllFields.objects.using(using)
    make_all_fields(using, char="added", json={"added": True}, binary=b"\x00")
    rows.filter(char="nulls").delete()
    rows.filter(char="typical").update(
        floating=0.30000000000000004,
        json=JSON_NULL,
        binary=b"\xff",
        moment=dt.datetime(2024, 2, 29, 13, 14, 15, 161719, tzinfo=UTC),
    )


def _mutate_people(using: str) -> None:
    people = Person.objects.using(using)
    alice = people.get(name="Alice")
    bert = people.get(name="Bert")
    newcomer = make_person(using, name="Newcomer")
    alice.friends.add(newcomer)
    alice.friends.remove(people.get(name="Cleo"))
    # Repoint one stored link row in place: an update of the auto-created table.
    Person.friends.through.objects.using(using).filter(
        from_person=bert, to_person=bert
    ).update(to_person=newcomer)
    people.filter(name="Loner").delete()
    people.filter(name="Bert").update(name="Bertrand")

    chess = Club.objects.using(using).get(name="Chess")
    make_membership(using, person=newcomer, club=chess, role="new")
    Membership.objects.using(using).filter(role="").delete()
    Membership.objects.using(using).filter(role="chair").update(role="treasurer")
    make_club(using, name="Go")
    Club.objects.using(using).filter(name="Empty club").delete()
    Club.objects.using(using).filter(name="Chess").update(name="Chess & Go")


def _mutate_labels(using: str) -> None:
    labels = Label.objects.using(using)
    red = labels.get(name="red")
    blue = make_label(using, name="blue")
    labels.filter(name="unused").delete()
    labels.filter(name="green").update(name="lime")
    both = Tagged.objects.using(using).get(title="both")
    both.labels.remove(red)
    Tagged.objects.using(using).get(title="none").labels.add(blue)
    Tagged.labels.through.objects.using(using).filter(
        tagged__title="red only", label=red
    ).update(label=blue)
    make_tagged(using, title="new")
    Tagged.objects.using(using).filter(title="none").update(title="some")
    Tagged.objects.using(using).filter(title="spare").delete()


def _mutate_places(using: str) -> None:
    make_pizzeria(using, name="Sorbillo")
    Pizzeria.objects.using(using).filter(name="Napoli").delete()
    Pizzeria.objects.using(using).filter(name="Da Michele").update(wood_fired=True)
    Restaurant.objects.using(using).filter(name="Trattoria").update(serves_pasta=False)
    Place.objects.using(using).filter(name="Plain place").update(address="moved")
