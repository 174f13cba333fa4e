"""The demo shop's files: real PNGs and PDFs, backed up and restored with the rows."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.test import TestCase
from PIL import Image

from backups_app.backup import create_backup
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from project.shop import files, seeding
from project.shop.models import Order, Product
from tests.media_utils import clear_media, sha
from tests.utils import snapshot

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


class DemoMediaTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        clear_media()
        seeding.seed(seeding.MIN_ROWS * 5, using="default")
        self.drawn = files.add_media(using="default")

    def read(self, name: str) -> bytes:
        with default_storage.open(name, "rb") as file:
            return file.read()

    def test_photos_are_images_and_invoices_are_pdfs(self):
        products = Product.objects.exclude(image="")
        assert products.count() == self.drawn.photos > 0
        product = products.first()
        with Image.open(io.BytesIO(self.read(product.image.name))) as image:
            assert (image.format, image.size) == ("PNG", (96, 96))
        order = Order.objects.exclude(invoice="").first()
        pdf = self.read(order.invoice.name)
        assert pdf.startswith(b"%PDF-1.4\n") and pdf.endswith(b"%%EOF\n")
        assert f"Invoice {order.number}".encode() in pdf

    def test_the_demo_round_trip(self):
        path = self.tmp_path / "demo.jsonl.gz"
        summary = create_backup(path, media=True)
        assert summary.media.files == self.drawn.photos + self.drawn.invoices
        rows, photo = snapshot(), Product.objects.exclude(image="").first().image.name
        before = sha(self.read(photo))
        seeding.mutate(using="default")
        changed = files.mutate_media(using="default")
        assert (changed.changed, changed.deleted, changed.added) == (3, 1, 1)
        assert not validate_backup(path).ok
        restore_backup(path, safety_backup=False, prune_media=True)
        assert snapshot() == rows
        assert sha(self.read(photo)) == before
        assert validate_backup(path).ok
