"""The HTML report in a real browser: headless Chromium renders it, its DOM holds the report, and a
screenshot (tests/output/report-screenshot.png, for a person to look at) is a real page.

Chromium is a test dependency (Debian package chromium, in the Makefile's HOST_PACKAGES): `make unit`
installs it through `make host-packages`. Without it this test fails; it is never skipped.
"""

from __future__ import annotations

import copy
import shutil
import struct
import subprocess
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_helpers import GENERATED, entries

from ansible_collections.distsec.framework.plugins.module_utils._enforce.record import drift_of
from ansible_collections.distsec.framework.plugins.plugin_utils._report.output import make_report, write_reports

TOP = Path(__file__).resolve().parents[4]
SCREENSHOT = TOP / "tests" / "output" / "report-screenshot.png"
WIDTH, HEIGHT = 1280, 1600
TIMEOUT = 60


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed: `make host-packages` installs it (Debian package chromium)")


def browse(tmp_path, *args):
    """Run headless Chromium with a throwaway profile; its stdout."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    argv = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.open_details, self.skip = [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("style", "title"):
            self.skip += 1
        if tag == "details" and "open" in attrs:
            self.open_details.append(attrs.get("id"))

    def handle_endtag(self, tag):
        if tag in ("style", "title"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def fleet():
    """ws1 compliant and clean, ws2 non-compliant, ws3 unreachable, ws5 drift found by an audit."""
    items = {e["host"]: e for e in entries()}
    clean = copy.deepcopy(items["ws1"])
    clean["run"]["drift"] = drift_of(drift=False, rules=None, applied=False, mode="enforce")
    clean["run"]["policy"]["rejected"] = None
    return [clean, items["ws2"], items["ws3"], items["ws5"]]


def png_facts(data):
    """(width, height, distinct byte values of the decompressed image data) of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat, size = 8, b"", None
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    return size[0], size[1], len(set(zlib.decompress(idat)))


def test_the_html_report_renders_in_chromium(tmp_path):
    started = time.monotonic()
    report = make_report(fleet(), generated_at=GENERATED, title="distsec compliance report")
    paths = write_reports(report, str(tmp_path / "out"), ["html"])
    url = Path(paths["html"]).as_uri()

    dom = browse(tmp_path, "--dump-dom", url)
    parser = _Text()
    parser.feed(dom)
    text = " ".join(" ".join(parser.parts).split())
    for needle in (
        "ws1",
        "ws2",
        "ws3",
        "ws5",
        "libssl-patched",  # the failed check
        "input: ?: tcp dport 23 accept",  # a drifted rule
        "4 hosts",
        "1 compliant",
        "2 non-compliant",
        "1 with drift (0 fixed)",
        "1 failed / unreachable (0 / 1)",
        "Domain corp.example.org",
        "Problems (5)",
    ):
        assert needle in text, f"{needle!r} is not in the rendered page"
    assert parser.open_details == ["host-ws2", "host-ws3", "host-ws5"], "hosts with a problem are open"

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    browse(tmp_path, f"--screenshot={SCREENSHOT}", f"--window-size={WIDTH},{HEIGHT}", url)
    data = SCREENSHOT.read_bytes()
    width, height, distinct = png_facts(data)
    assert (width, height) == (WIDTH, HEIGHT)
    assert distinct > 64, f"the screenshot looks blank ({distinct} distinct byte values)"
    assert len(data) > 50_000, f"the screenshot looks blank ({len(data)} bytes)"
    assert time.monotonic() - started < 30
