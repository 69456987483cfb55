"""STOW-RS bodies are streamed to disk within a size limit and dropped when they arrive too slowly (issue 17)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pydicom
import pytest

from radgate.config import Settings
from radgate.dicomweb.multipart import parse_multipart_related
from radgate.dicomweb.upload import BodyRefused, UploadLimits, spool_body
from radgate.gateway import Gateway
from tests.dicomgen import make_dx, to_bytes
from tests.helpers.auth import token_headers

BOUNDARY = "radgate-limits"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def _body(*datasets: bytes) -> bytes:
    out = b""
    for data in datasets:
        out += f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


@pytest.fixture
def limited(settings: Settings) -> Iterator[Gateway]:
    settings.server.max_request_bytes = 4 * 1024**2
    settings.server.http_idle_timeout_s = 1.0
    settings.server.http_min_rate_bytes_s = 200.0
    gw = Gateway(settings)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()
        gw.db.dispose()


def _raw_request(port: int, head: str, body: bytes = b"", timeout: float = 10.0) -> tuple[bytes, float]:
    """Send ``head`` (and ``body``) on a raw socket; return what came back and how long it took."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode() + body)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
            if data.rstrip().endswith(b"}"):  # the JSON error body is complete
                break
    return data, time.monotonic() - start


def test_a_declared_length_over_the_limit_is_refused_before_reading(limited: Gateway) -> None:
    auth = token_headers(limited.db)["Authorization"]
    head = (
        f"POST /dicomweb/studies HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
        f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {10 * 1024**3}\r\n\r\n"
    )
    reply, elapsed = _raw_request(limited.http_port, head)  # sends no body at all
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"server.max_request_bytes" in reply
    assert elapsed < 5  # answered without waiting for the 10 GiB


def test_a_chunked_body_over_the_limit_is_cut_off(limited: Gateway) -> None:
    def chunks() -> Iterator[bytes]:
        yield f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        for _ in range(8):
            yield bytes(1024**2)

    r = httpx.post(
        f"http://127.0.0.1:{limited.http_port}/dicomweb/studies",
        content=chunks(),
        headers={"Content-Type": CONTENT_TYPE, **token_headers(limited.db)},
    )
    assert r.status_code == 413 and "server.max_request_bytes" in r.json()["error"]
    assert not list(limited.store.tmp.glob("stow-*"))  # the spooled file is removed


def test_a_byte_a_second_client_is_dropped_without_holding_others(limited: Gateway) -> None:
    port = limited.http_port
    result: dict[str, object] = {}
    headers = token_headers(limited.db)

    def slow() -> None:
        body = _body(to_bytes(make_dx()))
        head = (
            f"POST /dicomweb/studies HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {headers['Authorization']}\r\n"
            f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(head.encode())
            reply = b""
            try:
                for i in range(20):  # a byte a second, for up to 20 s
                    sock.sendall(body[i : i + 1])
                    sock.settimeout(1.0)
                    try:
                        chunk = sock.recv(65536)
                        while chunk:  # the reply: read it to its end (the server then closes)
                            reply += chunk
                            chunk = sock.recv(65536)
                        break
                    except TimeoutError:
                        continue
            except (BrokenPipeError, ConnectionResetError):
                pass
        result["reply"], result["elapsed"] = reply, time.monotonic() - start

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.5)
    # Meanwhile another caller stores an instance at once.
    start = time.monotonic()
    ok = httpx.post(
        f"http://127.0.0.1:{port}/dicomweb/studies",
        content=_body(to_bytes(make_dx())),
        headers={"Content-Type": CONTENT_TYPE, **headers},
        timeout=10,
    )
    assert ok.status_code == 200 and time.monotonic() - start < 5
    thread.join(30)
    reply = result["reply"]
    assert isinstance(reply, bytes) and reply.startswith(b"HTTP/1.1 408"), reply[:300]
    assert b"server.http_min_rate_bytes_s" in reply or b"server.http_idle_timeout_s" in reply
    assert float(result["elapsed"]) < 8  # type: ignore[arg-type]
    assert not list(limited.store.tmp.glob("stow-*"))


def test_spooling_keeps_memory_flat(tmp_path: Path) -> None:
    """64 MiB through spool_body and the parser: memory grows by one chunk and one part, not the body."""
    part = to_bytes(make_dx(size=256))

    async def chunks() -> AsyncIterator[bytes]:
        body = _body(*[part] * 4)
        for _ in range(1):
            yield body[: len(body) - len(f"--{BOUNDARY}--\r\n")]
        for _ in range(64):  # 64 MiB of padding parts with another media type
            yield f"--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
            yield bytes(1024**2 - 100) + b"\r\n"
        yield f"--{BOUNDARY}--\r\n".encode()

    limits = UploadLimits(max_bytes=1024**3, idle_timeout_s=5, min_rate_bytes_s=1)
    tracemalloc.start()
    spooled = asyncio.run(spool_body(chunks(), tmp_path, limits))
    with spooled:
        _, parts = parse_multipart_related(CONTENT_TYPE, spooled.buffer())
        assert len(parts) == 68 and spooled.size > 64 * 1024**2
        assert pydicom.dcmread(__import__("io").BytesIO(parts[0].body)).Rows == 256
        sizes = [p.size for p in parts]
        _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sizes[-1] == 1024**2 - 100
    assert peak < 8 * 1024**2, peak
    assert not list(tmp_path.iterdir())

    with pytest.raises(BodyRefused) as refused:
        asyncio.run(spool_body(chunks(), tmp_path, limits, content_length="99999999999"))
    assert refused.value.status == 413


def test_a_client_that_disconnects_mid_body_leaves_nothing(
    limited: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    body = _body(to_bytes(make_dx()))
    auth = token_headers(limited.db)
    head = (
        f"POST /dicomweb/studies HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth['Authorization']}\r\n"
        f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", limited.http_port), timeout=5) as sock:
        sock.sendall(head.encode() + body[: len(body) // 2])
    time.sleep(1.0)
    assert not list(limited.store.tmp.glob("stow-*"))
    assert "Traceback" not in caplog.text and "Exception in ASGI application" not in caplog.text
    ok = httpx.post(
        f"http://127.0.0.1:{limited.http_port}/dicomweb/studies",
        content=_body(to_bytes(make_dx())),
        headers={"Content-Type": CONTENT_TYPE, **auth},
    )
    assert ok.status_code == 200
