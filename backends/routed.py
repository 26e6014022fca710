"""One ``DeploymentTarget`` made of one target per environment.

In Azure, QA and production are different services (ACI and AKS); the release flow still
talks to a single target and names the environment, as it does locally.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.interfaces import BackendError, DeploymentTarget, Endpoint, ReleaseSpec


class TargetsByEnvironment:
    """Sends each call to the target of its environment.

    Args:
        targets: The target of each environment, e.g. ``{"qa": aci, "production": aks}``.
    """

    def __init__(self, targets: Mapping[str, DeploymentTarget]) -> None:
        if not targets:
            raise ValueError("no environments")
        self.targets = dict(targets)

    def target(self, environment: str) -> DeploymentTarget:
        """The target that runs ``environment``."""
        try:
            return self.targets[environment]
        except KeyError:
            known = ", ".join(sorted(self.targets))
            raise BackendError(
                f"no deployment target for environment {environment!r} (known: {known})"
            ) from None

    def deploy(self, environment: str, release: ReleaseSpec) -> Endpoint:
        return self.target(environment).deploy(environment, release)

    def current(self, environment: str) -> Endpoint | None:
        return self.target(environment).current(environment)

    def current_release(self, environment: str) -> ReleaseSpec | None:
        return self.target(environment).current_release(environment)

    def previous(self, environment: str) -> ReleaseSpec | None:
        return self.target(environment).previous(environment)

    def health(self, environment: str) -> bool:
        return self.target(environment).health(environment)

    def rollback(self, environment: str) -> Endpoint:
        return self.target(environment).rollback(environment)

    def teardown(self, environment: str) -> None:
        self.target(environment).teardown(environment)
