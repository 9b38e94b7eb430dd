"""Shared by the site tests: build the site once per test session, serve it locally.

Imported by tests/test_site_build.py and tests/test_browser.py. The build is cached in
this module, so two test files share one build even though each declares the fixture.
The server binds a free local port first, the site is then built with ``site_url`` at
that port and served from it (so its canonical links point where it is served): no
port is looked up, released and bound again later.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Debian's Chromium, offline: no background requests to hosts this machine cannot reach
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def build_site(site_dir: Path, site_url: str) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` into ``site_dir``, with ``site_url`` set through DPO_SITE_URL.

    The example pages come from their recorded notebooks, as in the published build; a
    script without a current recording is rendered without outputs here, not executed
    (tests/test_examples.py runs every script, and fails on a stale recording).
    """
    env = {
        key: value for key, value in os.environ.items() if key != "DPO_REPO_URL"
    }  # a local build: no repository links
    env.update(
        DPO_SITE_URL=site_url,
        NO_MKDOCS_2_WARNING="1",
        HF_HUB_OFFLINE="1",
        DPO_SITE_EXECUTE_EXAMPLES="false",
        # its own notebook cache, so test builds never evict the executed pages' cache
        DPO_SITE_NOTEBOOK_CACHE=str(Path(site_dir).parent / "notebook-cache"),
    )
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@dataclass(frozen=True)
class BuiltSite:
    path: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@functools.cache
def built_site_once(base: Path) -> BuiltSite:
    """Build once per base folder and serve it until the test process ends (a daemon thread)."""
    path = base / "site"
    handler = functools.partial(_QuietHandler, directory=str(path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # bound now, before the build
    port = server.server_address[1]
    result = build_site(path, f"http://127.0.0.1:{port}/")
    if result.returncode != 0:
        server.server_close()
        raise AssertionError(f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return BuiltSite(path, port)


def page_paths(site: BuiltSite) -> list[str]:
    """URL paths of every page (every index.html), sorted, e.g. ``/`` and ``/beta/``."""
    paths = []
    for html in sorted(site.path.rglob("index.html")):
        rel = html.parent.relative_to(site.path).as_posix()
        if rel.startswith(("assets", "search")):
            continue
        paths.append("/" if rel == "." else f"/{rel}/")
    return paths


# --------------------------------------------------------------------------- page weight

_ASSET = re.compile(r'<(?:script[^>]*\ssrc|link[^>]*\shref)="([^"]+)"')


def page_weight(site: BuiltSite, path: str) -> tuple[int, int]:
    """Bytes a first visit to ``path`` downloads, uncompressed and gzipped.

    Counts the HTML, every local script and stylesheet it links, and plotly.js when the
    page has a figure (site.js fetches it then). Fonts are none (``theme.font: false``);
    MathJax is not counted: every formula arrives typeset, the example notebooks' too
    (site.js fetches MathJax only for a formula the build left in TeX).
    """
    html_path = site.path / path.lstrip("/") / "index.html"
    html = html_path.read_text(encoding="utf-8")
    files = [html_path]
    for ref in _ASSET.findall(html):
        if ref.startswith(("http:", "https:", "//", "data:")):
            continue
        target = (html_path.parent / ref.split("?")[0].split("#")[0]).resolve()
        if target.is_file() and target.suffix in (".js", ".css"):
            files.append(target)
    if "dpo-figure__plot" in html:
        files.append(site.path / "assets/vendor/plotly/plotly-basic.min.js")
    raw = sum(f.stat().st_size for f in files)
    zipped = sum(_gzipped_size(f) for f in files)
    return raw, zipped


@functools.cache
def _gzipped_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=6))
