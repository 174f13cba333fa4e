"""A small retail business: catalogue, stock ledger, customers and orders."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone


class Business(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    is_active = models.BooleanField(default=True)
    settings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "businesses"

    def __str__(self):
        return self.name


class Employee(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MANAGER = "manager", "Store manager"
        CLERK = "clerk", "Sales clerk"
        STOCKKEEPER = "stockkeeper", "Stock keeper"

    business = models.ForeignKey(
        Business, on_delete=models.CASCADE, related_name="employees"
    )
    name = models.CharField(max_length=150)
    email = models.EmailField(blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.CLERK)
    manager = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reports",
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="employee",
    )
    hired_on = models.DateField()
    hourly_rate = models.DecimalField(max_digits=8, decimal_places=2)

    class Meta:
        ordering = ["business", "name"]

    def __str__(self):
        return self.name


class Tag(models.Model):
    business = models.ForeignKey(
        Business, on_delete=models.CASCADE, related_name="tags"
    )
    name = models.CharField(max_length=50)

    class Meta:
        ordering = ["business", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["business", "name"], name="shop_tag_unique_name_per_business"
            ),
        ]

    def __str__(self):
        return self.name


class Product(models.Model):
    class Category(models.TextChoices):
        APPAREL = "apparel", "Apparel"
        FOOTWEAR = "footwear", "Footwear"
        ACCESSORIES = "accessories", "Accessories"
        HOME = "home", "Home & living"
        FOOD = "food", "Food & drink"

    business = models.ForeignKey(
        Business, on_delete=models.CASCADE, related_name="products"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=20, choices=Category.choices, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    tags = models.ManyToManyField(Tag, blank=True, related_name="products")
    # A photo in the default storage (seeddemo draws one for the first products).
    image = models.ImageField(upload_to="products/", max_length=200, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ProductVariant(models.Model):
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="variants"
    )
    sku = models.CharField("SKU", max_length=40, unique=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    # Purchase cost per unit; suppliers quote fractions of a cent.
    cost = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    weight_grams = models.PositiveIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self):
        return self.sku


class StockMovement(models.Model):
    """One line of the stock ledger; the stock level is the sum of the quantities."""

    class Reason(models.TextChoices):
        PURCHASE = "purchase", "Purchase"
        SALE = "sale", "Sale"
        RETURN = "return", "Customer return"
        ADJUSTMENT = "adjustment", "Stock count adjustment"
        TRANSFER = "transfer", "Transfer"

    # No index of its own: the (variant, occurred_at) index below serves it.
    variant = models.ForeignKey(
        ProductVariant,
        on_delete=models.PROTECT,
        related_name="stock_movements",
        db_index=False,
    )
    occurred_at = models.DateTimeField()
    # Negative when stock leaves.
    quantity = models.IntegerField()
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        Employee,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="stock_movements",
    )

    class Meta:
        indexes = [
            models.Index(
                fields=["variant", "occurred_at"], name="shop_stock_variant_time"
            ),
            models.Index(fields=["occurred_at"], name="shop_stock_occurred_at"),
        ]

    def __str__(self):
        return f"{self.quantity:+d} × {self.variant_id} ({self.reason})"


class Customer(models.Model):
    business = models.ForeignKey(
        Business, on_delete=models.CASCADE, related_name="customers"
    )
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True, db_index=True)
    phone = models.CharField(max_length=32, blank=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        DELIVERED = "delivered", "Delivered"
        CANCELLED = "cancelled", "Cancelled"
        REFUNDED = "refunded", "Refunded"

    business = models.ForeignKey(
        Business, on_delete=models.CASCADE, related_name="orders"
    )
    # Empty for walk-in sales at the till.
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
    )
    number = models.CharField(max_length=20)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    placed_at = models.DateTimeField(db_index=True)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    notes = models.TextField(blank=True)
    # The invoice sent, a PDF in the default storage.
    invoice = models.FileField(upload_to="invoices/", max_length=200, blank=True)

    class Meta:
        ordering = ["-placed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["business", "number"], name="shop_order_unique_number"
            ),
        ]

    def __str__(self):
        return self.number


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    variant = models.ForeignKey(
        ProductVariant, on_delete=models.PROTECT, related_name="order_items"
    )
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    # Discount on the whole line, not per unit.
    discount = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("0")
    )

    def __str__(self):
        return f"{self.quantity} × {self.variant_id}"
