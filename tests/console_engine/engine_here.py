"""A real Engine object in this process (no processes, no Asterisk), its loop in a thread.

Fast commands run in the loop thread (as the control socket runs them); slow ones in the
calling thread (as a worker thread would).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from arimonitor.config import load_config
from arimonitor.engineproc.app import Engine
from arimonitor.v27 import load_all
from tests.engine.stack import write_config
from tests.support import free_port


class EngineHere:
    def __init__(self, files: dict[str, Path] | None = None, **sections: dict[str, str]) -> None:
        # ipc paths must fit in sun_path: a short directory under /tmp
        self.dir = Path(tempfile.mkdtemp(prefix="arimon-ce-", dir="/tmp"))
        nowhere = SimpleNamespace(url=f"http://127.0.0.1:{free_port()}/ari", user="u", password="p",
                                  app="arimonitor")
        if files:
            sections = {**sections, "files": {k: str(v) for k, v in files.items()}}
        self.ini = write_config(self.dir, nowhere, **sections)
        self.cfg = load_config(self.ini, environ={})
        self._stop = threading.Event()
        ready = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            # Built in the loop thread: the store's SQLite connection belongs to it.
            try:
                engine = box["engine"] = Engine(self.cfg, components=[])
                engine.ctx.load_files(load_all(self.cfg["files.endpoints"], self.cfg["files.clients"],
                                                    self.cfg["files.mqservers"]))
            except BaseException as exc:
                box["error"] = exc
                raise
            finally:
                ready.set()
            engine.loop.run(self._stop.is_set)
            engine.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        if "error" in box:
            raise box["error"]
        self.engine = box["engine"]

    @property
    def ctx(self) -> Any:
        return self.engine.ctx

    def cmd(self, cmd: str, *args: str) -> dict:
        """Dispatch as the control socket would: fast in the loop thread, slow here."""
        registry = self.engine.registry
        message = {"id": uuid.uuid4().hex, "cmd": cmd, "args": list(args), "opts": {}}
        found = registry.find(cmd)
        if found is not None and found.slow:
            return registry.dispatch(message, self.ctx)
        return self.engine.loop.call_and_wait(lambda: registry.dispatch(message, self.ctx))

    def in_loop(self, fn: Any) -> Any:
        return self.engine.loop.call_and_wait(fn)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        shutil.rmtree(self.dir, ignore_errors=True)
