"""Site measurements: build time, the heaviest page's download weight, time to draw it.

Robust to a site that is still being written: a missing ``mkdocs.yml``, a failing
strict build (retried without ``--strict`` so page weights are still measured), a
missing Chromium or playwright each give ``"not measured"`` with the reason, never an
exception.

Page weight is what a reader downloads on a first visit: the HTML and every file the
browser fetches until the page's figures and formulas are drawn (plotly.js, which the
site loads on demand, included), and the first views of figures further down, which
the page fetches as the reader scrolls. ``gzip_bytes`` gzips each file at level 6, what a
static host that compresses would send.
"""

from __future__ import annotations

import functools
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse

from dpo_ref.site.prerendered_figures import VIEW_SUFFIX
from dpo_ref.site.server import CHROMIUM, serve_directory

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Resolves, once every formula and figure of the page is drawn, to the times (ms since
# navigation start) when the first screen and the whole page were drawn. site.js draws the
# first screen first and records both in window.dpoSite; without it, fall back to the
# DOM, and both times are the moment everything is drawn.
READY_JS = """() => {
  const site = window.dpoSite;
  if (site && site.errors && site.errors.length) return {error: site.errors.join('; ')};
  if (site && site.readyPath === location.pathname) {
    if (!site.firstScreen) return {first: performance.now(), all: performance.now()};
    return {first: site.firstScreen.ms, all: site.drawn.ms};
  }
  if (!site && document.readyState === 'complete') {
    const math = document.querySelectorAll('.arithmatex').length;
    const typeset = document.querySelectorAll('.arithmatex mjx-container').length;
    const plots = document.querySelectorAll('.dpo-figure__plot').length;
    const drawn = document.querySelectorAll('.dpo-figure__plot .main-svg').length;
    if (typeset >= math && drawn >= plots) return {first: performance.now(), all: performance.now()};
  }
  return false;
}"""

# First views of figures far down a page, which site.js fetches as the reader scrolls to them.
FETCHED_LATER_JS = (
    "() => Array.from(document.querySelectorAll('[data-src]'), e => new URL(e.dataset.src, location.href).href)"
)

COUNT_JS = """() => ({
  figures: document.querySelectorAll('.dpo-figure__plot').length,
  formulas: document.querySelectorAll('.arithmatex').length,
})"""


def build(root: Path, site_dir: Path, timeout: float) -> dict:
    """``mkdocs build --strict`` timed; on failure, a non-strict build so pages can still be weighed."""
    if not (root / "mkdocs.yml").exists():
        return {"status": "not measured", "reason": "no mkdocs.yml"}
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = {}
    for strict in (True, False):
        command = [sys.executable, "-m", "mkdocs", "build", "--site-dir", str(site_dir)] + (
            ["--strict"] if strict else []
        )
        shutil.rmtree(site_dir, ignore_errors=True)
        start = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {**out, "status": "failed", "reason": f"mkdocs build ran past {timeout:.0f} s"}
        seconds = time.perf_counter() - start
        if done.returncode == 0:
            return {**out, "status": "ok", "strict": strict, "build_s": seconds, "command": " ".join(command[1:])}
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        out[f"{'strict' if strict else 'plain'}_failure"] = tail
    return {**out, "status": "failed", "reason": "mkdocs build failed, strict and not"}


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.has_figure = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.urls.append(a["src"])
        elif tag == "link" and "stylesheet" in (a.get("rel") or "") and a.get("href"):
            self.urls.append(a["href"])
        elif tag == "img" and a.get("src"):
            self.urls.append(a["src"])
        if "dpo-figure__plot" in (a.get("class") or ""):
            self.has_figure = True


def static_weight(site_dir: Path, page: Path) -> int:
    """Bytes of a page and the local files its HTML names (a first guess at the heaviest page)."""
    parser = _Links()
    parser.feed(page.read_text(errors="replace"))
    total = page.stat().st_size
    seen = set()
    for url in parser.urls:
        parsed = urlparse(url)
        if parsed.scheme or parsed.netloc:
            continue
        target = (page.parent / parsed.path).resolve()
        if target not in seen and target.is_file():
            seen.add(target)
            total += target.stat().st_size
    if parser.has_figure:  # plotly.js comes on demand, from site.js
        total += sum(p.stat().st_size for p in site_dir.glob("assets/vendor/plotly/*.js"))
    return total


def _served_file(site_dir: Path, url: str) -> Path | None:
    path = site_dir / urlparse(url).path.lstrip("/")
    if path.is_dir():
        path = path / "index.html"
    return path if path.is_file() else None


@functools.cache
def _gzipped_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=6, mtime=0))


def _load(browser, url: str, site_dir: Path, timeout_ms: float) -> dict:
    """Open ``url`` in a fresh context (empty cache); bytes fetched and ms until drawn.

    Only the addresses are noted while the page loads; their sizes are read from the
    served files afterwards, so the measuring does not compete with the page for the CPU.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    fetched: list[str] = []
    errors: list[str] = []
    page.on("requestfinished", lambda request: fetched.append(request.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url, wait_until="commit")
        ready = page.wait_for_function(READY_JS, polling="raf", timeout=timeout_ms).json_value()
        counts = page.evaluate(COUNT_JS)
        fetched_later = page.evaluate(FETCHED_LATER_JS)
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    if "error" in ready:
        raise RuntimeError(ready["error"])
    # a reader who scrolls through the page downloads the figures' first views too
    files = {u: f for u in dict.fromkeys(fetched + fetched_later) if (f := _served_file(site_dir, u)) is not None}
    sizes = {u: f.stat().st_size for u, f in files.items()}
    return {
        "ready_ms": ready["first"],
        "all_drawn_ms": ready["all"],
        "bytes": sum(sizes.values()),
        "gzip_bytes": sum(_gzipped_size(f) for f in files.values()),
        "requests": len(sizes),
        "largest_files": sorted(((n, u.split("/", 3)[-1]) for u, n in sizes.items()), reverse=True)[:4],
        "page_errors": errors,
        **counts,
    }


# The playground trains in a Worker and redraws at most once a frame: what a reader feels is whether the main
# thread ever stalls while it plays. Long tasks (the browser's own measure: over 50 ms) are counted from Play to
# the last of its 500 steps, at the fastest speed.
PLAYGROUND_JS = """async () => {
  const w = window.dpoPlayground.widgets.playground;
  const tasks = [];
  new PerformanceObserver(list => list.getEntries().forEach(e => tasks.push(e))).observe({type: 'longtask'});
  document.querySelector('#playground-speed').value = '20';
  document.querySelector('#playground-speed').dispatchEvent(new Event('change', {bubbles: true}));
  const start = performance.now();
  document.querySelector('#playground [data-action="play"]').click();
  while (!(w.finished() && !w.playing)) await new Promise(r => setTimeout(r, 50));
  const during = tasks.filter(e => e.startTime >= start && e.startTime < w.finishedAt).map(e => e.duration);
  const slowest = w.drawTimes.slice().sort((a, b) => b[1] - a[1]).slice(0, 3);
  return {steps: w.last.step, ms: w.finishedAt - start, long_tasks_ms: during, slowest_redraws: slowest};
}"""


def _playground(browser, base: str, timeout_ms: float) -> dict:
    """The playground trained to its end at the fastest speed: how long it took and the main thread's long tasks."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(urljoin(base, "playground/"))
        page.hover("#playground .dpo-playground__status")  # a reader's pointer over it starts it
        page.wait_for_function(
            "() => { const w = window.dpoPlayground && window.dpoPlayground.widgets.playground; "
            "return w && w.settled(); }",
            timeout=timeout_ms,
        )
        run = page.evaluate(PLAYGROUND_JS)
    finally:
        context.close()
    tasks = run["long_tasks_ms"]
    return {
        "steps": run["steps"],
        "train_ms": run["ms"],
        "long_tasks": len(tasks),
        "longest_task_ms": max(tasks, default=0.0),
        "slowest_redraws": run["slowest_redraws"],
    }


def measure(root: Path, *, repeats: int = 3, build_timeout: float = 600, candidates: int = 3) -> dict:
    """Build the site and weigh and time its heaviest page; see the module docstring."""
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        site_dir = Path(tmp) / "site"
        result["build"] = build(root, site_dir, build_timeout)
        if result["build"]["status"] != "ok":
            result["page"] = {"status": "not measured", "reason": "no built site"}
            return result
        pages = sorted(site_dir.rglob("*.html"))
        pages = [p for p in pages if p.name != "404.html" and not p.name.endswith(VIEW_SUFFIX)]
        if not pages:
            result["page"] = {"status": "not measured", "reason": "the built site has no page"}
            return result
        weights = sorted(((static_weight(site_dir, p), p) for p in pages), reverse=True)
        result["n_pages"] = len(pages)
        try:
            result["page"] = _browser(site_dir, [p for _, p in weights[:candidates]], repeats)
        except Exception as error:  # no playwright, no chromium, a page that never finishes drawing
            result["page"] = {"status": "not measured", "reason": f"{type(error).__name__}: {error}"[:400]}
    return result


def _browser(site_dir: Path, candidates: list[Path], repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        return {"status": "not measured", "reason": f"{CHROMIUM} not found"}
    with serve_directory(site_dir) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            url_of = {
                p: urljoin(base, p.relative_to(site_dir).as_posix().removesuffix("index.html")) for p in candidates
            }
            # One unmeasured load: a reader's browser is already running; ours starts its
            # renderer machinery on the first page. Each measured load gets a fresh context
            # (empty cache), so nothing it downloads is reused.
            _load(browser, url_of[candidates[0]], site_dir, 60_000)
            first = {p: _load(browser, url_of[p], site_dir, 60_000) for p in candidates}
            heaviest = max(candidates, key=lambda p: first[p]["bytes"])
            runs = [first[heaviest]] + [_load(browser, url_of[heaviest], site_dir, 60_000) for _ in range(repeats - 1)]
            playground = [_playground(browser, base, 60_000) for _ in range(repeats)]
        finally:
            browser.close()
    best = runs[0]
    return {
        "status": "ok",
        "path": heaviest.relative_to(site_dir).as_posix(),
        "bytes": best["bytes"],
        "gzip_bytes": best["gzip_bytes"],
        "requests": best["requests"],
        "largest_files": best["largest_files"],
        "figures": best["figures"],
        "formulas": best["formulas"],
        "ready_ms_runs": [r["ready_ms"] for r in runs],
        "ready_ms": statistics.median(r["ready_ms"] for r in runs),
        "all_drawn_ms_runs": [r["all_drawn_ms"] for r in runs],
        "all_drawn_ms": statistics.median(r["all_drawn_ms"] for r in runs),
        "page_errors": best["page_errors"],
        "candidates": {p.relative_to(site_dir).as_posix(): first[p]["bytes"] for p in candidates},
        "playground": {
            "runs": playground,
            "long_tasks": statistics.median(r["long_tasks"] for r in playground),
            "longest_task_ms": statistics.median(r["longest_task_ms"] for r in playground),
        },
    }
