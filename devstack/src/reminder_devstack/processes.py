"""Child processes with their output prefixed by name, stoppable gracefully or with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import TextIO

_COLOURS = ("36", "33", "35", "32", "34", "31", "37")


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        colour_index: int = 0,
        output: TextIO | None = None,
        log_file: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.output = output if output is not None else sys.stdout
        self.log_file = log_file
        self._colour = _COLOURS[colour_index % len(_COLOURS)]
        self._process: subprocess.Popen[str] | None = None
        self._pump: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            self.argv,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # Ctrl-C reaches the runner, which stops children in order
        )
        self._pump = threading.Thread(target=self._copy_output, daemon=True)
        self._pump.start()

    def _copy_output(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        use_colour = self.output.isatty()
        prefix = (
            f"\033[{self._colour}m{self.name:>9} |\033[0m " if use_colour else f"{self.name:>9} | "
        )
        sink = open(self.log_file, "a", encoding="utf-8") if self.log_file else None  # noqa: SIM115
        try:
            for line in self._process.stdout:
                self.output.write(prefix + line)
                if sink is not None:
                    sink.write(line)
                    sink.flush()
        finally:
            if sink is not None:
                sink.close()

    def stop(self, timeout: float = 25.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit within `timeout`."""
        if self._process is None:
            return
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        if self._pump is not None:
            self._pump.join(timeout=2)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash would."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()
