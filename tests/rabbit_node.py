"""A private RabbitMQ node for one test module, which the test may stop and start at will.

The broker on 127.0.0.1:5672 is shared by every engineer and test run on the machine and is
never stopped. A test that needs a real broker restart (`rabbitmqctl stop_app` / `start_app`,
or the whole node down and up) starts its own node here: its own node name
(`arimonitor-<hex>@localhost`), AMQP and distribution ports, Erlang cookie (HOME in a temp
dir, so rabbitmqctl run from here cannot even talk to the shared node), Mnesia, logs and pid
file in that temp dir, and no plugin. guest may log in from loopback (RabbitMQ's default).

    with private_node(tmp_path) as node:          # skips when rabbitmq-server is not installed
        pika.ConnectionParameters("127.0.0.1", node.port)
        node.stop_app(); node.start_app()         # the broker restart
        node.kill(); node.start()                 # the whole node down and up

The node is killed (its process group) when the block ends, also on failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest

from tests.support import free_port

NODE_PREFIX = "arimonitor-"  # every node made here; rabbitmqctl refuses any other name
START_TIMEOUT = 60.0


def _scripts() -> Path | None:
    """The folder of the real rabbitmq-server and rabbitmqctl scripts. Debian's
    /usr/sbin/rabbitmq-server is a wrapper that switches to the rabbitmq user and logs to
    /var/log/rabbitmq: the scripts behind it take our environment as it is."""
    found = shutil.which("rabbitmq-server")
    for folder in (Path("/usr/lib/rabbitmq/bin"), Path(found).parent if found else None):
        if folder and (folder / "rabbitmq-server").exists() and (folder / "rabbitmqctl").exists():
            return folder
    return None


class RabbitNode:
    def __init__(self, base: Path, scripts: Path) -> None:
        self.base = base
        self.scripts = scripts
        self.name = f"{NODE_PREFIX}{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.proc: subprocess.Popen | None = None
        (base / "enabled_plugins").write_text("[].\n")
        # our own config file, so /etc/rabbitmq's (listeners on 5672) is never read
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (base / "rabbitmq-env.conf").write_text("")
        self.env = {
            **os.environ, "HOME": str(base), "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port), "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"), "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "node.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
        }

    # ---- the node -----------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the node and wait until it accepts an AMQP connection as guest."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        out = open(self.base / "node.out", "ab")  # noqa: SIM115 (the node keeps it)
        self.proc = subprocess.Popen([str(self.scripts / "rabbitmq-server")], env=self.env,
                                     cwd=self.base, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.wait_accepting(timeout)

    def wait_accepting(self, timeout: float = START_TIMEOUT) -> float:
        """Seconds until an AMQP login works; fails with the node's output if it never does."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"RabbitMQ node {self.name} exited ({self.proc.returncode}):\n"
                            f"{self.output()}")
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                pika.BlockingConnection(self.parameters(timeout=2)).close()
                return time.monotonic() - started
            time.sleep(0.2)
        pytest.fail(f"RabbitMQ node {self.name} not accepting after {timeout:.0f} s:\n{self.output()}")

    def kill(self) -> None:
        """The whole node down at once (SIGKILL to its process group): a crash."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    # ---- rabbitmqctl --------------------------------------------------------------------------

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        assert self.name.startswith(NODE_PREFIX)  # never the shared node
        done = subprocess.run([str(self.scripts / "rabbitmqctl"), "-n", self.name, *args],
                              env=self.env, cwd=self.base, capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert done.returncode == 0, f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def stop_app(self) -> None:
        """The RabbitMQ application stops (every connection dropped); the Erlang node stays."""
        self.ctl("stop_app")

    def start_app(self) -> float:
        """Seconds until the broker accepts connections again."""
        started = time.monotonic()
        self.ctl("start_app")
        return time.monotonic() - started + self.wait_accepting()

    # ---- for clients --------------------------------------------------------------------------

    def parameters(self, timeout: float = 5.0) -> pika.ConnectionParameters:
        return pika.ConnectionParameters("127.0.0.1", self.port, socket_timeout=timeout,
                                         blocked_connection_timeout=timeout,
                                         stack_timeout=timeout + 2, connection_attempts=1)

    def output(self, lines: int = 30) -> str:
        path = self.base / "node.out"
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return "\n".join(text)


@contextlib.contextmanager
def private_node() -> Iterator[RabbitNode]:
    """A started node, killed at the end whatever happens. Skips (saying why) where RabbitMQ
    is not installed."""
    scripts = _scripts()
    if scripts is None:
        pytest.skip("no rabbitmq-server on this machine: the private broker cannot start")
    # A short path: Erlang and the node's sockets dislike long ones (pytest's tmp_path is long).
    base = Path(tempfile.mkdtemp(prefix="arimq-"))
    base.chmod(0o700)
    node = RabbitNode(base, scripts)
    try:
        node.start()
        yield node
    finally:
        node.kill()
        shutil.rmtree(base, ignore_errors=True)
