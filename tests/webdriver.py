"""A tiny W3C WebDriver client (standard library only) for Debian's chromium + chromedriver.

The HTML report tests load pages in a real headless Chromium through
``/usr/bin/chromedriver``; the protocol is a handful of JSON-over-HTTP calls,
so no driver package is needed. ``.ci/run`` installs ``chromium`` and
``chromium-driver``.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import List, Optional

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1280,1600"]


def available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """One chromedriver process and one headless Chromium session (a fresh profile)."""

    def __init__(self, timeout_s: float = 60.0):
        self.port = _free_port()
        self.profile = tempfile.TemporaryDirectory(prefix="tfmask-chromium-")
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self._call("GET", "/status")["value"].get("ready"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.driver.poll() is not None:
                self.close()
                raise RuntimeError("chromedriver did not start")
            time.sleep(0.2)
        caps = {"browserName": "chrome", "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {"binary": CHROMIUM, "args": CHROMIUM_ARGS + [
                    f"--user-data-dir={self.profile.name}"]}}
        self.session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}}
                                  )["value"]["sessionId"]

    def _call(self, method: str, path: str, body: Optional[dict] = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read())

    def _s(self, method: str, path: str, body: Optional[dict] = None):
        return self._call(method, f"/session/{self.session}{path}", body)["value"]

    def open(self, path: Path) -> None:
        self._s("POST", "/url", {"url": Path(path).resolve().as_uri()})

    def run(self, script: str):
        return self._s("POST", "/execute/sync", {"script": script, "args": []})

    def console(self) -> List[dict]:
        """Browser console entries since the last call (``level``, ``message``)."""
        return self._s("POST", "/se/log", {"type": "browser"})

    def screenshot(self, path: Path) -> bytes:
        png = base64.b64decode(self._s("GET", "/screenshot"))
        Path(path).write_bytes(png)
        return png

    def close(self) -> None:
        try:
            if getattr(self, "session", None):
                self._call("DELETE", f"/session/{self.session}")
        except OSError:
            pass
        self.driver.terminate()
        try:
            self.driver.wait(10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
        self.profile.cleanup()
