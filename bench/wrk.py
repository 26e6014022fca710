"""wrk as the load generator: its command line, and its result read from ``post.lua``'s line.

wrk (the Debian package) runs in its own process with one thread, so the load generator's
CPU is visible and bounded; ``post.lua`` POSTs one body with a bearer key and ends with one
``BENCH key=value ...`` line, which ``parse`` reads (wrk's human summary rounds and scales
its numbers, this line does not).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("post.lua")
_LINE = re.compile(r"^BENCH (?P<fields>(?:\w+=-?\d+ ?)+)$", re.MULTILINE)
_FIELDS = (
    "requests",
    "duration_us",
    "p50_us",
    "p90_us",
    "p99_us",
    "max_us",
    "connect",
    "read",
    "write",
    "status",
    "timeout",
)


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed no result line."""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles (ms) and errors.

    ``errors`` counts responses with a status above 399 and socket errors (connect, read,
    write, timeout) together: any of them is a request a client did not get answered.
    """

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    status_errors: int
    socket_errors: int

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> int:
        return self.status_errors + self.socket_errors


def parse(output: str) -> WrkResult:
    """Read ``post.lua``'s ``BENCH`` line out of wrk's output.

    Raises:
        WrkError: There is no such line, or a field is missing.
    """
    match = _LINE.search(output)
    if match is None:
        raise WrkError(f"no BENCH line in wrk's output:\n{output[-2000:]}")
    values = dict(item.split("=") for item in match["fields"].split())
    missing = [name for name in _FIELDS if name not in values]
    if missing:
        raise WrkError(f"wrk's BENCH line lacks {', '.join(missing)}: {match[0]}")
    n = {name: int(values[name]) for name in _FIELDS}
    return WrkResult(
        requests=n["requests"],
        seconds=n["duration_us"] / 1e6,
        p50_ms=n["p50_us"] / 1000,
        p90_ms=n["p90_us"] / 1000,
        p99_ms=n["p99_us"] / 1000,
        max_ms=n["max_us"] / 1000,
        status_errors=n["status"],
        socket_errors=n["connect"] + n["read"] + n["write"] + n["timeout"],
    )


def command(
    url: str,
    body_file: Path,
    key_file: Path | None,
    *,
    seconds: float,
    connections: int = 16,
    threads: int = 1,
    timeout_s: float = 5.0,
    binary: str = "wrk",
) -> list[str]:
    """The wrk command line: ``threads`` threads, ``connections`` keep-alive connections,
    ``seconds`` rounded to whole seconds (wrk takes no fractions), at least one."""
    argv = [
        binary, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "-s", str(SCRIPT), url, "--", str(body_file),
    ]  # fmt: skip
    if key_file is not None:
        argv.append(str(key_file))
    return argv


def run(
    url: str, body_file: Path, key_file: Path | None, seconds: float, **options: int
) -> WrkResult:
    """Run wrk once against ``url`` and return its result.

    Raises:
        WrkError: wrk is not installed (``make setup`` installs it), failed, or printed
            no result.
    """
    binary = shutil.which("wrk")
    if binary is None:
        raise WrkError("wrk is not installed: make setup installs the Debian package")
    argv = command(url, body_file, key_file, seconds=seconds, binary=binary, **options)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        said = (done.stderr or done.stdout)[-1000:]
        raise WrkError(f"{' '.join(argv[:-2])} exited {done.returncode}: {said}")
    return parse(done.stdout)
