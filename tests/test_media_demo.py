"""The demo shop's files: real PNGs and PDFs, backed up and restored with the rows."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
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

ROOT = Path(__file__).resolve().parent.parent

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


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_runs_end_to_end(tmp_path):
    """The README's first Quickstart command, as a new user runs it, in this
    virtualenv (``-o`` keeps make from installing into it) and with its database,
    storage and media in a temporary folder."""
    venv = Path(sys.prefix)
    demo_file = tmp_path / "backups" / "demo.jsonl.gz"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "BACKUPS_STORAGE_DIR": str(tmp_path / "storage"),
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
        "DJANGO_DEBUG": "0",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-o",
            str(venv / ".installed"),
            "demo",
            f"VENV={venv}",
            "DEMO_ROWS=2000",
            f"DEMO_FILE={demo_file}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Demo done" in done.stdout
    # The second backup finds every file's blob there already.
    again = done.stdout.split("==> Back up again", 1)[1].split("==>", 1)[0]
    assert "0 new blobs" in again, again
    assert demo_file.exists()
    assert not list(demo_file.parent.glob("*again*"))
    # validatebackup found the changes (exit status 1) between two exact matches.
    assert "as expected" in done.stdout
    assert done.stdout.count("match exactly, 0 differ") >= 2, done.stdout
