"""Real SNMP agents for the counter tests, on 127.0.0.1 at free ports, stopped at teardown.

* :class:`Snmpd`: Debian's net-snmp ``snmpd`` with a private configuration (v2c community
  and a v3 authPriv user with random secrets made per run), serving the host's own
  interfaces (``lo`` is ifIndex 1).
* :class:`Snmpsim`: ``snmpsim`` 1.2.2 serving many simulated ports from ``.snmprec`` files
  written here (rising Counter64 values). snmpsim is not in the core environment: it runs
  from its own virtual environment, built from ``/usr/bin/python3`` in a world-readable
  cache directory when missing, because as root snmpsim drops privileges to nobody, who
  cannot read a Python under /root. The ``sw01.snmprec`` data answers v2c community
  ``sw01``; ``self.snmprec`` answers SNMPv3 requests with an empty context name (the only
  context gufo-snmp sends).

Every wait is bounded in time; agents are terminated (then killed) on exit.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SNMPSIM_VERSION = "1.2.2"
SNMPSIM_VENV = Path(
    os.environ.get("PEERPOOL_SNMPSIM_VENV", f"/var/tmp/peerpool-cache/snmpsim-{SNMPSIM_VERSION}")
)
START_TIMEOUT_S = 30.0


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _sbin(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        pytest.fail(f"{name} is not installed: run the README's test command (it installs the Debian tools)")
    return path


def wait_answering(port: int, community: str, timeout_s: float = START_TIMEOUT_S) -> None:
    """Block until an agent on 127.0.0.1:port answers sysUpTime.0 over v2c (bounded)."""
    from gufo.snmp.aio.client import SnmpSession

    async def probe() -> bool:
        try:
            async with SnmpSession("127.0.0.1", port, community=community, timeout=0.5) as session:
                await session.get("1.3.6.1.2.1.1.3.0")
            return True
        except Exception:
            return False

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if asyncio.run(probe()):
            return
        time.sleep(0.2)
    raise TimeoutError(f"no SNMP agent answered on 127.0.0.1:{port} within {timeout_s:g} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass(frozen=True)
class Snmpd:
    """A running snmpd: where it listens and the secrets it accepts."""

    port: int
    community: str
    user: str
    auth_key: str
    priv_key: str
    directory: Path


@contextmanager
def run_snmpd(directory: Path) -> Iterator[Snmpd]:
    """Start ``snmpd -f -C -c CONF -Lf LOG -p PIDFILE`` on 127.0.0.1 with private v2c/v3 secrets."""
    binary = _sbin("snmpd")
    directory.mkdir(parents=True, exist_ok=True)
    persist = directory / "persist"
    persist.mkdir(exist_ok=True)
    port = free_udp_port()
    agent = Snmpd(
        port=port,
        community="c" + secrets.token_hex(8),
        user="peerpool",
        auth_key="a" + secrets.token_hex(12),
        priv_key="p" + secrets.token_hex(12),
        directory=directory,
    )
    conf = directory / "snmpd.conf"
    conf.write_text(
        f"agentAddress udp:127.0.0.1:{port}\n"
        f"[snmp] persistentDir {persist}\n"
        f"rocommunity {agent.community} 127.0.0.1\n"
        f'createUser {agent.user} SHA "{agent.auth_key}" AES "{agent.priv_key}"\n'
        f"rouser {agent.user} priv\n"
    )
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(persist), "MIBS": ""}
    process = subprocess.Popen(
        [
            binary,
            "-f",
            "-C",
            "-c",
            str(conf),
            "-Lf",
            str(directory / "snmpd.log"),
            "-p",
            str(directory / "pid"),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        try:
            wait_answering(port, agent.community)
        except TimeoutError:
            log = (directory / "snmpd.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"snmpd did not start (exit code {process.poll()}); end of its log:\n{log}")
        yield agent
    finally:
        _stop(process)


# --- snmpsim -----------------------------------------------------------------------------

IF_X = "1.3.6.1.2.1.31.1.1.1"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"


def in_rate(ifindex: int) -> int:
    """Bytes per second the simulated port ``ifindex`` receives (sends twice as much)."""
    return 1000 * ifindex


def initial_in(ifindex: int) -> int:
    return 1_000_000 * ifindex


def snmprec(ports: int) -> str:
    """A device with ``ports`` interfaces (ifIndex 1..ports), rising Counter64 values, sorted by OID."""
    records: list[tuple[tuple[int, ...], str]] = [
        ((1, 3, 6, 1, 2, 1, 1, 3, 0), "67:numeric|rate=100,initial=500")
    ]
    for i in range(1, ports + 1):
        rate = in_rate(i)
        values = {
            1: f"4|et-0/0/{i}",
            6: f"70:numeric|rate={rate},initial={initial_in(i)}",
            7: f"70:numeric|rate={rate // 1000},initial={i * 1000}",
            10: f"70:numeric|rate={2 * rate},initial={2 * initial_in(i)}",
            11: f"70:numeric|rate={2 * rate // 1000},initial={2 * i * 1000}",
            15: "66|10000",
            18: f"4|member port {i}",
        }
        for column, value in values.items():
            records.append(((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, column, i), value))
        records.append(((1, 3, 6, 1, 2, 1, 2, 2, 1, 8, i), "2|1"))
    records.sort()
    return "".join(f"{'.'.join(map(str, oid))}|{value}\n" for oid, value in records)


def ensure_snmpsim_venv() -> Path:
    """The snmpsim virtual environment, created once (under a lock) when missing. Returns its responder.

    A ``.complete`` marker is written only after pip succeeded, so a half-built environment
    (an interrupted run) is removed and built again.
    """
    responder = SNMPSIM_VENV / "bin" / "snmpsim-command-responder"
    marker = SNMPSIM_VENV / ".complete"
    if marker.exists():
        return responder
    SNMPSIM_VENV.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(SNMPSIM_VENV.parent, 0o755)
    with open(SNMPSIM_VENV.parent / f".snmpsim-{SNMPSIM_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return responder
        shutil.rmtree(SNMPSIM_VENV, ignore_errors=True)
        steps = [
            ["/usr/bin/python3", "-m", "venv", str(SNMPSIM_VENV)],
            [
                str(SNMPSIM_VENV / "bin" / "pip"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"snmpsim=={SNMPSIM_VERSION}",
                "pysmi",
                "cryptography",
            ],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
            if done.returncode != 0:
                shutil.rmtree(SNMPSIM_VENV, ignore_errors=True)
                pytest.fail(
                    f"could not build the snmpsim environment ({' '.join(step[:4])}):\n{done.stderr[-2000:]}"
                )
        marker.write_text(f"snmpsim {SNMPSIM_VERSION}\n")
    return responder


@dataclass(frozen=True)
class Snmpsim:
    """A running snmpsim: its port, the v2c community of the data, and the v3 user."""

    port: int
    community: str
    user: str
    auth_key: str
    priv_key: str
    ports: int


@contextmanager
def run_snmpsim(ports: int) -> Iterator[Snmpsim]:
    """Serve one simulated device with ``ports`` interfaces over v2c (community ``sw01``) and v3."""
    responder = ensure_snmpsim_venv()
    work = Path(tempfile.mkdtemp(prefix="peerpool-snmpsim-"))
    try:
        os.chmod(work, 0o755)  # readable by the unprivileged user snmpsim switches to
        data = work / "data"
        cache = work / "cache"
        data.mkdir()
        cache.mkdir()
        records = snmprec(ports)
        for name in ("sw01.snmprec", "self.snmprec"):
            (data / name).write_text(records)
        for path in (data, *data.iterdir()):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        privileged = os.geteuid() == 0
        if privileged:
            shutil.chown(cache, "nobody", "nogroup")
        agent = Snmpsim(
            port=free_udp_port(),
            community="sw01",
            user="peerpool",
            auth_key="a" + secrets.token_hex(12),
            priv_key="p" + secrets.token_hex(12),
            ports=ports,
        )
        command = [
            str(responder),
            f"--data-dir={data}",
            f"--cache-dir={cache}",
            f"--agent-udpv4-endpoint=127.0.0.1:{agent.port}",
            f"--v3-user={agent.user}",
            f"--v3-auth-key={agent.auth_key}",
            "--v3-auth-proto=SHA",
            f"--v3-priv-key={agent.priv_key}",
            "--v3-priv-proto=AES",
            "--log-level=error",
        ]
        if privileged:
            command += ["--process-user=nobody", "--process-group=nogroup"]
        log = open(work / "snmpsim.log", "wb")  # noqa: SIM115 - closed in finally
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            try:
                wait_answering(agent.port, agent.community, timeout_s=60.0)
            except TimeoutError:
                text = (work / "snmpsim.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"snmpsim did not start (exit code {process.poll()}); end of its log:\n{text}")
            yield agent
        finally:
            _stop(process)
            log.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def loopback_traffic(datagrams: int, size: int) -> int:
    """Send ``datagrams`` UDP datagrams of ``size`` payload bytes over lo to ourselves; returns bytes sent."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(2.0)
        target = receiver.getsockname()
        payload = b"x" * size
        for _ in range(datagrams):
            sender.sendto(payload, target)
            receiver.recv(size + 1)
    return datagrams * size


if __name__ == "__main__":  # build the snmpsim environment ahead of a test run
    print(ensure_snmpsim_venv(), file=sys.stderr)
