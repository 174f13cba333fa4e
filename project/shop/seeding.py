"""Reproducible demo data for the shop: a few businesses with a busy stock ledger.

Primary keys are assigned here rather than by the database, so rows can point at each
other without reading anything back, and the whole data set is inserted with large
``bulk_create`` batches inside one transaction.
"""

from __future__ import annotations

import itertools
import math
import random
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.color import no_style
from django.db import connections, models, transaction
from django.utils import timezone
from django.utils.text import slugify

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
from .vocabulary import (
    ADJECTIVES,
    ADJUSTMENT_NOTES,
    ALLERGENS,
    BUSINESS_NAMES,
    COLORS,
    CURRENCIES,
    FIRST_NAMES,
    LAST_NAMES,
    MATERIALS,
    NOUNS,
    ORDER_NOTES,
    SIZES,
    TAG_NAMES,
    TRANSFER_NOTES,
)

ProductTag = Product.tags.through

# Parents before children: the order rows are inserted in.
SHOP_MODELS: tuple[type[models.Model], ...] = (
    Business,
    Employee,
    Tag,
    Product,
    ProductTag,
    ProductVariant,
    StockMovement,
    Customer,
    Order,
    OrderItem,
)
# mutate() needs rows in these.
MUTATED_MODELS = (ProductVariant, StockMovement, Order)
CATEGORY_CODES = {
    "apparel": "APP",
    "footwear": "SHO",
    "accessories": "ACC",
    "home": "HOM",
    "food": "GRO",
}
MIN_ROWS = 200
INSERT_BATCH = 5_000
# Businesses opened before the ledger starts; the ledger and orders cover four years.
OPENING_START = datetime(2015, 3, 1, tzinfo=UTC)
LEDGER_START = datetime(2022, 1, 1, tzinfo=UTC)
LEDGER_END = datetime(2025, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)

Role = Employee.Role
STAFF_ROLES = [Role.CLERK, Role.CLERK, Role.CLERK, Role.STOCKKEEPER]
HOURLY_RATE_CENTS = {
    Role.OWNER: (3500, 6000),
    Role.MANAGER: (2200, 3200),
    Role.CLERK: (1350, 1900),
    Role.STOCKKEEPER: (1350, 1900),
}
Reason = StockMovement.Reason
REASONS = [
    Reason.SALE,
    Reason.PURCHASE,
    Reason.ADJUSTMENT,
    Reason.RETURN,
    Reason.TRANSFER,
]
REASON_CUM_WEIGHTS = [55, 80, 90, 95, 100]
Status = Order.Status
CLOSED_STATUSES = [Status.DELIVERED, Status.CANCELLED, Status.REFUNDED, Status.SHIPPED]
CLOSED_CUM_WEIGHTS = [80, 89, 95, 100]
OPEN_STATUSES = [Status.PENDING, Status.PAID, Status.SHIPPED]


@dataclass(frozen=True)
class Plan:
    """How many rows each table gets for a given total."""

    businesses: int
    employees: int
    tags: int
    products: int
    product_tags: int
    variants: int
    stock_movements: int
    customers: int
    orders: int
    order_items: int

    @classmethod
    def for_rows(cls, rows: int) -> Plan:
        if rows < MIN_ROWS:
            raise ValueError(f"The demo needs at least {MIN_ROWS:,} rows.")
        # 5 businesses for a couple of thousand rows, 20 from a million on.
        businesses = round(5 + 15 * min(1.0, max(0.0, math.log10(rows / 1000) / 3)))
        employees = businesses * min(40, 4 + rows // 25_000)
        tags = businesses * 8
        products = max(2 * businesses, rows // 200)
        variants = 3 * products
        product_tags = products * 3 // 2
        customers = max(2 * businesses, rows // 50)
        orders = max(businesses, rows * 2 // 25)
        head = businesses + employees + tags + products + product_tags + variants
        head += customers + orders
        # The stock ledger and the order lines hold the bulk, as in a real shop.
        order_items = max(orders, (rows - head) * 2 // 5)
        return cls(
            businesses=businesses,
            employees=employees,
            tags=tags,
            products=products,
            product_tags=product_tags,
            variants=variants,
            stock_movements=rows - head - order_items,
            customers=customers,
            orders=orders,
            order_items=order_items,
        )


@dataclass
class SeedSummary:
    rows: dict[str, int] = field(default_factory=dict)
    users_created: int = 0
    users_reused: int = 0

    @property
    def total(self) -> int:
        return sum(self.rows.values())


@dataclass
class _Shop:
    """What later tables need to know about one business."""

    business: Business
    code: str
    weight: float
    tag_ids: list[int] = field(default_factory=list)
    employee_ids: range = range(0)
    customer_ids: range = range(0)
    variant_ids: range = range(0)
    order_count: int = 0


def shop_tables_in(using: str) -> set[str]:
    """Return the names of the shop tables that exist in database ``using``."""
    existing = set(connections[using].introspection.table_names())
    return {m._meta.db_table for m in SHOP_MODELS} & existing


def seed(rows: int, *, using: str, seed: int = 1, clear: bool = False) -> SeedSummary:
    """Fill the shop tables with ``rows`` rows; they must be empty unless ``clear``."""
    plan = Plan.for_rows(rows)
    with transaction.atomic(using=using):
        if clear:
            _clear(using)
        summary = _Seeder(plan, using=using, rng=random.Random(seed)).run()
        _reset_sequences(using)
    return summary


def _clear(using: str) -> None:
    connection = connections[using]
    tables = [m._meta.db_table for m in SHOP_MODELS]
    # Without a sequence reset every backend deletes inside the transaction (on MySQL,
    # TRUNCATE would commit it); the sequences are reset after the inserts anyway.
    statements = connection.ops.sql_flush(no_style(), tables, reset_sequences=False)
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def _reset_sequences(using: str) -> None:
    connection = connections[using]
    statements = connection.ops.sequence_reset_sql(no_style(), SHOP_MODELS)
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def _spread(rng: random.Random, total: int, n: int, low: int, high: int) -> list[int]:
    """Return ``n`` random counts from ``low`` to ``high`` adding up to ``total``."""
    counts = [low] * n
    open_slots = list(range(n))
    for _ in range(total - low * n):
        k = rng.randrange(len(open_slots))
        slot = open_slots[k]
        counts[slot] += 1
        if counts[slot] == high:
            open_slots[k] = open_slots[-1]
            open_slots.pop()
    return counts


def _allocate(total: int, weights: list[float], minimum: int) -> list[int]:
    """Split ``total`` in proportion to ``weights``, each share at least ``minimum``."""
    rest = total - minimum * len(weights)
    shares = [rest * w / sum(weights) for w in weights]
    counts = [int(s) for s in shares]
    by_remainder = sorted(range(len(weights)), key=lambda i: counts[i] - shares[i])
    for i in by_remainder[: rest - sum(counts)]:
        counts[i] += 1
    return [minimum + c for c in counts]


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


def _cents(value: int) -> Decimal:
    return Decimal(value).scaleb(-2)


class _Seeder:
    def __init__(self, plan: Plan, *, using: str, rng: random.Random) -> None:
        self.plan = plan
        self.using = using
        self.rng = rng
        self.summary = SeedSummary()
        self.shops: list[_Shop] = []
        self.variant_shop: list[_Shop] = []  # indexed by variant id - 1
        self.variant_price: list[int] = []  # cents, indexed by variant id - 1

    def run(self) -> SeedSummary:
        self.create_businesses()
        self.create_employees()
        self.create_tags()
        self.create_products()
        self.create_stock_movements()
        self.create_customers()
        self.create_orders()
        return self.summary

    def insert(self, model: type[models.Model], objs: Iterable[models.Model]) -> None:
        label = model._meta.label
        self.summary.rows.setdefault(label, 0)
        manager = model._base_manager.db_manager(self.using)
        for batch in _batched(objs, INSERT_BATCH):
            manager.bulk_create(batch)
            self.summary.rows[label] += len(batch)

    def moment(self, start: datetime, end: datetime) -> datetime:
        span = (end - start) // timedelta(microseconds=1)
        return start + timedelta(microseconds=self.rng.randrange(span))

    def person(self) -> tuple[str, str]:
        return self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)

    def create_businesses(self) -> None:
        rng = self.rng
        names = rng.sample(BUSINESS_NAMES, self.plan.businesses)
        objs = []
        for pk, name in enumerate(names, start=1):
            currency, tz = rng.choice(CURRENCIES)
            business = Business(
                id=pk,
                name=name,
                slug=slugify(name),
                created_at=self.moment(OPENING_START, LEDGER_START),
                is_active=rng.random() > 0.1,
                settings={
                    "currency": currency,
                    "timezone": tz,
                    "low_stock_threshold": rng.choice([3, 5, 10]),
                    "receipt_footer": f"Thank you for shopping at {name}!",
                    "opening_hours": {"mon-fri": "09:00-18:00", "sat": "10:00-16:00"},
                },
            )
            code = "".join(w[0] for w in _ascii_words(name))[:3].upper()
            self.shops.append(_Shop(business, code, rng.lognormvariate(0, 0.8)))
            objs.append(business)
        self.insert(Business, objs)

    def create_employees(self) -> None:
        rng = self.rng
        weights = [s.weight for s in self.shops]
        sizes = _allocate(self.plan.employees, weights, 4)
        owners = self.create_owner_users()
        objs: list[Employee] = []
        next_id = 1
        for shop, size, user_id in zip(self.shops, sizes, owners, strict=True):
            # Ids are shuffled within the shop, so that some people were entered before
            # their manager; rows are still inserted managers first.
            ids = list(range(next_id, next_id + size))
            rng.shuffle(ids)
            shop.employee_ids = range(next_id, next_id + size)
            next_id += size
            n_managers = max(1, size // 6)
            owner_id = ids[0]
            for i, pk in enumerate(ids):
                if i == 0:
                    role, manager_id = Employee.Role.OWNER, None
                elif i <= n_managers:
                    role, manager_id = Employee.Role.MANAGER, owner_id
                else:
                    role = rng.choice(STAFF_ROLES)
                    manager_id = ids[rng.randint(1, n_managers)]
                low, high = HOURLY_RATE_CENTS[role]
                first, last = self.person()
                local_part = _ascii(first) + "." + _ascii(last)
                objs.append(
                    Employee(
                        id=pk,
                        business_id=shop.business.pk,
                        name=f"{first} {last}",
                        email=f"{local_part}@{shop.business.slug}.example",
                        role=role,
                        manager_id=manager_id,
                        user_id=user_id if i == 0 else None,
                        hired_on=self.moment(
                            shop.business.created_at, LEDGER_END
                        ).date(),
                        hourly_rate=_cents(rng.randrange(low, high, 25)),
                    )
                )
        self.insert(Employee, objs)

    def create_owner_users(self) -> list[int]:
        """Return a user id per business, creating users that do not exist yet."""
        User = get_user_model()
        manager = User._default_manager.db_manager(self.using)
        usernames = [f"{shop.business.slug}-owner"[:150] for shop in self.shops]
        existing = dict(
            manager.filter(username__in=usernames).values_list("username", "pk")
        )
        new_users = []
        for shop, username in zip(self.shops, usernames, strict=True):
            if username not in existing:
                user = User(
                    username=username,
                    email=f"owner@{shop.business.slug}.example",
                    date_joined=shop.business.created_at,
                )
                user.set_unusable_password()
                new_users.append(user)
        manager.bulk_create(new_users)
        self.summary.users_created = len(new_users)
        self.summary.users_reused = len(existing)
        ids = dict(manager.filter(username__in=usernames).values_list("username", "pk"))
        return [ids[name] for name in usernames]

    def create_tags(self) -> None:
        objs = []
        for shop in self.shops:
            for name in self.rng.sample(TAG_NAMES, self.plan.tags // len(self.shops)):
                pk = len(objs) + 1
                shop.tag_ids.append(pk)
                objs.append(Tag(id=pk, business_id=shop.business.pk, name=name))
        self.insert(Tag, objs)

    def create_products(self) -> None:
        rng, plan = self.rng, self.plan
        weights = [s.weight for s in self.shops]
        per_shop = _allocate(plan.products, weights, 2)
        variants_per_product = _spread(rng, plan.variants, plan.products, 1, 5)
        tags_per_product = _spread(rng, plan.product_tags, plan.products, 0, 3)
        products, product_tags, variants = [], [], []
        for shop, count in zip(self.shops, per_shop, strict=True):
            categories = rng.sample(sorted(NOUNS), rng.randint(2, 3))
            first_variant = len(variants) + 1
            for _ in range(count):
                pk = len(products) + 1
                category = rng.choice(categories)
                adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS[category])
                name = f"{adjective} {noun}"
                products.append(
                    Product(
                        id=pk,
                        business_id=shop.business.pk,
                        name=name,
                        description=f"{name} from {shop.business.name}. "
                        f"Care and origin details are on the label.",
                        category=category,
                        created_at=self.moment(shop.business.created_at, LEDGER_START),
                    )
                )
                for tag_id in rng.sample(shop.tag_ids, tags_per_product[pk - 1]):
                    product_tags.append(
                        ProductTag(
                            id=len(product_tags) + 1, product_id=pk, tag_id=tag_id
                        )
                    )
                base_price = rng.randrange(299, 19_999)
                for _ in range(variants_per_product[pk - 1]):
                    variants.append(
                        self.variant(shop, pk, category, base_price, len(variants) + 1)
                    )
            shop.variant_ids = range(first_variant, len(variants) + 1)
        self.insert(Product, products)
        self.insert(ProductTag, product_tags)
        self.insert(ProductVariant, variants)

    def variant(
        self, shop: _Shop, product_id: int, category: str, base_price: int, pk: int
    ) -> ProductVariant:
        rng = self.rng
        price = max(99, base_price + rng.choice([0, 0, 0, 200, 500, -100]))
        if category == "apparel":
            attributes = {"color": rng.choice(COLORS), "size": rng.choice(SIZES)}
        elif category == "footwear":
            attributes = {"color": rng.choice(COLORS), "size_eu": rng.randint(36, 46)}
        elif category == "accessories":
            attributes = {
                "color": rng.choice(COLORS),
                "material": rng.choice(MATERIALS),
            }
        elif category == "home":
            width = rng.randrange(50, 600) / 10
            attributes = {
                "material": rng.choice(MATERIALS),
                "dimensions_cm": [width, round(width * 0.75, 1)],
            }
        else:
            attributes = {
                "net_weight_g": rng.choice([100, 250, 500, 1000]),
                "organic": rng.random() < 0.4,
                "allergens": rng.sample(ALLERGENS, rng.randint(0, 2)),
            }
        self.variant_shop.append(shop)
        self.variant_price.append(price)
        category_code = CATEGORY_CODES[category]
        cost = None
        if rng.random() > 0.1:
            cost = Decimal(price * rng.randrange(3500, 6000) // 100).scaleb(-4)
        return ProductVariant(
            id=pk,
            product_id=product_id,
            sku=f"{shop.code}-{category_code}-{pk:06d}",
            price=_cents(price),
            cost=cost,
            attributes=attributes,
            weight_grams=rng.randrange(20, 2500) if rng.random() > 0.15 else None,
            is_active=rng.random() > 0.08,
        )

    def create_stock_movements(self) -> None:
        self.insert(StockMovement, self.stock_movements())

    def stock_movements(self) -> Iterator[StockMovement]:
        rng = self.rng
        count = self.plan.stock_movements
        start = LEDGER_START
        step = (LEDGER_END - LEDGER_START) // max(count, 1)
        step_us = step // timedelta(microseconds=1)
        n_variants = len(self.variant_shop)
        reasons = rng.choices(REASONS, cum_weights=REASON_CUM_WEIGHTS, k=count)
        for i, reason in enumerate(reasons):
            # Append-only ledger: ids grow with time, with microsecond jitter.
            occurred_at = (
                start + i * step + timedelta(microseconds=rng.randrange(step_us))
            )
            variant_index = rng.randrange(n_variants)
            shop = self.variant_shop[variant_index]
            note = ""
            if reason == Reason.SALE:
                quantity = -rng.choice((1, 1, 1, 2, 2, 3, 5))
            elif reason == Reason.PURCHASE:
                quantity = rng.choice((6, 12, 12, 24, 48, 100))
                if rng.random() < 0.5:
                    po_number = rng.randrange(1, 9999)
                    note = f"PO-{occurred_at.year}-{po_number:04d}"
            elif reason == Reason.RETURN:
                quantity = rng.randint(1, 2)
            elif reason == Reason.ADJUSTMENT:
                quantity = rng.choice((-3, -2, -1, -1, 1, 2))
                note = rng.choice(ADJUSTMENT_NOTES)
            else:
                quantity = rng.choice((-20, -10, 10, 20))
                note = rng.choice(TRANSFER_NOTES)
            # Online sales are booked by the shop system, not by a person.
            created_by_id = None
            if reason != Reason.SALE or rng.random() >= 0.4:
                employees = shop.employee_ids
                created_by_id = employees[rng.randrange(len(employees))]
            yield StockMovement(
                id=i + 1,
                variant_id=variant_index + 1,
                occurred_at=occurred_at,
                quantity=quantity,
                reason=reason,
                note=note,
                created_by_id=created_by_id,
            )

    def create_customers(self) -> None:
        rng = self.rng
        sizes = _allocate(self.plan.customers, [s.weight for s in self.shops], 2)
        objs = []
        for shop, size in zip(self.shops, sizes, strict=True):
            shop.customer_ids = range(len(objs) + 1, len(objs) + size + 1)
            for pk in shop.customer_ids:
                first, last = self.person()
                email = ""
                if rng.random() < 0.85:
                    local_part = _ascii(first) + "." + _ascii(last)
                    email = f"{local_part}{pk}@example.com"
                phone = ""
                if rng.random() < 0.7:
                    country = rng.choice((1, 33, 44, 46, 49))
                    number = rng.randrange(10**9)
                    phone = f"+{country} {number:09d}"
                objs.append(
                    Customer(
                        id=pk,
                        business_id=shop.business.pk,
                        name=f"{first} {last}",
                        email=email,
                        phone=phone,
                        uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
                        created_at=self.moment(shop.business.created_at, LEDGER_END),
                    )
                )
        self.insert(Customer, objs)

    def create_orders(self) -> None:
        rng, plan = self.rng, self.plan
        items_per_order = _spread(rng, plan.order_items, plan.orders, 1, 12)
        cum_weights = list(_cumulative(s.weight for s in self.shops))
        order_shops = rng.choices(self.shops, cum_weights=cum_weights, k=plan.orders)
        step = (LEDGER_END - LEDGER_START) // plan.orders
        step_us = step // timedelta(microseconds=1)
        recent = plan.orders - max(1, plan.orders // 100)
        orders: list[Order] = []
        items: list[OrderItem] = []
        item_ids = itertools.count(1)
        for i, (shop, n_items) in enumerate(
            zip(order_shops, items_per_order, strict=True)
        ):
            pk = i + 1
            shop.order_count += 1
            placed_at = (
                LEDGER_START + i * step + timedelta(microseconds=rng.randrange(step_us))
            )
            if i >= recent:
                status = rng.choice(OPEN_STATUSES)
            else:
                status = rng.choices(CLOSED_STATUSES, cum_weights=CLOSED_CUM_WEIGHTS)[0]
            customer_id = None
            if rng.random() > 0.12:
                customer_id = shop.customer_ids[rng.randrange(len(shop.customer_ids))]
            variants = shop.variant_ids
            if n_items <= len(variants):
                chosen = rng.sample(variants, n_items)
            else:
                chosen = rng.choices(variants, k=n_items)
            total = 0
            for variant_id in chosen:
                quantity = rng.choice((1, 1, 1, 1, 1, 2, 2, 3, 4, 6))
                price = self.variant_price[variant_id - 1]
                discount = 0
                if rng.random() < 0.15:
                    discount = price * quantity * rng.choice((10, 15, 20)) // 100
                total += price * quantity - discount
                items.append(
                    OrderItem(
                        id=next(item_ids),
                        order_id=pk,
                        variant_id=variant_id,
                        quantity=quantity,
                        unit_price=_cents(price),
                        discount=_cents(discount),
                    )
                )
            orders.append(
                Order(
                    id=pk,
                    business_id=shop.business.pk,
                    customer_id=customer_id,
                    number=f"{shop.code}-{shop.order_count:06d}",
                    status=status,
                    placed_at=placed_at,
                    total=_cents(total),
                    notes=rng.choice(ORDER_NOTES) if rng.random() < 0.05 else "",
                )
            )
            if len(items) >= INSERT_BATCH:
                # Orders first: MySQL checks foreign keys row by row.
                self.insert(Order, orders)
                self.insert(OrderItem, items)
                orders, items = [], []
        self.insert(Order, orders)
        self.insert(OrderItem, items)


def _ascii_words(text: str) -> list[str]:
    return [w for w in (_ascii(part) for part in text.split()) if w]


def _cumulative(values: Iterable[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def _batched(objs: Iterable[models.Model], size: int) -> Iterator[list[models.Model]]:
    batch: list[models.Model] = []
    for obj in objs:
        batch.append(obj)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True)
class MutationSummary:
    added: int
    updated: int
    deleted: int
    tables: frozenset[str]


def mutate(*, using: str, seed: int = 1) -> MutationSummary:
    """Add, change and delete a few rows, as a day of business would."""
    rng = random.Random(seed)
    added: dict[str, int] = {}
    updated: dict[str, int] = {}
    with transaction.atomic(using=using):
        # A new business with staff and a tag: parent rows a restore has to remove.
        today = timezone.localdate()
        number = (
            Business.objects.using(using).filter(slug__startswith="pop-up").count() + 1
        )
        pop_up = Business.objects.using(using).create(
            name=f"Pop-up Store {number}",
            slug=f"pop-up-store-{number}",
            settings={"currency": "EUR", "timezone": "Europe/Berlin"},
        )
        lead = Employee.objects.using(using).create(
            business=pop_up,
            name="Mira Lindholm",
            role=Employee.Role.OWNER,
            hired_on=today,
            hourly_rate=Decimal("28.50"),
        )
        Employee.objects.using(using).create(
            business=pop_up,
            name="Jonas Weber",
            manager=lead,
            hired_on=today,
            hourly_rate=Decimal("15.75"),
        )
        Tag.objects.using(using).create(business=pop_up, name="pop-up")
        added.update({"shop.Business": 1, "shop.Employee": 2, "shop.Tag": 1})

        # A new customer's first web order, and the stock it took.
        first = _random_rows(ProductVariant, using, rng, 1)[0]
        business_id = first.product.business_id
        same_shop = (
            ProductVariant.objects.using(using)
            .filter(product__business_id=business_id)
            .exclude(pk=first.pk)
            .order_by("pk")
        )
        count = same_shop.count()
        variants = [first, same_shop[rng.randrange(count)]] if count else [first]
        customer = Customer.objects.using(using).create(
            business_id=business_id,
            name="Ada Nováková",
            email="ada.novakova@example.com",
        )
        web_orders = Order.objects.using(using).filter(
            business_id=business_id, number__startswith="WEB-"
        )
        web_number = web_orders.count() + 1
        order = Order.objects.using(using).create(
            business_id=business_id,
            customer=customer,
            number=f"WEB-{web_number:06d}",
            status=Order.Status.PAID,
            placed_at=timezone.now(),
            total=sum((v.price for v in variants), Decimal("0.00")),
        )
        for variant in variants:
            OrderItem.objects.using(using).create(
                order=order, variant=variant, unit_price=variant.price
            )
            StockMovement.objects.using(using).create(
                variant=variant,
                occurred_at=order.placed_at,
                quantity=-1,
                reason=StockMovement.Reason.SALE,
                note=order.number,
            )
        added.update(
            {
                "shop.Customer": 1,
                "shop.Order": 1,
                "shop.OrderItem": len(variants),
                "shop.StockMovement": len(variants),
            }
        )

        # One more tag on the product sold first: a row in the many-to-many table.
        product = first.product
        new_tag = (
            Tag.objects.using(using)
            .filter(business_id=business_id)
            .exclude(products=product)
            .order_by("pk")
            .first()
        )
        if new_tag is not None:
            product.tags.add(new_tag)
            added["shop.Product_tags"] = 1

        # A price rise and a batch of shipped orders.
        raised = _random_rows(ProductVariant, using, rng, 20)
        for variant in raised:
            variant.price = (variant.price * Decimal("1.05")).quantize(Decimal("0.01"))
            variant.save(using=using, update_fields=["price"])
        updated["shop.ProductVariant"] = len(raised)
        shipped = Order.objects.using(using).filter(
            pk__in=[o.pk for o in _random_rows(Order, using, rng, 5)]
        )
        updated["shop.Order"] = shipped.update(status=Order.Status.SHIPPED)

        # Mistaken ledger lines removed, and one order deleted with its lines.
        movements = [m.pk for m in _random_rows(StockMovement, using, rng, 10)]
        _, deleted = (
            StockMovement.objects.using(using).filter(pk__in=movements).delete()
        )
        doomed = _random_rows(Order, using, rng, 1)[0].pk
        for label, count in (
            Order.objects.using(using).filter(pk=doomed).delete()[1].items()
        ):
            deleted[label] = deleted.get(label, 0) + count
    return MutationSummary(
        added=sum(added.values()),
        updated=sum(updated.values()),
        deleted=sum(deleted.values()),
        tables=frozenset(added) | frozenset(updated) | frozenset(deleted),
    )


def _random_rows(model, using: str, rng: random.Random, count: int) -> list:
    """Return up to ``count`` distinct random rows of ``model``, reading few rows."""
    queryset = model._base_manager.using(using)
    if model is ProductVariant:
        queryset = queryset.select_related("product")
    bounds = queryset.aggregate(low=models.Min("pk"), high=models.Max("pk"))
    if bounds["low"] is None:
        return []
    rows: dict[int, models.Model] = {}
    for _ in range(count * 20):
        if len(rows) == count:
            break
        pk = rng.randint(bounds["low"], bounds["high"])
        row = queryset.filter(pk__gte=pk).order_by("pk").first()
        if row is not None:
            rows[row.pk] = row
    return list(rows.values())
