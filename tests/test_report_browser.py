"""The batch report in a real browser: headless Chromium opens the pages from disk.

Chromium is driven over the DevTools protocol (a tiny WebSocket client on the loopback
interface, standard library only; Chromium is started with ``--remote-debugging-port=0``
and its port is read from ``DevToolsActivePort``). For the cohort page and a patient
page the test asserts:

* no console error: no ``Log.entryAdded`` of level error (failed resource loads,
  Content-Security-Policy violations), no ``Runtime.consoleAPICalled`` error, no
  ``Runtime.exceptionThrown``, no ``Network.loadingFailed``;
* every ``<img>`` loaded (``complete`` and ``naturalWidth > 0``, read with
  ``Runtime.evaluate``: the page itself has no script);
* the screenshot (``Page.captureScreenshot``) is not blank: grey-level standard
  deviation, number of distinct colours and share of non-white pixels above thresholds.

A control page with a missing image checks that the harness does see a failure.
Skipped, with the reason, only when ``/usr/bin/chromium`` is not installed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_report import KEY_A, built_batch

from netvolume.report import write_report

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless browser test: /usr/bin/chromium is not installed (apt-get install chromium)",
)

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
)


class DevTools:
    """A minimal Chrome DevTools Protocol client over one WebSocket (RFC 6455)."""

    def __init__(self, port: int, path: str, timeout: float = 20.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        assert b" 101 " in status, status
        self.buffer = head.split(b"\r\n\r\n", 1)[1]
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _message(self) -> dict[str, Any]:
        data = b""
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if b1 & 0x80 else b""
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            data += payload
            if b0 & 0x80:  # final fragment
                message: dict[str, Any] = json.loads(data)
                return message

    def send(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> int:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        msg.update(kw)
        self._send_frame(0x1, json.dumps(msg).encode())
        return self.next_id

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        """Send a command and return its result; events read meanwhile are kept."""
        kw = {"sessionId": session} if session else {}
        n = self.send(method, params, **kw)
        while True:
            msg = self._message()
            if msg.get("id") == n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 20.0) -> dict[str, Any]:
        """Read events until ``method`` arrives (it is kept in ``events`` too)."""
        end = time.monotonic() + timeout
        for e in self.events:
            if e["method"] == method:
                return e
        while time.monotonic() < end:
            msg = self._message()
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg
        raise TimeoutError(f"no {method} within {timeout} s")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send_frame(0x8, b"")
        self.sock.close()


@contextlib.contextmanager
def _chromium(profile: Path) -> Iterator[DevTools]:
    profile.mkdir(parents=True, exist_ok=True)
    log = (profile / "chromium.log").open("wb")
    proc = subprocess.Popen(
        [str(CHROMIUM), *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client: DevTools | None = None
    try:
        port_file = profile / "DevToolsActivePort"
        end = time.monotonic() + 30
        while not port_file.is_file() or len(port_file.read_text().splitlines()) < 2:
            if proc.poll() is not None or time.monotonic() > end:
                log.flush()
                raise RuntimeError(
                    "chromium did not start: "
                    + (profile / "chromium.log").read_text(errors="replace")[-2000:]
                )
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        client = DevTools(int(port), path)
        yield client
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.call("Browser.close")
            client.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


_IMAGES_JS = (
    "JSON.stringify(Array.from(document.images).map(i => ({src: i.getAttribute('src'), "
    "alt: i.alt, complete: i.complete, width: i.naturalWidth})))"
)


def _visit(cdp: DevTools, url: str, shot: Path) -> dict[str, Any]:
    """Open ``url`` in a new tab; return its problems, images and screenshot."""
    target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        cdp.call(f"{domain}.enable", session=session)
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1200, "height": 1600, "deviceScaleFactor": 1, "mobile": False},
        session=session,
    )
    cdp.events.clear()
    cdp.call("Page.navigate", {"url": url}, session=session)
    cdp.wait_for("Page.loadEventFired")
    images = json.loads(
        cdp.call(
            "Runtime.evaluate", {"expression": _IMAGES_JS, "returnByValue": True}, session=session
        )["result"]["value"]
    )
    data = cdp.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
    shot.write_bytes(base64.b64decode(data))
    problems = []
    for e in cdp.events:
        p = e.get("params", {})
        if e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
            problems.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            problems.append(f"console.{p['type']}: {p['args']}")
        elif e["method"] == "Runtime.exceptionThrown":
            problems.append(f"exception: {p['exceptionDetails'].get('text')}")
        elif e["method"] == "Network.loadingFailed":
            problems.append(f"load failed: {p.get('errorText')} ({p.get('type')})")
    cdp.call("Target.closeTarget", {"targetId": target})
    return {"problems": problems, "images": images, "shot": shot}


def _not_blank(path: Path) -> tuple[float, int, float]:
    """(grey-level SD, distinct colours, share of non-white pixels) of a screenshot."""
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    grey = rgb.astype(float).mean(axis=2)
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8)
    colours = len(np.unique(packed | rgb[..., 2]))
    non_white = float((grey < 245).mean())
    return float(grey.std()), colours, non_white


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    batch = built_batch(tmp_path_factory)
    root = tmp_path_factory.mktemp("browser") / "batch"
    shutil.copytree(batch.root, root, ignore=shutil.ignore_patterns("report", "masks"))
    index = write_report(root)
    control = root / "control.html"  # a page that must fail: a missing image
    control.write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>c</title></head>'
        '<body><p>control</p><img src="missing.png" alt="missing"></body></html>',
        encoding="utf-8",
    )
    out: dict[str, dict[str, Any]] = {}
    shots = root / "screenshots"
    shots.mkdir()
    with _chromium(root / "profile") as cdp:
        for name, path in (
            ("index", index),
            ("patient", index.parent / "patients" / f"{KEY_A}.html"),
            ("control", control),
        ):
            out[name] = _visit(cdp, path.resolve().as_uri(), shots / f"{name}.png")
    return out


@pytest.mark.parametrize("name", ["index", "patient"])
def test_page_has_no_console_error(pages: dict[str, dict[str, Any]], name: str) -> None:
    assert pages[name]["problems"] == []


@pytest.mark.parametrize("name", ["index", "patient"])
def test_every_image_loads(pages: dict[str, dict[str, Any]], name: str) -> None:
    images = pages[name]["images"]
    assert len(images) >= (3 if name == "index" else 4)
    for img in images:
        assert img["complete"] and img["width"] > 0, img
        assert img["alt"].strip(), img


@pytest.mark.parametrize("name", ["index", "patient"])
def test_screenshot_is_not_blank(pages: dict[str, dict[str, Any]], name: str) -> None:
    with Image.open(pages[name]["shot"]) as im:
        assert im.size == (1200, 1600)
    sd, colours, non_white = _not_blank(pages[name]["shot"])
    assert sd > 20.0, sd
    assert colours > 500, colours
    assert non_white > 0.05, non_white


def test_the_harness_sees_a_broken_page(pages: dict[str, dict[str, Any]]) -> None:
    control = pages["control"]
    assert any("missing.png" in p or "ERR_FILE_NOT_FOUND" in p for p in control["problems"])
    assert control["images"] and control["images"][0]["width"] == 0
    _, colours, _ = _not_blank(control["shot"])  # a nearly empty page: near blank
    assert colours < 500
