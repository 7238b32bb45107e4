"""A local HTML file as a person sees it: headless Chromium driven over the DevTools protocol on
a pipe (``--remote-debugging-pipe``: JSON messages ended by NUL on file descriptors 3 and 4), so
that no websocket client or browser-automation package is needed."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
#: What the page reports of itself once loaded: every image and table with its rendered size,
#: and where the headline table ends on the first screen.
MEASURE = """JSON.stringify({
  images: [...document.images].map(i => ({complete: i.complete, width: i.naturalWidth,
    height: i.naturalHeight, shown: i.getBoundingClientRect().width})),
  tables: [...document.querySelectorAll('table')].map(t => ({rows: t.rows.length,
    height: t.getBoundingClientRect().height})),
  glance: document.querySelector('#glance table').getBoundingClientRect().bottom,
  screen: window.innerHeight})"""


def find_browser() -> str | None:
    """The Chromium (or Chrome) on PATH, if any."""
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


@dataclass
class Page:
    """A loaded page: the first screen as PNG, what ``MEASURE`` found, the console's errors and
    every URL the page requested."""

    screenshot: bytes
    measured: dict[str, Any]
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def open_page(
    browser: str, path: Path, width: int = 1280, height: int = 800, timeout: float = 60
) -> Page:
    """Load ``path`` in headless ``browser`` at ``width`` x ``height`` and measure it."""
    to_browser, from_browser = os.pipe(), os.pipe()
    high = [os.dup(to_browser[0]), os.dup(from_browser[1])]  # above 4: dup2 to 3 and 4 must copy

    def pipes_on_3_and_4() -> None:
        os.dup2(high[0], 3)
        os.dup2(high[1], 4)

    with tempfile.TemporaryDirectory() as profile:
        process = subprocess.Popen(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=pipes_on_3_and_4,
            close_fds=False,
        )
        for fd in (*high, to_browser[0], from_browser[1]):
            os.close(fd)
        session = _Session(to_browser[1], from_browser[0], time.monotonic() + timeout)
        try:
            target = session.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session.id = session.call(
                "Target.attachToTarget", {"targetId": target, "flatten": True}
            )["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                session.call(f"{domain}.enable")
            session.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            session.call("Page.navigate", {"url": path.resolve().as_uri()})
            session.wait_for("Page.loadEventFired")
            measured = session.call(
                "Runtime.evaluate", {"expression": MEASURE, "returnByValue": True}
            )
            shot = session.call("Page.captureScreenshot", {"format": "png"})["data"]
            session.id = None
            try:
                session.call("Browser.close")
            except EOFError:
                pass  # it closed before answering
        finally:
            os.close(to_browser[1])
            os.close(from_browser[0])
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    if "exceptionDetails" in measured:
        raise AssertionError(f"the page could not be measured: {measured['exceptionDetails']}")
    return Page(
        base64.b64decode(shot),
        json.loads(measured["result"]["value"]),
        session.errors(),
        session.requests(),
    )


class _Session:
    """Requests and answers on the pipe, and the events that arrive between them."""

    def __init__(self, write: int, read: int, deadline: float) -> None:
        self.write, self.read, self.deadline = write, read, deadline
        self.id: str | None = None
        self.events: list[dict[str, Any]] = []
        self.buffer = b""
        self.count = 0

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.count += 1
        message = {"id": self.count, "method": method, "params": params or {}}
        if self.id:
            message["sessionId"] = self.id
        os.write(self.write, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._next()
            if answer.get("id") == self.count:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return answer["result"]
            self.events.append(answer)

    def wait_for(self, event: str) -> None:
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self._next())

    def errors(self) -> list[str]:
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(json.dumps(params["args"])[:500])
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"{params['entry']['text']} {params['entry'].get('url', '')}")
        return found

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def _next(self) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.read], [], [], left)[0]:
                raise TimeoutError("the browser did not answer in time")
            chunk = os.read(self.read, 1 << 16)
            if not chunk:
                raise EOFError("the browser closed its pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)
