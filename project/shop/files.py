"""The demo shop's files: product photos (small generated PNGs) and invoice PDFs.

Rows reference them through ``Product.image`` and ``Order.invoice``, in the default
storage (``MEDIA_ROOT``), as a real shop's uploads would be. Everything is generated,
reproducibly from the seed: no file is shipped with the project.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image, ImageDraw

from .models import Order, Product

# A photo for each of the first products, an invoice for each of the first
# delivered orders: enough to show media being backed up, few enough to stay quick.
PHOTOS = 150
INVOICES = 60
PHOTO_SIZE = 96


@dataclass
class MediaSummary:
    photos: int = 0
    invoices: int = 0
    bytes: int = 0
    changed: int = 0
    deleted: int = 0
    added: int = 0


def photo(name: str, variant: int = 0) -> bytes:
    """A small PNG for a product: a colour of its own, a few shapes and stripes."""
    digest = hashlib.sha256(f"{name}\n{variant}".encode()).digest()
    rng = random.Random(digest)
    background = tuple(digest[:3])
    image = Image.new("RGB", (PHOTO_SIZE, PHOTO_SIZE), background)
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x, y = rng.randrange(PHOTO_SIZE), rng.randrange(PHOTO_SIZE)
        radius = rng.randrange(8, 28)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    for stripe in range(0, PHOTO_SIZE, 12):
        draw.line((0, stripe, PHOTO_SIZE, stripe + 6), fill=tuple(digest[3:6]))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def invoice(order: Order, note: str = "") -> bytes:
    """A one-page PDF invoice: the order's number, date, total and status."""
    lines = [
        f"Invoice {order.number}",
        f"Placed {order.placed_at:%Y-%m-%d %H:%M} UTC",
        f"Total {order.total}",
        f"Status {order.status}",
    ]
    if note:
        lines.append(note)
    text = "BT /F1 14 Tf 72 760 Td 18 TL " + " ".join(
        f"({_pdf_text(line)}) '" for line in lines
    )
    stream = text.encode("latin-1", "replace") + b" ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, xref)
    )
    return out.getvalue()


def _pdf_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _save(name: str, content: bytes) -> int:
    """Write ``content`` under exactly ``name`` in the default storage."""
    if default_storage.exists(name):
        default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(content))
    assert saved == name, (saved, name)
    return len(content)


def add_media(*, using: str) -> MediaSummary:
    """Give the first products a photo and the first delivered orders an invoice."""
    summary = MediaSummary()
    products = Product.objects.using(using).order_by("pk")[:PHOTOS]
    orders = Order.objects.using(using).filter(status=Order.Status.DELIVERED)
    with transaction.atomic(using=using):
        for product in products:
            name = f"products/{product.pk}.png"
            summary.bytes += _save(name, photo(product.name))
            product.image = name
            product.save(using=using, update_fields=["image"])
            summary.photos += 1
        for order in orders.order_by("pk")[:INVOICES]:
            name = f"invoices/{order.business_id}/{order.number}.pdf"
            summary.bytes += _save(name, invoice(order))
            order.invoice = name
            order.save(using=using, update_fields=["invoice"])
            summary.invoices += 1
    return summary


def mutate_media(*, using: str, seed: int = 1) -> MediaSummary:
    """A day's changes to the files: photos retouched, an invoice file lost, a new
    invoice for the newest order."""
    rng = random.Random(seed)
    summary = MediaSummary()
    with_photos = list(
        Product.objects.using(using).exclude(image="").order_by("pk")[:PHOTOS]
    )
    for product in rng.sample(with_photos, min(3, len(with_photos))):
        _save(product.image.name, photo(product.name, variant=1))
        summary.changed += 1
    invoiced = list(Order.objects.using(using).exclude(invoice="").order_by("pk"))
    if invoiced:
        lost = rng.choice(invoiced)
        default_storage.delete(lost.invoice.name)
        summary.deleted += 1
    newest = Order.objects.using(using).filter(invoice="").order_by("-pk").first()
    if newest is not None:
        name = f"invoices/{newest.business_id}/{newest.number}.pdf"
        _save(name, invoice(newest, note="Paid online"))
        newest.invoice = name
        newest.save(using=using, update_fields=["invoice"])
        summary.added += 1
    return summary
