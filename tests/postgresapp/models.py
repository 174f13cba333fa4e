"""A column of every field type django.contrib.postgres ships (PostgreSQL only:
``migrate`` makes the table nowhere else), for tests/test_postgres_values.py."""

from django.contrib.postgres.fields import (
    ArrayField,
    BigIntegerRangeField,
    DateRangeField,
    DateTimeRangeField,
    DecimalRangeField,
    HStoreField,
    IntegerRangeField,
)
from django.contrib.postgres.search import SearchVectorField
from django.db import models


class PostgresValue(models.Model):
    tags = ArrayField(models.CharField(max_length=20), null=True)
    matrix = ArrayField(ArrayField(models.IntegerField(null=True)), null=True)
    moments = ArrayField(models.DateTimeField(), null=True)
    attributes = HStoreField(null=True)
    integers = IntegerRangeField(null=True)
    big_integers = BigIntegerRangeField(null=True)
    decimals = DecimalRangeField(null=True)
    datetimes = DateTimeRangeField(null=True)
    dates = DateRangeField(null=True)
    search = SearchVectorField(null=True)

    class Meta:
        required_db_vendor = "postgresql"

    def __str__(self) -> str:
        return f"PostgresValue {self.pk}"
