"""Serves the Data Docs folder on loopback, with the pages' CDN assets from a local npm folder.

GX Data Docs load bootstrap, jQuery, font-awesome, vega, ... from CDNs, so offline they render
unstyled. ``make setup`` installs the same package versions from the npm registry into
``.tools/docs-assets/node_modules``; this server rewrites those CDN URLs in the HTML pages it
serves to ``/_assets/<npm package>/<path>`` and serves the files from there::

    python -m mlops.docs_server --port 8680 --directory .mlops/data_docs

A CDN URL whose file is not installed is left as it is (and logged once). ``integrity``
hashes are kept when the local file matches them, else dropped with ``crossorigin``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import logging
import os
import re
import threading
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from core.version import REPO_ROOT

logger = logging.getLogger(__name__)

DEFAULT_ASSETS = REPO_ROOT / ".tools" / "docs-assets" / "node_modules"
ASSETS_URL = "/_assets/"
CDNJS = "https://cdnjs.cloudflare.com/ajax/libs/"
# CDN URL (a prefix when it ends with "/") -> path under node_modules. The versions are the
# ones the GX templates ask for, pinned in the Makefile (`.tools/.docs-assets`).
CDN_ASSETS: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/": "bootstrap/dist/",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/": "bootstrap/dist/",
    "https://unpkg.com/bootstrap-table@1.19.1/": "bootstrap-table/",
    "https://unpkg.com/bootstrap-table@1.19.0/": "bootstrap-table-1.19.0/",
    f"{CDNJS}bootstrap-datepicker/1.9.0/": "bootstrap-datepicker/dist/",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/": "@forevolve/bootstrap-dark/",
    f"{CDNJS}font-awesome/6.6.0/": "@fortawesome/fontawesome-free/",
    f"{CDNJS}popper.js/1.12.9/": "popper.js/dist/",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
}
# The navbar logo comes from GX's web-assets bucket; the site has a copy under static/images.
GX_IMAGES = ("https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/", "static/images/")
PACKAGES = frozenset(
    "/".join(path.split("/")[: 2 if path.startswith("@") else 1]) for path in CDN_ASSETS.values()
)
TAG = re.compile(r"<(?:script|link|img)\b[^>]*>", re.IGNORECASE)
URL_ATTR = re.compile(r'\b(?:src|href)="([^"]+)"', re.IGNORECASE)
INTEGRITY = re.compile(r'\bintegrity="([^"]*)"', re.IGNORECASE)
SRI_ATTRS = re.compile(r'\s+(?:integrity|crossorigin)(?:="[^"]*")?', re.IGNORECASE)


def sri_matches(integrity: str, data: bytes) -> bool:
    """Whether ``data`` matches one of the hashes of an ``integrity`` attribute."""
    for token in integrity.split():
        algorithm, _, digest = token.partition("-")
        if algorithm in ("sha256", "sha384", "sha512"):
            if base64.b64encode(hashlib.new(algorithm, data).digest()).decode() == digest:
                return True
    return False


class DocsServer(ThreadingHTTPServer):
    """Serves ``directory`` on loopback, CDN URLs in its HTML pointing at ``assets``."""

    daemon_threads = True

    def __init__(self, directory: Path, assets: Path, port: int, host: str = "127.0.0.1") -> None:
        self.directory = Path(directory)
        self.assets = Path(assets)
        self._warned: set[str] = set()
        self._sri: dict[tuple[str, Path], bool] = {}  # assets do not change while serving
        self._lock = threading.Lock()
        super().__init__((host, port), partial(_Handler, directory=str(directory)))

    def asset_file(self, relative: str) -> Path | None:
        """The installed file at ``relative`` in a known package's folder, or None."""
        parts = relative.split("/")
        package = "/".join(parts[: 2 if relative.startswith("@") else 1])
        if package not in PACKAGES or "node_modules" in parts:
            return None
        try:
            root = (self.assets / package).resolve()
            file = (self.assets / relative).resolve()
        except (OSError, ValueError):  # e.g. a NUL byte
            return None
        return file if file.is_relative_to(root) and file.is_file() else None

    def local(self, url: str) -> tuple[str, Path] | None:
        """The local URL and file standing in for a CDN ``url``; None when there is none."""
        base, query = url.split("?", 1) if "?" in url else (url, "")
        if base.startswith(GX_IMAGES[0]):
            relative = GX_IMAGES[1] + base[len(GX_IMAGES[0]) :]
            file = self.directory / relative
            if ".." not in relative.split("/") and file.is_file():
                return "/" + relative + ("?" + query if query else ""), file
            return None
        for prefix, target in CDN_ASSETS.items():
            if base == prefix or (prefix.endswith("/") and base.startswith(prefix)):
                relative = target + base[len(prefix) :]
                found = self.asset_file(relative)
                if found is not None:
                    return ASSETS_URL + relative, found
                with self._lock:
                    if url not in self._warned:
                        self._warned.add(url)
                        logger.warning("%s not installed: pages load %s", relative, url)
        return None

    def rewrite(self, html: str) -> str:
        """``html`` with the CDN URLs of its tags replaced by local ones where installed."""
        return TAG.sub(self._rewrite_tag, html)

    def _rewrite_tag(self, match: re.Match[str]) -> str:
        tag = match.group(0)
        attr = URL_ATTR.search(tag)
        local = self.local(attr.group(1)) if attr else None
        if attr is None or local is None:
            return tag
        tag = tag[: attr.start(1)] + local[0] + tag[attr.end(1) :]
        integrity = INTEGRITY.search(tag)
        if integrity and not self._integrity_ok(integrity.group(1), local[1]):
            tag = SRI_ATTRS.sub("", tag)
        return tag

    def _integrity_ok(self, integrity: str, file: Path) -> bool:
        """``sri_matches`` for an asset, hashed once rather than on every page served."""
        key = (integrity, file)
        with self._lock:
            known = self._sri.get(key)
        if known is None:
            known = sri_matches(integrity, file.read_bytes())
            with self._lock:
                self._sri[key] = known
        return known


class _Handler(SimpleHTTPRequestHandler):
    server: DocsServer
    server_version = "mlops-docs/1"
    extensions_map = SimpleHTTPRequestHandler.extensions_map | {
        ".css": "text/css", ".js": "text/javascript", ".map": "application/json",
        ".svg": "image/svg+xml", ".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf",
    }  # fmt: skip

    def send_head(self) -> Any:
        url_path = urlsplit(self.path).path
        if url_path.startswith(ASSETS_URL):
            file = self.server.asset_file(unquote(url_path[len(ASSETS_URL) :]))
            if file is None:
                self.send_error(HTTPStatus.NOT_FOUND, "No such asset")
                return None
            return self._send(file.read_bytes(), self.guess_type(file), "public, max-age=86400")
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            # A folder is its index.html or nothing: a listing would show every run's files.
            path = os.path.join(path, "index.html")
            if not (url_path.endswith("/") and os.path.isfile(path)):
                self.send_error(HTTPStatus.NOT_FOUND, "File not found")
                return None
        if not (path.endswith(".html") and os.path.isfile(path)):
            return super().send_head()  # what http.server does, inside the docs folder
        html = Path(path).read_bytes().decode("utf-8", "surrogateescape")
        body = self.server.rewrite(html).encode("utf-8", "surrogateescape")
        return self._send(body, "text/html; charset=utf-8", "no-cache")

    def _send(self, body: bytes, content_type: str, cache: str) -> io.BytesIO:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.end_headers()
        return io.BytesIO(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)


def main(argv: list[str] | None = None) -> None:
    """``python -m mlops.docs_server --port P --directory DIR [--assets NODE_MODULES]``."""
    parser = argparse.ArgumentParser(
        prog="python -m mlops.docs_server", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--bind", default="127.0.0.1", choices=["127.0.0.1", "localhost"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--directory", type=Path, required=True, help="the Data Docs folder")
    parser.add_argument("--assets", type=Path, default=DEFAULT_ASSETS, help="node_modules")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not args.assets.is_dir():
        logger.warning("%s missing (run `make setup`): pages use the CDNs", args.assets)
    with DocsServer(args.directory, args.assets, args.port, args.bind) as server:
        logger.info("Data Docs of %s on http://%s:%s/", args.directory, args.bind, args.port)
        server.serve_forever()


if __name__ == "__main__":
    main()
