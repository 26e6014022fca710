"""Reading the machine's apt sources for mmdebstrap (no engine, no network)."""

from __future__ import annotations

from pathlib import Path

from backends.local.base_image import debian_sources

DEB822 = """\
Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: {keyring}

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main contrib

Types: deb
URIs: http://vendor.example/node
Suites: nodistro
Components: main

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main

Enabled: no
Types: deb
URIs: http://off.example/debian
Suites: bookworm
Components: main
"""
ONE_LINE = """\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/nonexistent.gpg] http://old.example/debian bookworm main non-free
deb https://vendor.example/apt cloud-sdk-bookworm main
deb http://old.example/debian trixie main
"""


def test_only_the_suites_entries_are_kept(tmp_path: Path) -> None:
    keyring = tmp_path / "keyring.gpg"
    keyring.touch()
    sources_d = tmp_path / "sources.list.d"
    sources_d.mkdir()
    (sources_d / "debian.sources").write_text(DEB822.format(keyring=keyring))
    (sources_d / "vendor.list.disabled").write_text("deb http://ignored.example/ bookworm main")
    (tmp_path / "sources.list").write_text(ONE_LINE)
    text = debian_sources("bookworm", [tmp_path / "sources.list", sources_d])
    paragraphs = text.split("\n\n")
    assert paragraphs[0] == (
        "Types: deb\nURIs: http://old.example/debian\nSuites: bookworm\n"
        "Components: main non-free"  # a missing keyring file is not passed on
    )
    assert f"Suites: bookworm bookworm-updates\nComponents: main\nSigned-By: {keyring}" in text
    assert "Suites: bookworm-security\nComponents: main contrib" in text
    for absent in ("vendor.example", "off.example", "ignored.example", "commented", "trixie"):
        assert absent not in text
    assert len(paragraphs) == 3


def test_no_matching_source_gives_empty_text(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://old.example/ubuntu noble main\n")
    assert debian_sources("bookworm", [tmp_path / "sources.list", tmp_path / "missing"]) == ""
