"""The operators' live view end to end: a real gateway, a real 1.6 charger and CSMS sim, and
a real headless Chromium (Debian's ``chromium``) driven over the Chrome DevTools Protocol.

The browser opens ``/admin/`` on the gateway's ops listener, the token is typed into the
page, the charger is selected, and its next BootNotification must show up in the trace as
the 1.6 message on the left and the translated 2.0.1 BootNotificationRequest on the right;
a frame the gateway refuses shows as a highlighted CALLERROR row. A screenshot (PNG, saved
under the test's tmp_path) is checked pixel by pixel: the page is not blank and the error
highlight is visible.

Without a chromium binary the test skips on a developer machine and fails under CI
(``CI=true``); .ci/run installs it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import struct
import subprocess
import time
import urllib.error
import urllib.request
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from gateway.app import Gateway
from gateway.config import Secret
from gateway.sim.charger import ChargerSim
from gateway.sim.csms import CsmsSim
from tests.redis_server import unavailable

pytestmark = pytest.mark.integration

TOKEN = "t0ken-for-the-live-view-e2e"
WIDTH, HEIGHT = 1280, 1400
#: Upper bound for anything the browser or the gateway is waited for.
DEADLINE = 30.0
POLL = 0.1
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


# --- a minimal Chrome DevTools Protocol client ------------------------------------------


class CdpError(Exception):
    pass


class Page:
    """One page target of a headless Chromium, driven over its DevTools websocket."""

    def __init__(self, websocket: ClientConnection) -> None:
        self._websocket = websocket
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.console: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self._websocket:
                message = json.loads(raw)
                future = self._pending.pop(message.get("id", -1), None)
                if future is not None and not future.done():
                    future.set_result(message)
                elif message.get("method") == "Runtime.exceptionThrown":
                    details = message["params"]["exceptionDetails"]
                    self.console.append(f"exception: {json.dumps(details)[:500]}")
                elif message.get("method") == "Runtime.consoleAPICalled":
                    args = message["params"]["args"]
                    self.console.append(" ".join(str(a.get("value", a)) for a in args))
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CdpError("the DevTools connection closed"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self._websocket.send(json.dumps({"id": ident, "method": method, "params": params}))
        async with asyncio.timeout(DEADLINE):
            message = await future
        if "error" in message:
            raise CdpError(f"{method}: {message['error']}")
        result: dict[str, Any] = message.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression[:80]}: {json.dumps(result['exceptionDetails'])[:800]}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str) -> Any:
        """Poll ``expression`` until it is truthy (bounded by DEADLINE); its value."""
        deadline = time.monotonic() + DEADLINE
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                text = await self.evaluate("document.body.innerText")
                raise AssertionError(
                    f"timed out waiting for {what}; page text:\n{text}\nconsole: {self.console}"
                )
            await asyncio.sleep(POLL)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self._websocket.close()


def chromium_binary() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    unavailable("no chromium binary (apt-get install chromium; see .ci/run)")
    raise AssertionError("unreachable")  # pragma: no cover - unavailable() raises


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@contextlib.asynccontextmanager
async def headless_chromium(binary: str, directory: Path) -> AsyncIterator[Page]:
    """A private headless Chromium (its own profile under ``directory``) and its page."""
    profile = directory / "chromium-profile"
    profile.mkdir()
    log_path = directory / "chromium.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--remote-debugging-port=0", f"--user-data-dir={profile}", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
            "--disable-background-networking", "--disable-sync", "--mute-audio",
            f"--window-size={WIDTH},{HEIGHT}", "about:blank",
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    page: Page | None = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + DEADLINE
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if process.returncode is not None or time.monotonic() > deadline:
                output = log_path.read_text(errors="replace")
                pytest.fail(
                    f"chromium did not start (exit {process.returncode}):\n{output[-3000:]}"
                )
            await asyncio.sleep(POLL)
        port = int(port_file.read_text().splitlines()[0])
        targets = await asyncio.to_thread(_get_json, f"http://127.0.0.1:{port}/json/list")
        (target,) = [t for t in targets if t.get("type") == "page"][:1]
        websocket = await connect(target["webSocketDebuggerUrl"], max_size=None)
        page = Page(websocket)
        await page.send("Runtime.enable")
        await page.send("Page.enable")
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )
        yield page
    finally:
        if page is not None:
            with contextlib.suppress(Exception):
                await page.send("Browser.close")
            await page.close()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


# --- PNG, read with the standard library ----------------------------------------------------


def png_pixels(data: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows of raw pixel bytes, bytes per pixel) of an 8-bit RGB/RGBA PNG;
    every chunk's CRC is checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat = 8, []
    header = b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        chunk = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + chunk) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
        position += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    size = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * size
    assert len(raw) == height * (stride + 1)
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(size, stride):
                line[i] = (line[i] + line[i - size]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - size] if i >= size else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - size] if i >= size else 0
                b = previous[i]
                c = previous[i - size] if i >= size else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + predictor) & 0xFF
        else:
            assert kind == 0, f"unknown PNG filter {kind}"
        rows.append(bytes(line))
        previous = line
    return width, height, rows, size


# --- the test ----------------------------------------------------------------------------


def _status_without_token(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/chargers", timeout=5):
            return 200
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


TRACE_ROWS = "[...document.querySelectorAll('#trace tbody tr')]"
BOOT_PAIR = f"""
{TRACE_ROWS}.some(row => {{
  const left = row.querySelector('td.left'), right = row.querySelector('td.right');
  return left && right
    && left.innerText.includes('BootNotification.req')
    && left.innerText.includes('BootNotification.conf')
    && left.innerText.includes('chargePointVendor')
    && right.innerText.includes('BootNotificationRequest')
    && right.innerText.includes('chargingStation')
    && right.innerText.includes('BootNotificationResponse');
}})
"""
FROM_CSMS = f"""
{TRACE_ROWS}.some(row => {{
  const left = row.querySelector('td.left'), right = row.querySelector('td.right');
  return row.dataset.origin === 'csms' && row.querySelector('td.arrow').textContent === '←'
    && left.innerText.includes('ChangeAvailability.req')
    && left.innerText.includes('ChangeAvailability.conf')
    && right.innerText.includes('ChangeAvailabilityRequest')
    && right.innerText.includes('ChangeAvailabilityResponse');
}})
"""
ERROR_ROW = f"""
(() => {{
  const row = {TRACE_ROWS}.find(r => r.querySelector('.msg.callerror'));
  if (!row) return null;
  const message = row.querySelector('.msg.callerror');
  return {{
    rowClass: row.className,
    code: message.querySelector('.error-code').textContent,
    description: message.querySelector('.error-description').textContent,
    colour: getComputedStyle(message).color,
    background: getComputedStyle(message).backgroundColor,
    border: getComputedStyle(row.querySelector('td.time')).borderTopColor,
    left: row.querySelector('td.left').innerText,
    right: row.querySelector('td.right').innerText,
  }};
}})()
"""


def set_value(element_id: str, value: str) -> str:
    """JavaScript: put ``value`` into the input, as typing would (an input event)."""
    return (
        f"{{ const e = document.getElementById({json.dumps(element_id)});"
        f" e.value = {json.dumps(value)}; e.dispatchEvent(new Event('input')); }} true"
    )


async def sign_in(page: Page, ops_port: int) -> None:
    """Open the page; a wrong token is refused; the right one shows the chargers."""
    await page.send("Page.navigate", url=f"http://127.0.0.1:{ops_port}/admin/")
    await page.wait_for(
        "document.readyState === 'complete' && !!document.getElementById('token')",
        "the page to load",
    )
    await page.evaluate(set_value("token", "not-the-token"))
    await page.evaluate("document.getElementById('connect').click(); true")
    message = await page.wait_for(
        "!document.getElementById('message').hidden"
        " && document.getElementById('message').textContent",
        "the refusal message",
    )
    assert "refused" in message
    assert await page.evaluate("sessionStorage.length") == 0
    assert await page.evaluate("document.getElementById('main').hidden") is True

    await page.evaluate(set_value("token", TOKEN))
    await page.evaluate("document.getElementById('connect').click(); true")
    await page.wait_for(
        "!!document.querySelector('#chargers tr[data-station=\"CP-1\"]')",
        "CP-1 in the chargers table",
    )
    assert await page.evaluate("document.getElementById('login').hidden") is True


async def select_charger(page: Page) -> None:
    """Check CP-1's row and the filter, then open CP-1's trace."""
    cells = await page.evaluate(
        "[...document.querySelector('#chargers tr[data-station=\"CP-1\"]').cells]"
        ".map(c => c.textContent)"
    )
    assert cells[:5] == ["CP-1", "translate", "", "ocpp1.6", "ACME / Wallbox"], cells
    await page.evaluate(set_value("filter", "no-such-charger"))
    assert await page.evaluate("document.querySelectorAll('#chargers tbody tr').length") == 0
    await page.evaluate(set_value("filter", "acme"))
    assert await page.evaluate("document.querySelectorAll('#chargers tbody tr').length") == 1
    await page.evaluate("document.querySelector('#chargers tr[data-station=\"CP-1\"]').click()")
    await page.wait_for(
        "document.getElementById('trace-state').textContent === 'live'", "the trace to open"
    )


def check_screenshot(png: bytes, path: Path) -> None:
    """A valid PNG of the viewport's size, not blank, with the error highlight visible."""
    path.write_bytes(png)
    width, height, rows, size = png_pixels(png)
    assert (width, height) == (WIDTH, HEIGHT), path
    colours = Counter(row[i : i + 3] for row in rows for i in range(0, len(row), size))
    assert len(colours) > 50, f"{path}: {len(colours)} colours: a blank page?"
    assert colours.most_common(1)[0][1] < 0.95 * width * height, f"{path}: one colour fills it"
    error_red = bytes((179, 38, 30))
    assert colours[error_red] > 100, f"{path}: the CALLERROR highlight is not visible"


@pytest.fixture
def chromium() -> str:
    """The browser binary (checked before any peer starts)."""
    return chromium_binary()


async def test_the_live_view_shows_a_translated_boot_and_a_highlighted_error(
    chromium: str,
    make_gateway: Callable[..., Awaitable[Gateway]],
    chargers: Callable[..., ChargerSim],
    csms: CsmsSim,
    tmp_path: Path,
) -> None:
    gateway = await make_gateway(admin_token=Secret(TOKEN))
    ops = gateway.ops_port
    assert ops is not None
    assert await asyncio.to_thread(_status_without_token, ops) == 401

    charger = chargers(f"ws://127.0.0.1:{gateway.charger_port}/ocpp", "CP-1")
    await charger.connect()
    assert (await charger.boot(vendor="ACME", model="Wallbox"))["status"] == "Accepted"

    async with headless_chromium(chromium, tmp_path) as page:
        await sign_in(page, ops)
        await select_charger(page)

        # A CALL from the CSMS; the charger boots again; then it sends a StatusNotification
        # the gateway refuses (newest on top: the error row, then the boot).
        change = {"operationalStatus": "Inoperative", "evse": {"id": 1}}
        assert (await csms.call("CP-1", "ChangeAvailability", change))["status"] == "Accepted"
        assert (await charger.boot(vendor="ACME", model="Wallbox"))["status"] == "Accepted"
        await charger.send_raw('[2,"bad-1","StatusNotification",{"connectorId":"one"}]')
        refusal = json.loads(await charger.next_unmatched(timeout=DEADLINE))
        assert refusal[:2] == [4, "bad-1"]

        await page.wait_for(BOOT_PAIR, "the 1.6 boot on the left, the 2.0.1 one on the right")
        await page.wait_for(FROM_CSMS, "the CSMS's ChangeAvailability, both versions")
        error = await page.wait_for(ERROR_ROW, "the CALLERROR row")
        assert error["rowClass"] == "error"
        assert error["code"] == refusal[2]
        assert refusal[3] in error["description"]
        assert error["colour"] == "rgb(179, 38, 30)"
        assert error["background"] == "rgb(253, 231, 230)"
        assert error["border"] == "rgb(179, 38, 30)"
        assert "StatusNotification.req" in error["left"]
        assert "answered by the gateway" in error["right"]

        shot = await page.send("Page.captureScreenshot", format="png")
        text = await page.evaluate("document.body.innerText")  # the DOM at that moment
        assert page.console == [], page.console

    path = tmp_path / "live-view.png"
    check_screenshot(base64.b64decode(shot["data"]), path)
    assert "BootNotification.req" in text
    assert "BootNotificationRequest" in text
    assert "chargingStation" in text
    print(f"screenshot: {path}")
