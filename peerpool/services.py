"""Start, find and stop the long-running processes of a demo or a small installation.

Each service is a detached process with a pidfile and a log file under ``VAR/run`` and
``VAR/log``. Starting a service that already runs (same pidfile, live process) does nothing,
so the demo can be run twice. Every service is told to listen on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from peerpool.errors import PeerpoolError


class ServiceError(PeerpoolError):
    exit_code = 7


@dataclass(frozen=True)
class Service:
    name: str
    command: Sequence[str]
    env: Mapping[str, str]
    health_url: str | None = None  # answered with any HTTP status when the service is up
    cwd: Path | None = None


def _pidfile(var: Path, name: str) -> Path:
    return var / "run" / f"{name}.pid"


def running_pid(var: Path, name: str) -> int | None:
    """The pid of a running service, or None (a stale pidfile is removed)."""
    pidfile = _pidfile(var, name)
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
        return None
    except PermissionError:
        return pid
    return pid


def start(var: Path, service: Service, timeout_s: float = 120.0) -> tuple[int, bool]:
    """Start ``service`` unless it runs already; wait for its health URL. Returns (pid, started_now)."""
    pid = running_pid(var, service.name)
    if pid is not None:
        return pid, False
    (var / "run").mkdir(parents=True, exist_ok=True)
    (var / "log").mkdir(parents=True, exist_ok=True)
    log_path = var / "log" / f"{service.name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(service.command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **service.env},
            cwd=service.cwd,
            start_new_session=True,  # its own process group: stop() ends its children too
        )
    _pidfile(var, service.name).write_text(str(proc.pid))
    if service.health_url:
        wait_for_http(service.health_url, timeout_s, proc, log_path)
    return proc.pid, True


def wait_for_http(url: str, timeout_s: float, proc: subprocess.Popen[bytes] | None, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ServiceError(
                f"{url}: the service exited with code {proc.returncode}; log {log_path}:\n{tail}"
            )
        try:
            with urllib.request.urlopen(url, timeout=3):
                return
        except urllib.error.HTTPError:
            return  # it answers: up
        except (urllib.error.URLError, OSError):
            time.sleep(1.0)
    raise ServiceError(f"{url} did not answer within {timeout_s:.0f} s; see {log_path}")


def stop(var: Path, name: str, timeout_s: float = 20.0) -> bool:
    """Stop a service and its process group (TERM, then KILL). Returns whether it was running."""
    pid = running_pid(var, name)
    if pid is None:
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            with contextlib.suppress(ChildProcessError):  # reap it if it is our child
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.2)
        else:
            continue
        break
    _pidfile(var, name).unlink(missing_ok=True)
    return True
