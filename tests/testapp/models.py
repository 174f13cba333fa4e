"""The model zoo: every field type and relation shape a backup must carry exactly."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.functions import Now


class AllFields(models.Model):
    """One column of every concrete field type Django ships."""

    id = models.BigAutoField(primary_key=True)
    boolean = models.BooleanField(default=False)
    null_boolean = models.BooleanField(null=True, blank=True)
    char = models.CharField(max_length=255, blank=True, default="")
    text = models.TextField(blank=True, default="")
    slug = models.SlugField(max_length=100, blank=True, default="")
    email = models.EmailField(blank=True, default="")
    url = models.URLField(max_length=500, blank=True, default="")
    integer = models.IntegerField(null=True, blank=True)
    small_integer = models.SmallIntegerField(null=True, blank=True)
    big_integer = models.BigIntegerField(null=True, blank=True)
    positive_integer = models.PositiveIntegerField(null=True, blank=True)
    positive_small_integer = models.PositiveSmallIntegerField(null=True, blank=True)
    positive_big_integer = models.PositiveBigIntegerField(null=True, blank=True)
    floating = models.FloatField(null=True, blank=True)
    decimal_wide = models.DecimalField(
        max_digits=30, decimal_places=10, null=True, blank=True
    )
    decimal_money = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True
    )
    day = models.DateField(null=True, blank=True)
    moment = models.DateTimeField(null=True, blank=True)
    clock = models.TimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    identifier = models.UUIDField(default=uuid.uuid4)
    binary = models.BinaryField(null=True, blank=True)
    # null=True so that SQL NULL and JSON null are two different stored values.
    json = models.JSONField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    file_path = models.FilePathField(
        path="/srv/backups-app-tests", max_length=200, blank=True, default=""
    )
    attachment = models.FileField(upload_to="attachments/", max_length=200, blank=True)
    # ImageField needs Pillow, which django-colorfield already depends on.
    picture = models.ImageField(upload_to="pictures/", max_length=200, blank=True)
    # A restore must keep the stored values of these two, not stamp "now".
    modified = models.DateTimeField(auto_now=True)
    created = models.DateTimeField(auto_now_add=True)
    # Filled by the database when an INSERT leaves them out.
    db_counter = models.IntegerField(db_default=42)
    db_stamp = models.DateTimeField(db_default=Now())
    gen_a = models.IntegerField(default=0)
    gen_b = models.IntegerField(default=0)
    # Generated columns cannot be written: a restore skips them on insert and a
    # validation still compares them.
    gen_total = models.GeneratedField(
        expression=models.F("gen_a") + models.F("gen_b"),
        output_field=models.BigIntegerField(),
        db_persist=True,
    )

    class Meta:
        verbose_name_plural = "all fields"

    def __str__(self) -> str:
        return f"AllFields {self.pk}"


class Node(models.Model):
    """A tree: rows point at rows of the same table."""

    name = models.CharField(max_length=100)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )

    def __str__(self) -> str:
        return self.name


class Author(models.Model):
    """One half of a nullable foreign-key cycle with Book."""

    name = models.CharField(max_length=100)
    favorite_book = models.ForeignKey(
        "Book", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")

    def __str__(self) -> str:
        return self.title


class CycleA(models.Model):
    """One half of a foreign-key cycle that is non-nullable both ways.

    Rows can only be written with constraint checks deferred (PostgreSQL, SQLite)
    or disabled (MySQL) until both halves exist.
    """

    name = models.CharField(max_length=50)
    b = models.ForeignKey("CycleB", on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return self.name


class CycleB(models.Model):
    name = models.CharField(max_length=50)
    a = models.ForeignKey(CycleA, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return self.name


class Person(models.Model):
    name = models.CharField(max_length=100)
    # A ManyToManyField to "self" is symmetrical: one link is stored as two rows.
    friends = models.ManyToManyField("self", blank=True)

    def __str__(self) -> str:
        return self.name


class Club(models.Model):
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(
        Person, through="Membership", related_name="clubs", blank=True
    )

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """An explicit many-to-many through model with fields of its own."""

    person = models.ForeignKey(Person, on_delete=models.CASCADE)
    club = models.ForeignKey(Club, on_delete=models.CASCADE)
    role = models.CharField(max_length=50, blank=True)
    joined = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["person", "club"], name="testapp_membership_person_club"
            )
        ]

    def __str__(self) -> str:
        return f"{self.person_id} in {self.club_id}"


class Label(models.Model):
    id = models.SmallAutoField(primary_key=True)
    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class Tagged(models.Model):
    title = models.CharField(max_length=100)
    labels = models.ManyToManyField(Label, blank=True, related_name="tagged")

    def __str__(self) -> str:
        return self.title


class NamedBase(models.Model):
    """An abstract base: its fields live in each concrete child's table."""

    name = models.CharField(max_length=100)
    opened = models.DateField(null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class Place(NamedBase):
    address = models.CharField(max_length=200, blank=True)


class Restaurant(Place):
    serves_pasta = models.BooleanField(default=False)


class Pizzeria(Restaurant):
    wood_fired = models.BooleanField(default=True)


class ProxyPlace(Place):
    """A proxy has no table of its own."""

    class Meta:
        proxy = True


class Legacy(models.Model):
    """An unmanaged model: Django never creates its table, and a backup skips it."""

    code = models.CharField(max_length=10, primary_key=True)
    value = models.TextField()

    class Meta:
        managed = False
        db_table = "testapp_legacy_external"

    def __str__(self) -> str:
        return self.code


class Comment(models.Model):
    """A generic foreign key; object_id is text so it can hold any primary key."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.CharField(max_length=64)
    content_object = GenericForeignKey("content_type", "object_id")
    body = models.TextField()

    def __str__(self) -> str:
        return f"Comment {self.pk}"


class Profile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="zoo_profile"
    )
    bio = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Profile of {self.user_id}"


class UUIDPk(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class UUIDChild(models.Model):
    parent = models.ForeignKey(
        UUIDPk, on_delete=models.CASCADE, related_name="children"
    )
    note = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.note


class CharPk(models.Model):
    code = models.CharField(max_length=20, primary_key=True)
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.code


class CharChild(models.Model):
    parent = models.ForeignKey(
        CharPk, on_delete=models.CASCADE, related_name="children"
    )
    note = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.note


class CompositeItem(models.Model):
    """A composite primary key; Django allows no foreign key to point at it."""

    pk = models.CompositePrimaryKey("tenant", "code")
    tenant = models.PositiveIntegerField()
    code = models.CharField(max_length=20)
    quantity = models.IntegerField(default=0)
    note = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.tenant}/{self.code}"


class VisibleManager(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(hidden=False)


class Secretive(models.Model):
    """Its default manager hides rows; a backup must still carry them."""

    name = models.CharField(max_length=100)
    hidden = models.BooleanField(default=False)

    objects = VisibleManager()

    def __str__(self) -> str:
        return self.name


class OddTable(models.Model):
    """A mixed-case table name, and db_column renames (one to a reserved word)."""

    name = models.CharField(max_length=100, db_column="display_name")
    position = models.IntegerField(db_column="order")
    node = models.ForeignKey(
        Node, null=True, blank=True, on_delete=models.SET_NULL, db_column="node_ref"
    )

    class Meta:
        db_table = "testapp_odd_Table"

    def __str__(self) -> str:
        return self.name


class Country(models.Model):
    iso_code = models.CharField(max_length=2, unique=True)
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class City(models.Model):
    """A foreign key to a unique column that is not the primary key."""

    name = models.CharField(max_length=100)
    country = models.ForeignKey(
        Country, to_field="iso_code", on_delete=models.CASCADE, related_name="cities"
    )

    def __str__(self) -> str:
        return self.name
