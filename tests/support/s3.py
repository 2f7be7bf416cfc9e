"""A real S3-compatible server for tests: moto's server mode (`moto_server`, from the `test`
extra) as its own process on a free port, and the environment that points boto3 at it."""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.processes import Process, free_port

#: moto accepts any credentials; these only have to be present.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


@contextmanager
def s3_server(log_dir: Path) -> Iterator[dict[str, str]]:
    """Run moto's S3 server until the block ends; yields the AWS_* environment for boto3."""
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    process = Process([str(moto), "-H", "127.0.0.1", "-p", str(port)], log_dir / "moto_server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_for(lambda: _answers(url + "/moto-api/"), 60, "the S3 server")
        yield {"AWS_ENDPOINT_URL": url, **CREDENTIALS}
    finally:
        process.stop()


def s3_client(env: dict[str, str]) -> Any:
    """A boto3 S3 client of the server `env` (the AWS_* settings) points at."""
    import boto3

    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def make_bucket(env: dict[str, str], bucket: str) -> None:
    """Create `bucket` on the server `env` points at."""
    s3_client(env).create_bucket(Bucket=bucket)
