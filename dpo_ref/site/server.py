"""A folder served over HTTP on 127.0.0.1 for as long as a ``with`` block runs.

Used where a real browser must load the site's files from an origin, not from disk:
``dpo-ref math`` (MathJax loads its extensions relative to its own address), the site
benchmark and the web-quality measurements (``gzip=True``: text files sent compressed to
a browser that accepts it, as GitHub Pages sends them; Lighthouse would otherwise charge
a page for bytes no reader downloads).
"""

from __future__ import annotations

import contextlib
import functools
import gzip as gzip_module
import http.server
import os
import shutil
import threading
from pathlib import Path

# The browser that loads the served folder (Playwright drives it): $DPO_CHROMIUM, else
# Debian's Chromium, else Google Chrome (as on GitHub's runners).
CHROMIUM = (
    os.environ.get("DPO_CHROMIUM") or shutil.which("chromium") or shutil.which("google-chrome") or "/usr/bin/chromium"
)

# What a static host compresses: text, not images or fonts that are compressed already.
COMPRESSED_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml", "application/xml")


@contextlib.contextmanager
def serve_directory(directory: str | Path, *, gzip: bool = False):
    """Yields the base URL (``http://127.0.0.1:PORT/``) of ``directory`` on a free port."""
    handler = functools.partial(_GzipHandler if gzip else _QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _GzipHandler(_QuietHandler):
    """Sends a text file gzipped (level 6) when the request accepts gzip."""

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            if not self.path.split("?")[0].endswith("/"):
                return super().send_head()  # the redirect to the folder's address
            path = path / "index.html"
        ctype = self.guess_type(str(path))
        if not (
            "gzip" in self.headers.get("Accept-Encoding", "") and path.is_file() and ctype.startswith(COMPRESSED_TYPES)
        ):
            return super().send_head()
        body = _compressed(str(path), os.stat(path).st_mtime_ns)
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Vary", "Accept-Encoding")
        self.end_headers()
        return _Body(body)


@functools.lru_cache(maxsize=512)
def _compressed(path: str, mtime_ns: int) -> bytes:
    return gzip_module.compress(Path(path).read_bytes(), compresslevel=6, mtime=0)


class _Body:
    """What ``send_head`` returns: a file-like object ``copyfile`` reads, then closes."""

    def __init__(self, data: bytes):
        self.data = data

    def read(self, size: int = -1) -> bytes:
        data, self.data = (self.data, b"") if size < 0 else (self.data[:size], self.data[size:])
        return data

    def close(self) -> None:
        pass
