"""Apply the notification automations of ``deployments/automations.yaml`` to a Prefect server.

``apply_automations(api_url, notify_url)`` saves the ``mlops-notify`` Webhook block (POST to
``notify_url``; locally the receiver of :mod:`mlops.notify`) and creates each automation of
the spec, or updates it in place when one of that name exists. Running it again changes
nothing: the same automations, the same ids, no duplicates. Automations it created earlier
(tag ``mlops.automations``) that the spec no longer lists are deleted, as are extra copies
of a name.

Sending to Teams, Slack or e-mail instead: save a Prefect notification block
(``prefect.blocks.notifications``: ``MicrosoftTeamsWebhook(url=...)``, ``SlackWebhook(url=...)``,
``SendgridEmail(...)``) under a name of your choice, then in the spec add (or swap in) an action
``type: send-notification`` with ``block: <type slug>/<name>`` (e.g.
``ms-teams-webhook/ops-channel``), a ``subject:`` and a ``body:`` template (the same
``{{ event... }}`` Jinja as the payloads; people read text, not JSON). Keeping the webhook
action as well leaves an audit trail in the local receiver. See ``deployments/NOTIFICATIONS.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from core.version import REPO_ROOT

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.schemas.automations import AutomationCore

logger = logging.getLogger(__name__)

SPEC_PATH = REPO_ROOT / "deployments" / "automations.yaml"
NOTIFY_BLOCK = "mlops-notify"
NOTIFY_BLOCK_REF = f"webhook/{NOTIFY_BLOCK}"  # how the spec names it: <type slug>/<name>
MANAGED_TAG = "mlops.automations"  # marks what apply_automations owns (and may prune)
_BLOCK_ACTIONS = ("actions", "actions_on_trigger", "actions_on_resolve")


class AutomationSpecError(ValueError):
    """The automations spec is malformed; the message names the entry."""


def load_spec(spec_path: Path = SPEC_PATH) -> list[dict[str, Any]]:
    """The automation entries of the spec file (YAML or JSON), unchanged."""
    import yaml

    data = yaml.safe_load(Path(spec_path).read_text(encoding="utf-8"))
    entries = data.get("automations") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise AutomationSpecError(f"{spec_path}: expected a list under 'automations:'")
    names = [e.get("name") for e in entries]
    if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
        raise AutomationSpecError(f"{spec_path}: every automation needs a unique name: {names}")
    return entries


def block_names(entries: list[dict[str, Any]]) -> set[str]:
    """The blocks the spec's actions refer to (``block: <block-type-slug>/<name>``)."""
    return {
        action["block"]
        for entry in entries
        for key in _BLOCK_ACTIONS
        for action in entry.get(key) or []
        if "block" in action
    }


def build_automations(
    entries: list[dict[str, Any]], block_ids: Mapping[str, UUID]
) -> list[AutomationCore]:
    """Validate the entries as Prefect automations, resolving ``block:`` names to ids."""
    from prefect.events.schemas.automations import AutomationCore

    built = []
    for entry in entries:
        data = dict(entry)
        for key in _BLOCK_ACTIONS:
            data[key] = [_resolve_block(a, block_ids, entry["name"]) for a in entry.get(key) or []]
        data["tags"] = sorted({*(entry.get("tags") or []), MANAGED_TAG})
        try:
            built.append(AutomationCore.model_validate(data))
        except ValueError as exc:
            raise AutomationSpecError(f"automation {entry['name']!r}: {exc}") from exc
    return built


def _resolve_block(
    action: dict[str, Any], block_ids: Mapping[str, UUID], automation: str
) -> dict[str, Any]:
    if "block" not in action:
        return action
    resolved = {k: v for k, v in action.items() if k != "block"}
    try:
        resolved["block_document_id"] = str(block_ids[action["block"]])
    except KeyError:
        raise AutomationSpecError(
            f"automation {automation!r}: unknown block {action['block']!r}"
        ) from None
    return resolved


def save_notify_block(notify_url: str, name: str = NOTIFY_BLOCK) -> UUID:
    """Create or overwrite the Webhook block that POSTs JSON to ``notify_url``; its id."""
    from prefect.blocks.webhook import Webhook

    block = Webhook(
        method="POST",
        url=notify_url,  # type: ignore[arg-type]  # pydantic turns it into a SecretStr
        headers={"Content-Type": "application/json"},  # type: ignore[arg-type]
    )
    block_id = block.save(name, overwrite=True)
    return UUID(str(block_id))


def apply_automations(api_url: str, notify_url: str, spec_path: Path = SPEC_PATH) -> list[str]:
    """Save the notify block and create or update the spec's automations (idempotent).

    Args:
        api_url: The Prefect API, e.g. ``http://127.0.0.1:4200/api``.
        notify_url: Where the ``mlops-notify`` Webhook block POSTs (the local receiver).
        spec_path: The automations spec.

    Returns:
        The automation ids, in spec order (stable across runs).
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    entries = load_spec(spec_path)
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        block_ids = {NOTIFY_BLOCK_REF: save_notify_block(notify_url)}
        missing = block_names(entries) - set(block_ids)
        with get_client(sync_client=True) as client:
            block_ids |= {name: _block_id(client, name) for name in missing}
            ids = [
                _upsert(client, automation) for automation in build_automations(entries, block_ids)
            ]
            _prune(client, keep={e["name"] for e in entries})
    return ids


def remove_automations(api_url: str, spec_path: Path = SPEC_PATH) -> list[str]:
    """Delete the spec's automations (every copy of each name); returns the deleted ids."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deleted = []
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            for entry in load_spec(spec_path):
                for existing in client.read_automations_by_name(entry["name"]):
                    client.delete_automation(existing.id)
                    deleted.append(str(existing.id))
    return deleted


def _block_id(client: SyncPrefectClient, ref: str) -> UUID:
    """The id of the block document ``<block-type-slug>/<name>``."""
    from prefect.exceptions import ObjectNotFound

    slug, _, name = ref.partition("/")
    if not slug or not name:
        raise AutomationSpecError(f"block {ref!r}: write it as <block-type-slug>/<name>")
    try:
        return client.read_block_document_by_name(name, block_type_slug=slug).id
    except ObjectNotFound:
        raise AutomationSpecError(f"block {ref!r} does not exist: save it first") from None


def _upsert(client: SyncPrefectClient, automation: AutomationCore) -> str:
    """Update the oldest automation of this name (its id stays), delete other copies."""
    from prefect.client.schemas.sorting import AutomationSort
    from prefect.events.filters import AutomationFilter, AutomationFilterName

    existing = client.read_automations(
        automations=AutomationFilter(name=AutomationFilterName(any_=[automation.name])),
        sort=AutomationSort.CREATED_DESC,
    )
    if not existing:
        new_id = client.create_automation(automation)
        logger.info("created automation %r (%s)", automation.name, new_id)
        return str(new_id)
    *extra, keep = existing
    client.update_automation(keep.id, automation)
    logger.info("updated automation %r (%s)", automation.name, keep.id)
    for duplicate in extra:
        client.delete_automation(duplicate.id)
        logger.info("deleted duplicate automation %r (%s)", automation.name, duplicate.id)
    return str(keep.id)


def _prune(client: SyncPrefectClient, keep: set[str]) -> None:
    for automation in client.read_automations():
        if MANAGED_TAG in automation.tags and automation.name not in keep:
            client.delete_automation(automation.id)
            logger.info("deleted automation %r: no longer in the spec", automation.name)
