"""A ``DeploymentTarget`` and an ``ImageBuilder`` kept in memory: for flow unit tests.

The target keeps the contract of the real ones (``deploy`` remembers the replaced release for
``rollback``, ``teardown`` empties an environment) and serves nothing: its endpoints are
``memory://`` URLs, so a test pairs it with a stand-in smoke test.
"""

from __future__ import annotations

from pathlib import Path

from core.interfaces import BackendError, Endpoint, ReleaseSpec

KEY = "memory-key"


class InMemoryTarget:
    """Environments as stacks of releases: the last one serves, the one below is previous."""

    def __init__(self) -> None:
        self.releases: dict[str, list[ReleaseSpec]] = {}
        self.deployed: list[tuple[str, str]] = []  # (environment, model version), in order

    def deploy(self, environment: str, release: ReleaseSpec) -> Endpoint:
        self.releases.setdefault(environment, []).append(release)
        self.deployed.append((environment, release.model_version))
        return self._endpoint(environment, release)

    def current(self, environment: str) -> Endpoint | None:
        release = self.current_release(environment)
        return None if release is None else self._endpoint(environment, release)

    def current_release(self, environment: str) -> ReleaseSpec | None:
        stack = self.releases.get(environment)
        return stack[-1] if stack else None

    def previous(self, environment: str) -> ReleaseSpec | None:
        stack = self.releases.get(environment, [])
        return stack[-2] if len(stack) > 1 else None

    def health(self, environment: str) -> bool:
        return self.current_release(environment) is not None

    def rollback(self, environment: str) -> Endpoint:
        stack = self.releases.get(environment, [])
        if len(stack) < 2:
            raise BackendError(f"{environment} has no previous release to roll back to")
        stack.pop()
        return self._endpoint(environment, stack[-1])

    def teardown(self, environment: str) -> None:
        self.releases.pop(environment, None)

    @staticmethod
    def _endpoint(environment: str, release: ReleaseSpec) -> Endpoint:
        return Endpoint(
            environment=environment,
            url=f"memory://{environment}",
            key=KEY,
            model_name=release.model_name,
            model_version=release.model_version,
            image=release.image,
        )


class InMemoryImageBuilder:
    """Names an image for each build and remembers the builds."""

    def __init__(self) -> None:
        self.built: list[str] = []

    def build(
        self, model_name: str, model_version: str, artifact_dir: Path, code_version: str
    ) -> str:
        if not artifact_dir.is_dir():
            raise BackendError(f"no model folder at {artifact_dir}")
        image = f"memory/{model_name}:{model_version}-{code_version}"
        self.built.append(image)
        return image
