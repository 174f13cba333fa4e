"""A media file larger than 100 MB goes through backup, restore and validation in
flat memory: each process stays far below the file's size."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.test import TransactionTestCase

from tests.media_utils import clear_media
from tests.mediaapp.models import Document
from tests.test_bombs import run_measured

SIZE = 150 << 20
CHUNK = 1 << 20
# Django, the test settings and the app take about 70 MB before any file.
PEAK_RSS_LIMIT_MB = 130

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("tmp_path_on_test_case")]


def write_big_file(path: Path) -> str:
    """Write SIZE bytes that do not compress away; return their SHA-256."""
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = hashlib.sha256(b"big").digest()
    with open(path, "wb") as out:
        for number in range(SIZE // CHUNK):
            block = hashlib.sha256(seed + number.to_bytes(4, "big")).digest() * (
                CHUNK // 32
            )
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


class BigFileTests(TransactionTestCase):
    databases = {"default"}
    tmp_path: Path

    def test_memory_stays_flat_for_a_file_of_150_mb(self):
        clear_media()
        name = "documents/video.bin"
        local = Path(default_storage.path(name))
        expected = write_big_file(local)
        Document.objects.create(title="video", file=name)
        backup = self.tmp_path / "big.jsonl.gz"

        peak, code, stderr, _ = run_measured(
            "backup", "--output", str(backup), "--media"
        )
        assert code == 0, stderr
        assert peak < PEAK_RSS_LIMIT_MB, f"backup: {peak} MB"

        local.unlink()
        peak, code, stderr, _ = run_measured(
            "restore", str(backup), "--noinput", "--no-safety-backup"
        )
        assert code == 0, stderr
        assert peak < PEAK_RSS_LIMIT_MB, f"restore: {peak} MB"
        digest = hashlib.sha256()
        with open(local, "rb") as restored:
            while data := restored.read(CHUNK):
                digest.update(data)
        assert digest.hexdigest() == expected

        peak, code, stderr, _ = run_measured("validatebackup", str(backup))
        assert code == 0, stderr
        assert peak < PEAK_RSS_LIMIT_MB, f"validate: {peak} MB"
