"""Drive a headless Chromium without any Python dependency: run a script in a page, take a screenshot.

For the results report's browser test (``tests/test_report.py``) and the docs' screenshot of
it (``docs/make_figures.py``). Chromium comes from the system (Debian: ``apt-get install
chromium``); ``RESTOREKIT_BROWSER`` names another binary. Everything runs on local files with
networking features off, in a throw-away profile.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["BROWSER_ENV", "find_browser", "run_in_page", "screenshot"]

BROWSER_ENV = "RESTOREKIT_BROWSER"
_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_RESULT = "data-restorekit-result"


def find_browser() -> str | None:
    """The Chromium binary to use (``$RESTOREKIT_BROWSER``, else the first one on ``PATH``), or None."""
    named = os.environ.get(BROWSER_ENV)
    if named:
        return shutil.which(named) or (named if Path(named).is_file() else None)
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(browser: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="restorekit-browser-") as profile:
        command = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
            "--mute-audio", f"--user-data-dir={profile}", *args,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def run_in_page(page: str | Path, script: str, *, browser: str | None = None, timeout: float = 120) -> Any:
    """Load ``page`` with ``script`` added at the end of its body; return what the script reported.

    The script reports by calling ``report(value)`` (JSON-serialisable) before the page's
    ``load`` event has finished; it runs after the page's own scripts. The page is copied
    beside itself (so its relative links resolve) and the copy removed afterwards.

    Raises:
        FileNotFoundError: no browser (see :func:`find_browser`).
        RuntimeError: the browser failed or the script reported nothing.
    """
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError(f"no Chromium found (install chromium, or set {BROWSER_ENV})")
    page = Path(page).resolve()
    wrapper = (
        "<script>(function(){function report(value){document.documentElement.setAttribute("
        f"'{_RESULT}', JSON.stringify(value));}}\n{script}\n}})();</script>"
    )
    text = page.read_text(encoding="utf-8")
    at = text.rfind("</body>")
    probe = page.with_name(f".probe-{os.getpid()}-{page.name}")
    probe.write_text(text[:at] + wrapper + text[at:] if at >= 0 else text + wrapper, encoding="utf-8")
    try:
        done = _run(browser, ["--virtual-time-budget=20000", "--dump-dom", probe.as_uri()], timeout)
    finally:
        probe.unlink(missing_ok=True)
    match = re.search(rf'{_RESULT}="([^"]*)"', done.stdout)
    if match is None:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise RuntimeError(f"{browser} (exit {done.returncode}) returned no result from {page}; its messages:\n{tail}")
    return json.loads(html.unescape(match.group(1)))


def screenshot(
    page: str | Path, out: str | Path, *, width: int = 1280, height: int = 900, browser: str | None = None,
    timeout: float = 120,
) -> Path:
    """A PNG of the top ``width``×``height`` CSS pixels of ``page``, as Chromium draws it."""
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError(f"no Chromium found (install chromium, or set {BROWSER_ENV})")
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    done = _run(
        browser,
        [f"--window-size={width},{height}", "--virtual-time-budget=20000", f"--screenshot={out}",
         Path(page).resolve().as_uri()],
        timeout,
    )
    if not out.is_file():
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise RuntimeError(f"{browser} (exit {done.returncode}) wrote no screenshot of {page}:\n{tail}")
    return out
