"""The built site, read as files (no browser): links, anchors, offline resources, alt, titles.

Shares the session's one build with tests/test_site_build.py and tests/test_browser.py
(tests/site_support.py caches it by base folder). Complements test_site_build.py's
check of ``<script src>``/``<img src>``/``<link href>`` with what it does not read:
``srcset``, ``poster``, ``<object>``/``<embed>``, SVG ``<use>``/``<image>``, CSS
``url()`` and ``@import`` (files, ``<style>`` blocks and ``style=""``), inline scripts
and figure data, and the CDN addresses inside the shipped JavaScript.
"""

from __future__ import annotations

import functools
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import pytest
from site_support import ROOT, BuiltSite, built_site_once

from dpo_ref.site.prerendered_figures import VIEW_SUFFIX


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> BuiltSite:
    return built_site_once(tmp_path_factory.getbasetemp())


# --------------------------------------------------------------------------- reading the HTML

# tag -> attributes whose URL the browser fetches by itself when the page loads
RESOURCE_ATTRS = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "iframe": ("src",),
    "frame": ("src",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "input": ("src",),
    "image": ("href", "xlink:href"),  # SVG
    "use": ("href", "xlink:href"),  # SVG: an external sprite sheet is fetched
    "feimage": ("href", "xlink:href"),
}
# <link rel=...> values that are navigation metadata, never fetched on load
LINK_NAVIGATION_RELS = {"canonical", "alternate", "prev", "next", "author", "license", "help", "search", "me"}

CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]+))\s*\)""", re.IGNORECASE)
CSS_IMPORT = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'<>)\\]*""")
# XML namespace names: identifiers, never fetched
NAMESPACES = ("http://www.w3.org/", "https://www.w3.org/")


class Page(HTMLParser):
    """One HTML file: its ids, links, resource URLs, title, images, styles and inline scripts."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []  # <a href> and <area href>
        self.resources: list[tuple[str, str]] = []  # (where, url)
        self.title: str | None = None
        self.images_without_alt: list[str] = []
        self.styles: list[str] = []  # <style> blocks and style="" attributes
        self.inline_scripts: list[str] = []
        self._in: str | None = None
        self._text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        if tag in ("a", "area") and "href" in a:
            self.links.append(a["href"])
        for attr in RESOURCE_ATTRS.get(tag, ()):
            if a.get(attr):
                urls = (
                    [part.strip().split()[0] for part in a[attr].split(",") if part.strip()]
                    if attr == "srcset"
                    else [a[attr]]
                )
                self.resources += [(f"<{tag} {attr}>", url) for url in urls]
        if tag == "link" and a.get("href"):
            rels = set(a.get("rel", "").lower().split())
            if not rels or not rels <= LINK_NAVIGATION_RELS:
                self.resources.append((f"<link rel={a.get('rel', '')}>", a["href"]))
        if tag == "img" and not a.get("alt", "").strip():
            self.images_without_alt.append(a.get("src", "?"))
        if a.get("style"):
            self.styles.append(a["style"])
        if tag in ("title", "style") or (tag == "script" and not a.get("src")):
            self._in, self._text = tag, []

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if self._in == tag:
            self._in = None

    def handle_data(self, data):
        if self._in:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag != self._in:
            return
        text = "".join(self._text)
        if tag == "title" and self.title is None:
            self.title = text.strip()
        elif tag == "style":
            self.styles.append(text)
        elif tag == "script":
            self.inline_scripts.append(text)
        self._in = None


def html_files(site: BuiltSite) -> list[Path]:
    """The site's pages (not the figures' first views, which are pieces of a page)."""
    return sorted(p for p in site.path.rglob("*.html") if not p.name.endswith(VIEW_SUFFIX))


@functools.cache
def _parse(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def page_url(site: BuiltSite, path: Path) -> str:
    rel = path.relative_to(site.path).as_posix()
    return site.url + (rel[: -len("index.html")] if rel.endswith("index.html") else rel)


def local_file(site: BuiltSite, url: str) -> Path | None:
    """The file an absolute URL of the site's own origin names (None for another origin)."""
    if not url.startswith(site.url):
        return None
    path = unquote(urlsplit(url).path)[len(urlsplit(site.url).path) :]
    target = site.path / path
    if path == "" or path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target


def css_urls(text: str) -> list[str]:
    return [next(g for g in m.groups() if g is not None) for m in (*CSS_URL.finditer(text), *CSS_IMPORT.finditer(text))]


def is_remote(site: BuiltSite, url: str) -> bool:
    """True for a URL that the browser would fetch from a host other than the site's own."""
    url = url.strip()
    if url.startswith(("data:", "blob:", "#", "about:")):
        return False
    if url.startswith("//"):
        url = "http:" + url
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", url, re.IGNORECASE)) and not url.startswith(site.url)


# --------------------------------------------------------------------------- links and anchors


def test_no_broken_internal_link_or_anchor(built_site):
    broken = []
    for path in html_files(built_site):
        here = page_url(built_site, path)
        for href in _parse(path).links:
            if re.match(r"^(mailto|tel|javascript):", href, re.IGNORECASE):
                continue
            absolute, fragment = urldefrag(urljoin(here, href))
            target = local_file(built_site, absolute)
            if target is None:
                continue  # another host: a navigation, allowed (papers, TRL, the original code)
            if not target.is_file():
                broken.append(
                    f"{path.relative_to(built_site.path)}: {href} -> no file {target.relative_to(built_site.path)}"
                )
            elif fragment and target.suffix == ".html" and unquote(fragment) not in _parse(target).ids:
                broken.append(
                    f"{path.relative_to(built_site.path)}: {href} -> no id {unquote(fragment)!r} in "
                    f"{target.relative_to(built_site.path)}"
                )
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_local_resource_exists(built_site):
    missing = []
    for path in html_files(built_site):
        here = page_url(built_site, path)
        for where, url in _parse(path).resources:
            target = local_file(built_site, urldefrag(urljoin(here, url))[0])
            if target is not None and not target.is_file():
                missing.append(f"{path.relative_to(built_site.path)}: {where} {url}")
    for css in built_site.path.rglob("*.css"):
        base = built_site.url + css.relative_to(built_site.path).as_posix()
        for url in css_urls(css.read_text(encoding="utf-8")):
            target = local_file(built_site, urldefrag(urljoin(base, url))[0]) if not url.startswith("data:") else None
            if target is not None and not target.is_file():
                missing.append(f"{css.relative_to(built_site.path)}: url({url})")
    assert not missing, "missing local files:\n" + "\n".join(missing)


# --------------------------------------------------------------------------- offline: nothing from another host


def test_no_page_fetches_from_another_host(built_site):
    remote = []
    for path in html_files(built_site):
        page = _parse(path)
        name = path.relative_to(built_site.path)
        remote += [f"{name}: {where} {url}" for where, url in page.resources if is_remote(built_site, url)]
        for style in page.styles:
            remote += [f"{name}: style url({url})" for url in css_urls(style) if is_remote(built_site, url)]
        for script in page.inline_scripts:  # inline code and figure data
            remote += [
                f"{name}: inline script {url}"
                for url in ABSOLUTE_URL.findall(script)
                if not url.startswith(NAMESPACES)
                and is_remote(built_site, url if ":" in url.split("/")[0] else "http:" + url)
            ]
    assert not remote, "resources from another host:\n" + "\n".join(remote)


def test_no_stylesheet_fetches_from_another_host(built_site):
    remote = []
    for css in sorted(built_site.path.rglob("*.css")):
        remote += [
            f"{css.relative_to(built_site.path)}: {url}"
            for url in css_urls(css.read_text(encoding="utf-8"))
            if is_remote(built_site, url)
        ]
    assert not remote, "CSS that loads from another host (fonts, images, @import):\n" + "\n".join(remote)


def test_the_sites_own_scripts_name_no_other_host(built_site):
    """site.js, mathjax-config.js and any other script written here (not vendored, not the theme's)."""
    own = [p for p in (ROOT / "docs").rglob("*.js") if "vendor" not in p.relative_to(ROOT / "docs").parts]
    assert own, "expected the site's own scripts under docs/"
    found = []
    for src in own:
        built = built_site.path / src.relative_to(ROOT / "docs")
        assert built.is_file(), built
        found += [
            f"{built.relative_to(built_site.path)}: {url}"
            for url in ABSOLUTE_URL.findall(built.read_text(encoding="utf-8"))
            if not url.startswith(NAMESPACES)
        ]
    assert not found, "\n".join(found)


# CDN and API hosts that shipped JavaScript must not load from. Each address that the
# theme or a vendored library carries is listed below with the condition under which
# it would be fetched, and a check that this site never meets that condition.
CDN_HOSTS = (
    "unpkg.com",
    "cdn.jsdelivr.net",
    "cdnjs.cloudflare.com",
    "cdn.plot.ly",
    "cloud.plotly.com",
    "fonts.googleapis.com",
    "fonts.gstatic.com",
    "ajax.googleapis.com",
    "code.jquery.com",
    "polyfill.io",
    "api.github.com",
    "use.fontawesome.com",
    "maxcdn.bootstrapcdn.com",
    "stackpath.bootstrapcdn.com",
    "www.googletagmanager.com",
    "www.google-analytics.com",
    "cdn.mathjax.org",
    "esm.sh",
    "cdn.skypack.dev",
)


def _all_pages(site: BuiltSite) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in html_files(site))


def _no_mermaid(site):  # Material fetches mermaid only for a page with a diagram and no window.mermaid
    return 'class="mermaid"' not in _all_pages(site)


def _no_repository_facts(site):  # Material asks the GitHub/GitLab API for stars only when repo_url is set
    return 'data-md-component="source"' not in _all_pages(site)


def _no_accessibility_explorer(site):  # MathJax loads speech-rule-engine files only for the a11y explorer
    config = (site.path / "assets" / "javascripts" / "mathjax-config.js").read_text(encoding="utf-8")
    return not re.search(r"a11y|explorer|\bsre\b|assistive", config)


def _no_chart_studio_or_maps(site):  # plotly.js: topojson for geo traces; Chart Studio for the edit link
    pages = _all_pages(site)
    return not re.search(r'"(showLink|showEditInChartStudio|sendData)":\s*true', pages) and not re.search(
        r'"type":\s*"(scattergeo|choropleth|scattermapbox|choroplethmapbox|densitymapbox|scattermap|choroplethmap|densitymap)"',
        pages,
    )


KNOWN_CONDITIONAL_LOADS = {
    "https://unpkg.com/mermaid@": _no_mermaid,
    "https://unpkg.com/resize-observer-polyfill": lambda site: (
        True
    ),  # only browsers without ResizeObserver (none current)
    "https://api.github.com/": _no_repository_facts,
    "https://cdn.jsdelivr.net/npm/speech-rule-engine@": _no_accessibility_explorer,
    "https://cdn.jsdelivr.net/npm/sre-mathmaps-ie@": _no_accessibility_explorer,
    "https://cdn.jsdelivr.net/npm/wicked-good-xpath@": _no_accessibility_explorer,  # and only without document.evaluate
    "https://cdn.plot.ly/": _no_chart_studio_or_maps,
    "https://cloud.plotly.com/": _no_chart_studio_or_maps,
}


def test_cdn_addresses_in_shipped_scripts_are_never_reached(built_site):
    unexplained, reachable = [], []
    for js in sorted(built_site.path.rglob("*.js")):
        text = js.read_text(encoding="utf-8", errors="replace")
        for url in set(ABSOLUTE_URL.findall(text)):
            host = urlsplit(url if ":" in url.split("/")[0] else "http:" + url).hostname or ""
            if not any(host == h or host.endswith("." + h) for h in CDN_HOSTS):
                continue
            name = f"{js.relative_to(built_site.path)}: {url}"
            known = [check for prefix, check in KNOWN_CONDITIONAL_LOADS.items() if url.startswith(prefix)]
            if not known:
                unexplained.append(name)
            elif not known[0](built_site):
                reachable.append(name)
    assert not unexplained, "CDN addresses in shipped scripts, not known to be inert:\n" + "\n".join(unexplained)
    assert not reachable, "CDN addresses this site would fetch:\n" + "\n".join(reachable)


# --------------------------------------------------------------------------- accessibility basics


def test_every_image_has_alt_text(built_site):
    missing = [
        f"{p.relative_to(built_site.path)}: <img src={src}>"
        for p in html_files(built_site)
        for src in _parse(p).images_without_alt
    ]
    assert not missing, "images without alt text:\n" + "\n".join(missing)


def test_every_page_has_a_title_and_each_page_its_own(built_site):
    titles = {p.relative_to(built_site.path).as_posix(): _parse(p).title for p in html_files(built_site)}
    assert all(titles.values()), [name for name, title in titles.items() if not title]
    pages = {name: title for name, title in titles.items() if name.endswith("index.html") and name != "index.html"}
    duplicated = sorted(t for t in set(pages.values()) if list(pages.values()).count(t) > 1)
    assert not duplicated, duplicated


# --------------------------------------------------------------------------- the checker itself


def test_the_checker_sees_what_it_must(tmp_path):
    """Each check, on a made-up page that breaks it."""
    site = BuiltSite(tmp_path, 1)
    html = (
        '<html><head><title> </title><link rel="stylesheet" href="https://cdn.example.com/a.css">'
        '<link rel="canonical" href="https://elsewhere.org/"><style>@import "//fonts.example.com/f.css";</style></head>'
        '<body><a href="#nowhere">x</a><a id="here" href="../other/#top">y</a><a href="https://arxiv.org/abs/2305.18290">p</a>'
        '<img src="data:image/png;base64,AA" srcset="https://img.example.com/a.png 2x">'
        "<div style=\"background: url('https://img.example.com/b.png')\"></div>"
        '<svg><use href="https://icons.example.com/s.svg#i"></use></svg>'
        '<script>var spec = {"image": "https://tiles.example.com/t.png"};</script></body></html>'
    )
    page = Page(html)
    assert page.title == "" and page.ids == {"here"}
    assert page.links == ["#nowhere", "../other/#top", "https://arxiv.org/abs/2305.18290"]
    assert page.images_without_alt == ["data:image/png;base64,AA"]
    remote = [url for _, url in page.resources if is_remote(site, url)]
    assert remote == [
        "https://cdn.example.com/a.css",
        "https://img.example.com/a.png",
        "https://icons.example.com/s.svg#i",
    ]
    assert [u for s in page.styles for u in css_urls(s)] == [
        "//fonts.example.com/f.css",
        "https://img.example.com/b.png",
    ]
    assert all(is_remote(site, u) for s in page.styles for u in css_urls(s))
    assert ABSOLUTE_URL.findall(page.inline_scripts[0]) == ["https://tiles.example.com/t.png"]
    assert not is_remote(site, site.url + "assets/x.js") and not is_remote(site, "data:font/woff2;base64,AA")
    assert local_file(site, site.url + "beta/") == tmp_path / "beta" / "index.html"
