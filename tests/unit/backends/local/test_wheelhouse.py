"""The pure parts of the wheelhouse: pins from run.json, cache keys, lock and error texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.local.wheelhouse import (
    PLATFORMS,
    Wheelhouse,
    WheelhouseError,
    _explain,
    _lock_of,
    canonical,
    environment_constraints,
    read_run,
    recorded_versions,
    requirements_for,
    service_packages,
    service_versions,
    wheelhouse_key,
)

RUN = {
    "python_version": "3.11.2",
    "versions": {
        "scikit-learn": "1.5.2",
        "numpy": "2.1.0",
        "scipy": "1.14.1",
        "joblib": "1.4.2",
        "pandas": "2.2.3",
    },
}
SERVICE = {"uvicorn": "0.30.0", "orjson": "3.10.0", "numpy": "9.9.9"}


def test_canonical_names() -> None:
    assert canonical("Scikit_Learn") == "scikit-learn"
    assert canonical("sklearn") == "scikit-learn"
    assert canonical("pydantic.settings") == "pydantic-settings"


def test_recorded_versions_reads_the_key_training_writes() -> None:
    assert recorded_versions(RUN)["scikit-learn"] == "1.5.2"


def test_recorded_versions_accepts_other_keys_and_module_names() -> None:
    assert recorded_versions({"library_versions": {"sklearn": "1.4.0"}}) == {
        "scikit-learn": "1.4.0"
    }


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ({"params": {}}, "records no library versions"),
        ({"versions": {}}, "records no library versions"),
        ({"versions": {"numpy": "2.1.0"}}, "no scikit-learn version"),
    ],
)
def test_recorded_versions_refuses_incomplete_runs(run: dict[str, object], message: str) -> None:
    with pytest.raises(WheelhouseError, match=message):
        recorded_versions(run)


def test_requirements_pin_training_versions_over_service_versions() -> None:
    assert requirements_for(RUN, SERVICE) == [
        "joblib==1.4.2",
        "numpy==2.1.0",  # run.json wins over the service's numpy
        "orjson==3.10.0",
        "pandas==2.2.3",
        "scikit-learn==1.5.2",
        "scipy==1.14.1",
        "uvicorn==0.30.0",
    ]


def test_service_versions_come_from_this_environment() -> None:
    versions = service_versions()
    assert set(versions) == {
        "uvicorn",
        "httptools",
        "uvloop",
        "orjson",
        "pydantic",
        "pydantic-settings",
        "prometheus-client",  # /metrics (scoring/metrics.py)
    }
    assert all(versions.values())


def test_telemetry_adds_the_exporter_at_this_environments_version() -> None:
    from importlib import metadata

    plain, telemetry = requirements_for(RUN), requirements_for(RUN, telemetry=True)
    exporter = f"azure-monitor-opentelemetry=={metadata.version('azure-monitor-opentelemetry')}"
    assert exporter in telemetry and not any(p.startswith("azure-") for p in plain)
    assert set(telemetry) - set(plain) == {exporter}
    assert service_packages() == service_packages(telemetry=False)
    # Another list, another wheelhouse folder: the two images never share one.
    assert wheelhouse_key(plain) != wheelhouse_key(telemetry)


def test_service_versions_name_a_missing_package() -> None:
    with pytest.raises(WheelhouseError, match="no-such-package-xyz"):
        service_versions(["no-such-package-xyz"])


def test_read_run_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(WheelhouseError, match="run.json is missing"):
        read_run(tmp_path)
    (tmp_path / "run.json").write_text("[1, 2]")
    with pytest.raises(WheelhouseError, match="not a JSON object"):
        read_run(tmp_path)
    (tmp_path / "run.json").write_text("{broken")
    with pytest.raises(WheelhouseError, match="cannot read"):
        read_run(tmp_path)


def test_key_depends_on_the_list_not_its_order() -> None:
    a = wheelhouse_key(["numpy==2.1.0", "scikit-learn==1.5.2"])
    assert a == wheelhouse_key(["scikit-learn==1.5.2", "numpy==2.1.0"])
    assert a != wheelhouse_key(["numpy==2.1.0", "scikit-learn==1.5.1"])
    assert a != wheelhouse_key(["numpy==2.1.0", "scikit-learn==1.5.2"], ["six==1.17.0"])


def test_platforms_stay_within_bookworm_glibc() -> None:
    assert "manylinux_2_28_x86_64" in PLATFORMS
    assert "manylinux_2_17_x86_64" in PLATFORMS
    assert "manylinux2014_x86_64" in PLATFORMS
    assert "manylinux_2_39_x86_64" not in PLATFORMS


def test_environment_constraints_leave_pinned_packages_out() -> None:
    constraints = environment_constraints(["numpy==1.0", "scikit-learn==0.1"])
    names = {line.partition("==")[0] for line in constraints}
    assert "numpy" not in names and "scikit-learn" not in names and "pip" not in names
    assert "scipy" in names  # installed here, not pinned: held to this environment


def test_lock_lists_every_wheel(tmp_path: Path) -> None:
    for name in (
        "scikit_learn-1.5.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "python_dateutil-2.9.0.post0-py2.py3-none-any.whl",
        "foo-1.0-1build-py3-none-any.whl",
    ):
        (tmp_path / name).touch()
    lock = _lock_of(tmp_path)
    assert lock == ("foo==1.0", "python-dateutil==2.9.0.post0", "scikit-learn==1.5.2")
    house = Wheelhouse(tmp_path, ("scikit-learn==1.5.2",), lock)
    assert house.version_of("sklearn") == "1.5.2"
    assert house.version_of("numpy") is None
    assert house.lock_text.endswith("scikit-learn==1.5.2\n")


def test_unavailable_sklearn_is_explained() -> None:
    stderr = (
        "WARNING: noise\n"
        "ERROR: Could not find a version that satisfies the requirement scikit-learn==0.0.7\n"
        "ERROR: No matching distribution found for scikit-learn==0.0.7\n"
    )
    message = _explain(stderr, ["scikit-learn==0.0.7"])
    assert "scikit-learn==0.0.7 (recorded in run.json at training time)" in message
    assert "retrain" in message and "WARNING" not in message


def test_conflicts_are_explained() -> None:
    message = _explain("ERROR: ResolutionImpossible: ...", ["a==1", "b==2"])
    assert message.startswith("the pinned versions conflict (a==1, b==2)")
