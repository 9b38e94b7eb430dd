"""A folder served over HTTP on 127.0.0.1 for as long as a ``with`` block runs.

Used where a real browser must load the site's files from an origin, not from disk:
``dpo-ref math`` (MathJax loads its extensions relative to its own address) and the
site benchmark.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

# The browser that loads the served folder (Playwright drives it): $DPO_CHROMIUM, else
# Debian's Chromium, else Google Chrome (as on GitHub's runners).
CHROMIUM = (
    os.environ.get("DPO_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("google-chrome")
    or "/usr/bin/chromium"
)


@contextlib.contextmanager
def serve_directory(directory: str | Path):
    """Yields the base URL (``http://127.0.0.1:PORT/``) of ``directory`` on a free port."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
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
