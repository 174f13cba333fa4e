from django.contrib import admin

from .models import (
    Business,
    Customer,
    Employee,
    Order,
    OrderItem,
    Product,
    ProductVariant,
    StockMovement,
    Tag,
)


@admin.register(Business)
class BusinessAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Employee)
class EmployeeAdmin(admin.ModelAdmin):
    list_display = ["name", "business", "role", "manager", "hired_on", "hourly_rate"]
    list_filter = ["role", "business"]
    list_select_related = ["business", "manager"]
    search_fields = ["name", "email"]
    raw_id_fields = ["manager", "user"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "business"]
    list_filter = ["business"]
    search_fields = ["name"]


class ProductVariantInline(admin.TabularInline):
    model = ProductVariant
    extra = 0


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "business", "category", "created_at"]
    list_filter = ["category", "business"]
    list_select_related = ["business"]
    search_fields = ["name"]
    filter_horizontal = ["tags"]
    inlines = [ProductVariantInline]


@admin.register(ProductVariant)
class ProductVariantAdmin(admin.ModelAdmin):
    list_display = ["sku", "product", "price", "cost", "is_active"]
    list_filter = ["is_active", "product__category"]
    list_select_related = ["product"]
    search_fields = ["sku", "product__name"]
    raw_id_fields = ["product"]


@admin.register(StockMovement)
class StockMovementAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "variant", "quantity", "reason", "created_by"]
    list_filter = ["reason"]
    list_select_related = ["variant", "created_by"]
    search_fields = ["variant__sku"]
    raw_id_fields = ["variant", "created_by"]
    # The ledger is the biggest table; counting it for every page is wasted work.
    show_full_result_count = False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "phone", "business", "created_at"]
    list_filter = ["business"]
    list_select_related = ["business"]
    search_fields = ["name", "email", "phone"]
    readonly_fields = ["uuid"]


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0
    raw_id_fields = ["variant"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "business", "customer", "status", "placed_at", "total"]
    list_filter = ["status", "business"]
    list_select_related = ["business", "customer"]
    search_fields = ["number", "customer__name", "customer__email"]
    raw_id_fields = ["customer"]
    inlines = [OrderItemInline]
    show_full_result_count = False


@admin.register(OrderItem)
class OrderItemAdmin(admin.ModelAdmin):
    list_display = ["order", "variant", "quantity", "unit_price", "discount"]
    list_select_related = ["order", "variant"]
    search_fields = ["order__number", "variant__sku"]
    raw_id_fields = ["order", "variant"]
    show_full_result_count = False
