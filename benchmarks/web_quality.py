"""Web quality of the built site, with the ecosystem's own tools: Lighthouse and axe-core.

* **Lighthouse** (npm ``lighthouse``), mobile profile with its simulated throttling (its
  default), on every page of the built site (every ``index.html`` in it, so a new page is
  measured without a list to keep), the site served gzipped as GitHub Pages serves it.
  Scores for performance (the median of ``repeats`` runs: ``make bench`` runs 5) and
  accessibility, the total blocking time behind the performance score, and the bytes
  the first load transferred (gzipped), which must stay under :data:`MAX_TRANSFER_BYTES`.
* **axe-core** (npm ``axe-core``) inside every page, in both Material palettes, with the
  WCAG 2.1 A and AA rules: violations by impact.

Both packages are installed by this module into ``.cache/web-quality/`` with npm, at the
versions below, the first time they are needed. ``python -m benchmarks.web_quality SITE``
measures an already built site; ``make bench`` builds it (``benchmarks/run.py``, part
``web``). Anything missing (npm, Node, Chromium) gives ``"not measured"`` with the
reason, never an exception.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from dpo_ref.site.server import CHROMIUM, serve_directory

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".cache" / "web-quality"
LIGHTHOUSE = "lighthouse@12.8.2"
AXE = "axe-core@4.14.1"
CHROME_FLAGS = "--headless=new --no-sandbox --disable-gpu"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")  # the impacts the site must not have

# Goals: Lighthouse >= 90 performance and 100 accessibility on every page; no serious or
# critical axe violation on any page in either palette; no first load of a page that
# transfers more than 1 MB (gzipped, everything Lighthouse saw the page fetch).
GOALS = {"performance": 90, "accessibility": 100}
MAX_TRANSFER_BYTES = 1_000_000


def npm_tool(spec: str, tools: Path = TOOLS) -> Path:
    """The folder of npm package ``spec`` (``name@version``), installed into ``tools`` if missing."""
    name, version = spec.rsplit("@", 1)
    folder = tools / "node_modules" / name
    manifest = folder / "package.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("version") == version:
        return folder
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError(f"npm not found: installing {spec} needs Node.js and npm (apt-get install npm)")
    tools.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(tools), spec],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 or not manifest.is_file():
        raise RuntimeError(f"npm install {spec} failed:\n" + "\n".join(done.stderr.strip().splitlines()[-5:]))
    return folder


def axe_script(tools: Path = TOOLS) -> Path:
    """``axe.min.js``, the one file a page needs to run axe-core."""
    return npm_tool(AXE, tools) / "axe.min.js"


# --------------------------------------------------------------------------- Lighthouse


def lighthouse(url: str, tools: Path = TOOLS, timeout: float = 240) -> dict:
    """Lighthouse's performance and accessibility of ``url`` (mobile profile), with the audits that failed."""
    cli = npm_tool(LIGHTHOUSE, tools) / "cli" / "index.js"
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [
            "node",
            str(cli),
            url,
            "--output=json",
            f"--output-path={report}",
            "--quiet",
            "--only-categories=performance,accessibility",
            f"--chrome-flags={CHROME_FLAGS}",
        ]
        env = {**os.environ, "CHROME_PATH": CHROMIUM}
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
        if done.returncode != 0 or not report.is_file():
            raise RuntimeError(f"lighthouse {url} failed:\n" + "\n".join(done.stderr.strip().splitlines()[-5:]))
        data = json.loads(report.read_text())
    categories = data["categories"]
    audits = data["audits"]
    failed = sorted(
        audit_id
        for audit_id, audit in audits.items()
        if audit.get("score") is not None
        and audit["score"] < 1
        and audit.get("scoreDisplayMode") == "binary"
        and any(ref["id"] == audit_id for ref in categories["accessibility"]["auditRefs"])
    )
    return {
        "performance": round(100 * categories["performance"]["score"]),
        "accessibility": round(100 * categories["accessibility"]["score"]),
        "total_blocking_time_ms": audits["total-blocking-time"]["numericValue"],
        "largest_contentful_paint_ms": audits["largest-contentful-paint"]["numericValue"],
        "transfer_bytes": round(audits["total-byte-weight"]["numericValue"]),
        "accessibility_failures": failed,
    }


def lighthouse_retried(url: str, tools: Path = TOOLS, attempts: int = 3, log=print) -> dict:
    """:func:`lighthouse`, tried again when a run fails: on a loaded machine Lighthouse now
    and then gives up on a page ("the page stopped responding"), and one such run must not
    cost the measurements of every other page."""
    for attempt in range(1, attempts + 1):
        try:
            return lighthouse(url, tools)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            if attempt == attempts:
                raise
            log(f"lighthouse {url}: run failed ({str(error).splitlines()[-1][:120]}), trying again")
    raise AssertionError("unreachable")


def lighthouse_pages(site_dir: Path, pages: list[str], repeats: int = 1, tools: Path = TOOLS, log=print) -> dict:
    """Lighthouse on each page (``/``, ``/beta/``, ...; the median score over ``repeats``
    runs), the site served gzipped."""
    out = {}
    with serve_directory(site_dir, gzip=True) as base:
        for page in pages:
            runs = []
            for _ in range(repeats):
                runs.append(lighthouse_retried(base + page.lstrip("/"), tools, log=log))
            log(
                f"lighthouse {page}: performance {[r['performance'] for r in runs]}, "
                f"accessibility {runs[0]['accessibility']}, {runs[0]['transfer_bytes'] / 1000:.0f} kB"
            )
            best = sorted(runs, key=lambda r: r["performance"])[len(runs) // 2]
            out[page] = {**best, "performance_runs": [r["performance"] for r in runs]}
    return out


# --------------------------------------------------------------------------- axe-core

# selectors: false spares axe from writing a unique CSS selector for every node it checks,
# most of its time on the large notebook pages; a violation names its nodes by their HTML.
AXE_RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations'],
                                          selectors: false, iframes: false});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length,
                                      targets: v.nodes.slice(0, 3).map(n => n.html.slice(0, 100))}));
}"""
READY = "path => !window.dpoSite || window.dpoSite.readyPath === path"


def page_paths(site_dir: Path) -> list[str]:
    """URL paths of every page of a built site (``/``, ``/beta/``, ...), sorted."""
    paths = []
    for html in sorted(site_dir.rglob("index.html")):
        rel = html.parent.relative_to(site_dir).as_posix()
        if not rel.startswith(("assets", "search")):
            paths.append("/" if rel == "." else f"/{rel}/")
    return paths


def axe_page(page, base: str, path: str, script: Path) -> list[dict]:
    """axe-core's WCAG 2.1 A/AA violations of one page, opened in ``page`` (Playwright), once drawn."""
    page.goto(base.rstrip("/") + path)
    page.wait_for_function(READY, arg=path, timeout=60_000)
    page.add_script_tag(path=str(script))
    return page.evaluate(AXE_RUN, WCAG_TAGS)


def axe_pages(site_dir: Path, paths: list[str] | None = None, tools: Path = TOOLS) -> dict:
    """``{scheme: {path: [violation, ...]}}`` for both palettes (the reader's system setting picks it)."""
    from playwright.sync_api import sync_playwright

    script = axe_script(tools)
    paths = paths or page_paths(site_dir)
    out: dict[str, dict] = {}
    with serve_directory(site_dir) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            for scheme in ("light", "dark"):
                context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
                page = context.new_page()
                out[scheme] = {path: axe_page(page, base, path, script) for path in paths}
                context.close()
        finally:
            browser.close()
    return out


def axe_summary(results: dict) -> dict:
    """Pages checked, and the serious/critical violations by rule, over both palettes."""
    blocking: dict[str, list[str]] = {}
    counts = {impact: 0 for impact in ("minor", "moderate", "serious", "critical")}
    pages = 0
    for scheme, by_path in results.items():
        for path, violations in by_path.items():
            pages += 1
            for v in violations:
                counts[v["impact"]] = counts.get(v["impact"], 0) + 1
                if v["impact"] in BLOCKING:
                    blocking.setdefault(v["id"], []).append(f"{path} ({scheme})")
    return {
        "pages_checked": pages,
        "violations_by_impact": counts,
        "blocking": blocking,
        "pages_with_blocking": len({p for where in blocking.values() for p in where}),
    }


# --------------------------------------------------------------------------- both


def measure(site_dir: Path, *, repeats: int = 1, tools: Path = TOOLS, log=print) -> dict:
    """Lighthouse and axe-core (in both palettes) on every page of the built site."""
    result: dict = {"versions": {"lighthouse": LIGHTHOUSE.split("@")[1], "axe": AXE.split("@")[1]}}
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} not found"
        return {
            **result,
            "lighthouse": {"status": "not measured", "reason": reason},
            "axe": {"status": "not measured", "reason": reason},
        }
    try:
        pages = page_paths(site_dir)
        result["lighthouse"] = {"status": "ok", "pages": lighthouse_pages(site_dir, pages, repeats, tools, log)}
    except Exception as error:  # no npm, no network to the registry, a page that never loads
        result["lighthouse"] = {"status": "not measured", "reason": f"{type(error).__name__}: {error}"[:400]}
    try:
        raw = axe_pages(site_dir, tools=tools)
        result["axe"] = {"status": "ok", **axe_summary(raw), "pages": raw}
    except Exception as error:
        result["axe"] = {"status": "not measured", "reason": f"{type(error).__name__}: {error}"[:400]}
    return result


def measure_built(root: Path, *, repeats: int = 1, tools: Path = TOOLS, log=print) -> dict:
    """Build the site (as the site benchmark does) into a temporary folder and measure it."""
    from benchmarks.site import build

    with tempfile.TemporaryDirectory() as tmp:
        site_dir = Path(tmp) / "site"
        built = build(root, site_dir, timeout=600)
        if built["status"] != "ok":
            reason = f"no built site ({built.get('reason', 'build failed')})"
            return {
                "lighthouse": {"status": "not measured", "reason": reason},
                "axe": {"status": "not measured", "reason": reason},
            }
        return measure(site_dir, repeats=repeats, tools=tools, log=log)


def table_rows(web: dict) -> list[dict]:
    """Rows for the performance page's table: the worst page and the median, per measure."""
    rows: list[dict] = []
    lh = web.get("lighthouse", {})
    if lh.get("status") == "ok":
        pages = lh["pages"]
        for key, label in (("performance", "performance"), ("accessibility", "accessibility")):
            scores = {p: r[key] for p, r in pages.items()}
            worst = min(scores, key=scores.get)
            goal = GOALS[key]
            rows.append(
                {
                    "figure": f"Lighthouse {label} (mobile, gzip), lowest of {len(scores)} pages ({worst})",
                    "measured": f"{scores[worst]}",
                    "goal": f"≥ {goal}" if key == "performance" else f"{goal}",
                    "ratio": scores[worst] / goal,
                    "met": scores[worst] >= goal,
                }
            )
            rows.append(
                {
                    "figure": f"Lighthouse {label}, median over those pages",
                    "measured": f"{statistics.median(scores.values()):g}",
                }
            )
        tbt = max(r["total_blocking_time_ms"] for r in pages.values())
        rows.append(
            {"figure": "Lighthouse total blocking time, largest over those pages", "measured": f"{tbt:,.0f} ms"}
        )
        transfers = {p: r["transfer_bytes"] for p, r in pages.items() if "transfer_bytes" in r}
        if transfers:
            heaviest = max(transfers, key=transfers.get)
            size = transfers[heaviest]
            rows.append(
                {
                    "figure": f"first load's transfer (gzip), largest of {len(transfers)} pages ({heaviest})",
                    "measured": f"{size / 1e6:.2f} MB",
                    "goal": f"≤ {MAX_TRANSFER_BYTES / 1e6:g} MB",
                    "ratio": size / MAX_TRANSFER_BYTES,
                    "met": size <= MAX_TRANSFER_BYTES,
                }
            )
    else:
        rows.append(
            {"figure": "Lighthouse (mobile, gzip)", "measured": f"not measured ({lh.get('reason', 'not run')})"}
        )
    axe = web.get("axe", {})
    if axe.get("status") == "ok":
        n = axe["pages_with_blocking"]
        rows.append(
            {
                "figure": f"axe-core WCAG 2.1 A/AA: page views with a serious or critical violation "
                f"(of {axe['pages_checked']}, both palettes)",
                "measured": str(n),
                "goal": "0",
                "met": n == 0,
            }
        )
        minor = axe["violations_by_impact"]
        rows.append(
            {
                "figure": "axe-core violations by impact (minor, moderate), over all page views",
                "measured": f"{minor.get('minor', 0)}, {minor.get('moderate', 0)}",
            }
        )
    else:
        rows.append({"figure": "axe-core WCAG 2.1 A/AA", "measured": f"not measured ({axe.get('reason', 'not run')})"})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.web_quality", description=__doc__.splitlines()[0])
    parser.add_argument("site", help="a built site folder (mkdocs build --site-dir ...)")
    parser.add_argument("--repeats", type=int, default=1, help="Lighthouse runs per page (median score)")
    parser.add_argument("--only", choices=["lighthouse", "axe"], default=None)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    site = Path(args.site)
    if args.only == "axe":
        raw = axe_pages(site)
        result = {"axe": {"status": "ok", **axe_summary(raw), "pages": raw}}
    elif args.only == "lighthouse":
        result = {"lighthouse": {"status": "ok", "pages": lighthouse_pages(site, page_paths(site), args.repeats)}}
    else:
        result = measure(site, repeats=args.repeats)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    for row in table_rows(result):
        print(f"{row['figure']}: {row['measured']}")
    if "lighthouse" in result and result["lighthouse"].get("status") == "ok":
        for page, r in result["lighthouse"]["pages"].items():
            print(
                f"  {page:36s} perf {r['performance']:3d}  a11y {r['accessibility']:3d}  "
                f"TBT {r['total_blocking_time_ms']:6.0f} ms  {r['transfer_bytes'] / 1000:6.0f} kB  "
                f"{', '.join(r['accessibility_failures'])}"
            )
    if "axe" in result and result["axe"].get("status") == "ok":
        for rule, where in sorted(result["axe"]["blocking"].items()):
            print(f"  axe {rule}: {len(where)} page views, e.g. {', '.join(where[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
