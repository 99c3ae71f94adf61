"""``runservice`` with one process that ignores SIGINT and SIGTERM and has started a child
that ignores them too: what a process stuck in a signal handler looks like from outside.

``python -m notifications.tests.stubborn_service STOP_TIMEOUT`` (the tests run it).
"""

from __future__ import annotations

import os
import sys

IGNORE = "import signal, time; signal.signal(2, signal.SIG_IGN); signal.signal(15, signal.SIG_IGN)"
GRANDCHILD = f"{IGNORE}; print('grandchild', flush=True); time.sleep(600)"
STUBBORN = (
    f"{IGNORE}; import subprocess, sys; "
    f"child = subprocess.Popen([sys.executable, '-c', {GRANDCHILD!r}]); "
    "import os; print('stubborn', os.getpid(), child.pid, flush=True); time.sleep(600)"
)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifications.tests.settings")
    import django

    django.setup()
    from notifications.management.commands.runservice import Command

    class Stubborn(Command):
        def commands(self, host: str) -> dict[str, list[str]]:
            return {"web": [sys.executable, "-c", STUBBORN]}

    Stubborn().run_from_argv(["manage.py", "runservice", "--stop-timeout", sys.argv[1]])


if __name__ == "__main__":
    main()
