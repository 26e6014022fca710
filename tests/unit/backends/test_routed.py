"""TargetsByEnvironment: each environment's calls reach that environment's target only."""

from __future__ import annotations

import pytest

from backends.routed import TargetsByEnvironment
from core.interfaces import BackendError, DeploymentTarget, Endpoint, ReleaseSpec

V1 = ReleaseSpec("diabetes-ridge", "1", "a" * 64, image="acr.azurecr.io/d:1")
V2 = ReleaseSpec("diabetes-ridge", "2", "b" * 64, image="acr.azurecr.io/d:2")


class Keeper:
    """A target that keeps releases per environment in memory."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.live: dict[str, list[ReleaseSpec]] = {}

    def deploy(self, environment: str, release: ReleaseSpec) -> Endpoint:
        self.live.setdefault(environment, []).append(release)
        return self._endpoint(environment, release)

    def _endpoint(self, environment: str, release: ReleaseSpec) -> Endpoint:
        url = f"https://{self.name}/{environment}"
        return Endpoint(environment, url, "k", release.model_name, release.model_version)

    def current(self, environment: str) -> Endpoint | None:
        release = self.current_release(environment)
        return self._endpoint(environment, release) if release else None

    def current_release(self, environment: str) -> ReleaseSpec | None:
        history = self.live.get(environment) or []
        return history[-1] if history else None

    def previous(self, environment: str) -> ReleaseSpec | None:
        history = self.live.get(environment) or []
        return history[-2] if len(history) > 1 else None

    def health(self, environment: str) -> bool:
        return environment in self.live

    def rollback(self, environment: str) -> Endpoint:
        self.live[environment].pop()
        return self._endpoint(environment, self.live[environment][-1])

    def teardown(self, environment: str) -> None:
        self.live.pop(environment, None)


def test_each_environment_reaches_its_own_target() -> None:
    aci, aks = Keeper("aci"), Keeper("aks")
    targets = TargetsByEnvironment({"qa": aci, "production": aks})
    assert isinstance(targets, DeploymentTarget)

    assert targets.deploy("qa", V2).url == "https://aci/qa"
    targets.deploy("production", V1)
    assert targets.deploy("production", V2).url == "https://aks/production"
    assert aci.live == {"qa": [V2]} and aks.live == {"production": [V1, V2]}
    assert targets.health("qa") and targets.health("production")
    assert targets.previous("production") == V1 and targets.previous("qa") is None

    assert targets.rollback("production").model_version == "1"
    assert targets.current_release("production") == V1
    targets.teardown("qa")
    assert targets.current("qa") is None and aci.live == {}
    assert targets.current("production") is not None  # untouched


def test_an_unknown_environment_is_a_clear_error() -> None:
    targets = TargetsByEnvironment({"qa": Keeper("aci"), "production": Keeper("aks")})
    with pytest.raises(BackendError, match=r"'staging' \(known: production, qa\)"):
        targets.deploy("staging", V1)
    with pytest.raises(ValueError, match="no environments"):
        TargetsByEnvironment({})
