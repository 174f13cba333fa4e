"""Tables for the value and primary key order tests (tests/test_values.py).

``Value`` has one nullable column per field type Django ships; each property test
fills one of them. The ``*Key`` models have a primary key of each type, to check
that every vendor hands rows out in the format's order.
"""

from __future__ import annotations

from django.db import models


class Value(models.Model):
    id = models.BigAutoField(primary_key=True)
    boolean = models.BooleanField(null=True)
    char = models.CharField(max_length=255, null=True)
    text = models.TextField(null=True)
    slug = models.SlugField(max_length=100, null=True)
    email = models.EmailField(max_length=254, null=True)
    url = models.URLField(max_length=500, null=True)
    file_path = models.FilePathField(path="/srv", max_length=200, null=True)
    file = models.FileField(max_length=200, null=True)
    image = models.ImageField(max_length=200, null=True)
    integer = models.IntegerField(null=True)
    small_integer = models.SmallIntegerField(null=True)
    big_integer = models.BigIntegerField(null=True)
    positive_integer = models.PositiveIntegerField(null=True)
    positive_small_integer = models.PositiveSmallIntegerField(null=True)
    positive_big_integer = models.PositiveBigIntegerField(null=True)
    floating = models.FloatField(null=True)
    # SQLite keeps decimals as 64-bit floats: 15 significant digits hold exactly.
    decimal = models.DecimalField(max_digits=15, decimal_places=5, null=True)
    decimal_wide = models.DecimalField(max_digits=30, decimal_places=10, null=True)
    day = models.DateField(null=True)
    moment = models.DateTimeField(null=True)
    clock = models.TimeField(null=True)
    duration = models.DurationField(null=True)
    identifier = models.UUIDField(null=True)
    binary = models.BinaryField(null=True)
    document = models.JSONField(null=True)
    ip_address = models.GenericIPAddressField(null=True)

    def __str__(self) -> str:
        return f"Value {self.pk}"


class AutoKey(models.Model):
    id = models.AutoField(primary_key=True)


class BigAutoKey(models.Model):
    id = models.BigAutoField(primary_key=True)


class SmallAutoKey(models.Model):
    id = models.SmallAutoField(primary_key=True)


class CharKey(models.Model):
    code = models.CharField(max_length=50, primary_key=True)


class UUIDKey(models.Model):
    id = models.UUIDField(primary_key=True)


class DecimalKey(models.Model):
    amount = models.DecimalField(max_digits=12, decimal_places=3, primary_key=True)


class DateKey(models.Model):
    day = models.DateField(primary_key=True)


class IPKey(models.Model):
    address = models.GenericIPAddressField(primary_key=True)


class CompositeKey(models.Model):
    pk = models.CompositePrimaryKey("code", "number")
    code = models.CharField(max_length=50)
    number = models.IntegerField()


class UUIDParent(models.Model):
    id = models.UUIDField(primary_key=True)


class UUIDParentChild(UUIDParent):
    """Multi-table inheritance: the primary key is a one-to-one parent link."""

    note = models.CharField(max_length=20, blank=True)


class CharParentChild(CharKey):
    note = models.CharField(max_length=20, blank=True)
