"""The Data Docs server: real GX pages served over HTTP with their CDN assets made local.

The site is built once by the project's own validation on a small frame; the assets are a
fake ``node_modules`` (one small file per path the pages load), and, when ``make setup`` has
installed them, the real ones.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import great_expectations
import pytest

from core.settings import load_settings
from expectations.build_suite import reference_frame
from expectations.validate import validate_frame
from mlops.docs_server import CDN_ASSETS, DEFAULT_ASSETS, DocsServer, sri_matches
from mlops.stack import docs_server
from tests.utils.net import free_port

TEMPLATES = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
CDN_HOSTS = re.compile(
    r"^https://(cdn\.jsdelivr\.net|cdnjs\.cloudflare\.com|code\.jquery\.com|unpkg\.com"
    r"|maxcdn\.bootstrapcdn\.com|stackpath\.bootstrapcdn\.com|great-expectations-web-assets)"
)
# What the GX pages load, as paths under node_modules (from the CDN URLs, by hand).
PAGE_ASSETS = {
    "bootstrap/dist/css/bootstrap.min.css",
    "bootstrap/dist/js/bootstrap.min.js",
    "bootstrap-table/dist/bootstrap-table.min.css",
    "bootstrap-table/dist/bootstrap-table.min.js",
    "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    "bootstrap-table-1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css",
    "bootstrap-table-1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css",
    "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js",
    "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css",
    "@fortawesome/fontawesome-free/css/all.min.css",
    "jquery/dist/jquery.min.js",
    "popper.js/dist/umd/popper.min.js",
    "vega/build/vega.min.js",
    "vega-lite/build/vega-lite.min.js",
    "vega-embed/build/vega-embed.min.js",
}
CSS_ASSETS = {  # loaded by the stylesheets, not the pages
    "@fortawesome/fontawesome-free/webfonts/fa-solid-900.woff2",
    "@fortawesome/fontawesome-free/svgs/solid/check.svg",
}
CONTENT_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".woff2": "font/woff2",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
Response = tuple[int, http.client.HTTPMessage, bytes]


class _Urls(HTMLParser):
    """The src/href of the <script>, <link> and <img> tags of a page, with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "link", "img"):
            found = dict(attrs)
            if found.get("src") or found.get("href"):
                self.tags.append(found)


def tags_of(html: bytes) -> list[dict[str, str | None]]:
    parser = _Urls()
    parser.feed(html.decode())
    return parser.tags


def url_of(tag: dict[str, str | None]) -> str:
    return str(tag.get("src") or tag.get("href"))


def get(port: int, path: str, method: str = "GET") -> Response:
    """One request, the path sent exactly as given (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


@contextmanager
def serving(directory: Path, assets: Path) -> Iterator[int]:
    """Run a ``DocsServer`` in a thread on a free port; yields the port."""
    server = DocsServer(directory, assets, free_port())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Data Docs site: index, suite and validation pages of a passing run."""
    docs = tmp_path_factory.mktemp("data_docs")
    report = validate_frame(reference_frame().head(60), file="tiny.csv", docs_dir=docs)
    assert report.success and report.data_docs, report.summary()
    return docs


@pytest.fixture(scope="module")
def pages(site: Path) -> list[str]:
    found = sorted("/" + p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert len(found) == 3  # index, the suite, the validation run
    return found


@pytest.fixture(scope="module")
def fake_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node_modules with a small made-up file at each asset path, plus one foreign package."""
    root = tmp_path_factory.mktemp("node_modules")
    for relative in [*PAGE_ASSETS, *CSS_ASSETS, "left-pad/index.js"]:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(f"/* {relative} */\n")
    outside = root.parent / "secret.txt"
    outside.write_text("secret")
    (root / "bootstrap" / "dist" / "escape.css").symlink_to(outside)
    return root


def test_pages_load_every_cdn_asset_from_the_local_copies(
    site: Path, pages: list[str], fake_assets: Path
) -> None:
    loaded: set[str] = set()
    with serving(site, fake_assets) as port:
        for page in pages:
            status, headers, body = get(port, page)
            assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
            tags = tags_of(body)
            assert not [url_of(t) for t in tags if CDN_HOSTS.match(url_of(t))], page
            for tag in tags:
                url = url_of(tag)
                if url.startswith("/_assets/"):
                    loaded.add(url.removeprefix("/_assets/"))
                    # the made-up files do not match the pages' SRI hashes: those go
                    assert "integrity" not in tag and "crossorigin" not in tag, tag
            logo = [url_of(t) for t in tags if "logo-long.png" in url_of(t)]
            assert len(logo) == 1 and logo[0].startswith("/static/images/logo-long.png?d=")
            assert get(port, logo[0])[0] == 200
        assert loaded == PAGE_ASSETS
        for relative in sorted(PAGE_ASSETS | CSS_ASSETS):
            status, headers, body = get(port, "/_assets/" + relative)
            assert status == 200, relative
            assert headers["Content-Type"] == CONTENT_TYPES[Path(relative).suffix], relative
            assert headers["Cache-Control"].startswith("public, max-age=")
            assert body == (fake_assets / relative).read_bytes()
        status, headers, body = get(port, "/_assets/jquery/dist/jquery.min.js", method="HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
        status, _, body = get(port, "/")
        assert status == 200 and b"/_assets/bootstrap/dist/css/bootstrap.min.css" in body


@pytest.mark.parametrize(
    "path",
    [
        "/_assets/../../etc/passwd",
        "/_assets/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/_assets/%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/_assets/bootstrap/..%2f..%2f..%2f..%2fetc/passwd",
        "/_assets/bootstrap/dist/../../jquery/dist/jquery.min.js",  # another package's file
        "/_assets/bootstrap/dist/escape.css",  # a symlink out of the package
        "/_assets/../secret.txt",
        "/_assets/left-pad/index.js",  # present, but not a package of the pages
        "/_assets/bootstrap/dist",
        "/_assets/bootstrap/%00",
        "/_assets/",
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    ],
)
def test_nothing_outside_the_known_packages_or_the_docs_is_served(
    site: Path, fake_assets: Path, path: str
) -> None:
    with serving(site, fake_assets) as port:
        status, _, body = get(port, path)
    assert status in (400, 404), path
    assert b"root:" not in body and b"secret" not in body


def test_missing_assets_leave_their_cdn_url_and_warn_once(
    site: Path,
    pages: list[str],
    fake_assets: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    partial = tmp_path / "node_modules"
    shutil.copytree(fake_assets, partial, symlinks=True)
    shutil.rmtree(partial / "jquery")
    with (
        caplog.at_level(logging.WARNING, logger="mlops.docs_server"),
        serving(site, partial) as port,
    ):
        for _ in range(2):
            for page in pages:
                urls = [url_of(t) for t in tags_of(get(port, page)[2])]
                assert "https://code.jquery.com/jquery-3.7.1.min.js" in urls
                assert "/_assets/bootstrap/dist/css/bootstrap.min.css" in urls
                assert not any("jquery" in u for u in urls if u.startswith("/_assets/"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "jquery/dist/jquery.min.js" in warnings[0], warnings


def test_non_html_files_are_served_byte_identical(site: Path, fake_assets: Path) -> None:
    files = {
        site / "static" / "styles" / "data_docs_default_styles.css": "text/css",
        site / "static" / "images" / "logo-long.png": "image/png",
        next((site / "_results").rglob("*.json")): "application/json",
    }
    with serving(site, fake_assets) as port:
        for file, content_type in files.items():
            status, headers, body = get(port, "/" + file.relative_to(site).as_posix())
            assert status == 200 and headers["Content-Type"] == content_type, file
            assert body == file.read_bytes(), file


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def test_integrity_is_kept_only_when_the_local_file_matches(tmp_path: Path) -> None:
    assets = tmp_path / "node_modules"
    (assets / "popper.js/dist/umd").mkdir(parents=True)
    (assets / "popper.js/dist/umd/popper.min.js").write_bytes(b"popper();")
    (assets / "bootstrap/dist/js").mkdir(parents=True)
    (assets / "bootstrap/dist/js/bootstrap.min.js").write_bytes(b"bootstrap();")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.html").write_text(
        '<script src="https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js"'
        f' integrity="sha256-x {sri(b"popper();")}" crossorigin="anonymous"></script>\n'
        '<script src="https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js"'
        f' integrity="{sri(b"other")}" crossorigin="anonymous"></script>\n'
    )
    with serving(docs, assets) as port:
        popper, bootstrap = tags_of(get(port, "/page.html")[2])
    assert popper["src"] == "/_assets/popper.js/dist/umd/popper.min.js"
    assert popper["integrity"] == f"sha256-x {sri(b'popper();')}"
    assert popper["crossorigin"] == "anonymous"
    assert bootstrap == {"src": "/_assets/bootstrap/dist/js/bootstrap.min.js"}
    assert sri_matches(sri(b"a"), b"a") and not sri_matches(sri(b"a"), b"b")
    assert not sri_matches("md5-" + base64.b64encode(hashlib.md5(b"a").digest()).decode(), b"a")


def template_asset_urls() -> set[str]:
    """Every CDN URL a GX template loads a script, stylesheet or image from."""
    urls: set[str] = set()
    for template in TEMPLATES.glob("*.j2"):
        urls.update(re.findall(r'(?:src|href)="(https://[^"]+)"', template.read_text()))
    return {url for url in urls if not url.startswith("https://greatexpectations.io")}


@pytest.mark.skipif(
    not DEFAULT_ASSETS.is_dir(),
    reason=f"the Data Docs assets are not installed in {DEFAULT_ASSETS} (`make setup`)",
)
def test_installed_assets_cover_every_cdn_url_of_the_gx_templates(
    site: Path, pages: list[str]
) -> None:
    urls = template_asset_urls()
    assert len(urls) >= 15, urls
    with DocsServer(site, DEFAULT_ASSETS, free_port()) as server:
        missing = [url for url in sorted(urls) if server.local(url) is None]
        assert not missing, f"not installed (make .tools/.docs-assets): {missing}"
        for prefix, target in CDN_ASSETS.items():  # the installed versions are the URLs' ones
            package = "/".join(target.split("/")[: 2 if target.startswith("@") else 1])
            version = json.loads((DEFAULT_ASSETS / package / "package.json").read_text())
            wanted = re.search(r"[@/-](\d+(?:\.\d+)*)", prefix)
            assert wanted is not None, prefix
            assert f"{version['version']}.".startswith(f"{wanted.group(1)}."), (prefix, version)
    with serving(site, DEFAULT_ASSETS) as port:
        for page in pages:
            tags = tags_of(get(port, page)[2])
            assert not [url_of(t) for t in tags if CDN_HOSTS.match(url_of(t))], page
            for tag in tags:
                if url_of(tag).startswith("/_assets/"):
                    assert get(port, url_of(tag), method="HEAD")[0] == 200, tag
            popper = next(t for t in tags if "popper" in url_of(t))
            assert popper["integrity"] and popper["crossorigin"] == "anonymous"  # hashes match


def test_the_stack_runs_it_on_the_docs_folder(site: Path, tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path / "state", docs_port=free_port())
    shutil.copytree(site, settings.data_docs_path)
    service = docs_server(settings)
    assert service.command()[1:3] == ["-m", "mlops.docs_server"]
    assert service.command()[-2:] == ["--assets", str(DEFAULT_ASSETS)]
    try:
        service.start(timeout=30)
        status, _, body = get(settings.docs_port, "/index.html")
    finally:
        service.stop(timeout=5)
    assert status == 200 and b"Great Expectations" in body
    stylesheet = "/_assets/bootstrap/dist/css/bootstrap.min.css"
    if not (DEFAULT_ASSETS / "bootstrap").is_dir():
        stylesheet = "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"
    assert stylesheet.encode() in body


@pytest.mark.parametrize("path", ["/", "/validations/", "/validations", "/validations/x/"])
def test_directories_are_not_listed(tmp_path: Path, fake_assets: Path, path: str) -> None:
    (tmp_path / "validations" / "x").mkdir(parents=True)
    (tmp_path / "validations" / "run-1.html").write_text("<html></html>")
    with serving(tmp_path, fake_assets) as port:
        status, _, body = get(port, path)
        index = get(port, "/validations/run-1.html")[0]
    assert status == 404, path
    assert b"run-1.html" not in body and b"Directory listing" not in body
    assert index == 200
