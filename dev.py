#!/usr/bin/env python3
"""The one command to run the system locally, with nothing but Python installed.

    python3 dev.py up --demo        # Kafka (Tansu), SQLite, SNS emulator, the four services
    python3 dev.py sms              # the SMS the emulator received
    python3 dev.py reply +12025550143 yes

It installs uv if needed, syncs the locked workspace, then runs `reminder_devstack`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    sys.stderr.write("installing uv with pip...\n")
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    if subprocess.run([*pip, "uv"], check=False).returncode != 0:
        # an "externally managed" system Python (PEP 668): into the user site
        subprocess.run([*pip, "--user", "--break-system-packages", "uv"], check=True)
    # pip may put the binary somewhere not on PATH: the package knows where it is
    where = "import uv; print(uv.find_uv_bin())"
    return subprocess.check_output([sys.executable, "-c", where], text=True).strip()


def main() -> int:
    uv = _uv()
    subprocess.run([uv, "sync", "--frozen", "--quiet"], cwd=ROOT, check=True)
    os.chdir(ROOT)
    command = [uv, "run", "--frozen", "--quiet", "python", "-m", "reminder_devstack"]
    os.execv(uv, [*command, *sys.argv[1:]])  # noqa: S606 - replaces this process with uv
    return 0


if __name__ == "__main__":
    sys.exit(main())
