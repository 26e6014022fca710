"""bench.production_ab's variants each change what they say from the deployed production."""

from __future__ import annotations

from pathlib import Path

from backends.local import haproxy
from bench.production_ab import VARIANTS

CONFIG = haproxy.render("production", "127.0.0.1", 8700, 8701, Path("/s.sock"), Path("/m.map"))


def test_no_pool_takes_the_idle_connection_pool_off_the_servers() -> None:
    before = VARIANTS["no-pool"].servers(haproxy.SERVER_OPTIONS)
    assert "pool-max-conn" in haproxy.SERVER_OPTIONS and "pool-max-conn" not in before
    assert VARIANTS["before"].servers(haproxy.SERVER_OPTIONS) == before


def test_engine_cgroup_drops_the_replicas_own_cgroup() -> None:
    options = VARIANTS["engine-cgroup"].options({"image": "x", "cgroup_parent": "/"})
    assert options == {"image": "x"}
    assert VARIANTS["deployed"].options({"cgroup_parent": "/"}) == {"cgroup_parent": "/"}


def test_config_variants_change_the_rendered_config() -> None:
    assert "    nbthread 1\n" in VARIANTS["nbthread-1"].config(CONFIG)
    assert "http-reuse always" in VARIANTS["reuse-always"].config(CONFIG)
    assert VARIANTS["maxconn-8"].servers("check").endswith("maxconn 8")
    assert VARIANTS["deployed"].config(CONFIG) == CONFIG
