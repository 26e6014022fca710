"""A real scoring process under saturation, stopped by SIGTERM mid-load, against real Azurite:
every row of every answered request is in the collected container exactly once."""

from __future__ import annotations

import asyncio
import random
import signal
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx

from tests.utils.azurite import AzuriteInstance
from tests.utils.scoring_collection import collect_url_file, collected_rows
from tests.utils.scoring_process import scoring_service
from training.schema import FEATURES

CONNECTIONS = 16
Answered = dict[str, tuple[list[list[float]], list[float]]]


async def _saturate(url: str, key: str, enough: int, stop: Callable[[], None]) -> Answered:
    """``CONNECTIONS`` clients send ``POST /score`` back to back (1-3 rows, own request id);
    once ``enough`` were answered, ``stop`` is called with the clients mid-request, and they
    go on until the service stops answering. Returns every request answered 200."""
    rng = random.Random(7)
    answered: Answered = {}
    reached = asyncio.Event()

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            while True:
                rid = uuid.uuid4().hex
                rows = [
                    [rng.uniform(-0.1, 0.1) for _ in FEATURES] for _ in range(rng.randint(1, 3))
                ]
                try:
                    response = await http.post(
                        "/score",
                        json={"data": rows},
                        headers={"Authorization": f"Bearer {key}", "X-Request-Id": rid},
                    )
                except httpx.TransportError:
                    return  # the service is gone
                if response.status_code != 200:
                    return  # shutting down
                assert response.headers["x-request-id"] == rid
                answered[rid] = (rows, response.json()["predictions"])
                if len(answered) >= enough:
                    reached.set()

    clients = [asyncio.create_task(client()) for _ in range(CONNECTIONS)]
    await reached.wait()
    stop()
    await asyncio.gather(*clients)
    return answered


def test_sigterm_under_load_loses_no_collected_row(
    azurite: AzuriteInstance, model_dir: Path, model_sha: str, api_key: str, tmp_path: Path
) -> None:
    env = f"t{uuid.uuid4().hex[:8]}"
    url_file = collect_url_file(azurite.connection_string, tmp_path)
    with scoring_service(
        model_dir,
        model_sha,
        api_key,
        collect_url_file=str(url_file),
        collect_env=env,
        collect_flush_rows=400,  # some windows cut by size under load...
        collect_window_seconds=3600,  # ...and the last one only by the shutdown
    ) as service:
        sigterm = partial(service.proc.send_signal, signal.SIGTERM)
        answered = asyncio.run(_saturate(service.url, api_key, 1500, sigterm))
        assert service.proc.wait(timeout=30) == 0
    assert len(answered) >= 1500

    names, rows = collected_rows(azurite.connection_string, env)
    keys = [(row.request_id, row.row) for row in rows]
    assert len(keys) == len(set(keys)), "a row was collected twice"
    expected = {(rid, i) for rid, (data, _) in answered.items() for i in range(len(data))}
    assert set(keys) == expected, service.output[-2000:]
    assert len(names) >= 2  # size windows during the load, the rest at shutdown
    for row in rows:
        data, predictions = answered[row.request_id]
        assert row.features == dict(zip(FEATURES, data[row.row], strict=True))
        assert row.prediction == predictions[row.row]
        assert (row.model, row.version, row.data_fingerprint) == ("diabetes-ridge", "7", "0" * 64)
