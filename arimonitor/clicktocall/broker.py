"""RabbitMQ plumbing: the topology, connection parameters, and the reconnect loop.

Split as in pika's asynchronous_consumer_example: a *session* owns one connection's lifetime
and returns why it ended; `run_sessions` (the outer loop) walks the servers of
__MQSERVERS__.DEF in file order, backs off (capped, with jitter) when every server failed,
resets the backoff after a session that consumed, and stops only when the Stopper is set.

Server choice ("fall over and come back"): each round starts from the first server and takes
the first that accepts. A session on a later server asks `preferred_is_back()` from time to
time and ends itself (cleanly, in-flight work finished) when the first one answers again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import pika
import pika.exceptions

from arimonitor.backoff import Backoff
from arimonitor.repeats import STARTUP_GRACE, RepeatedFailure

# ---- topology --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topology:
    """Every name this consumer declares, derived from the queue of __MQSERVERS__.DEF."""

    queue: str
    dead_letter_exchange: str
    dead_letter_queue: str
    retry_queue: str
    results_exchange: str

    @classmethod
    def for_queue(cls, queue: str, results_exchange: str) -> Topology:
        return cls(queue=queue, dead_letter_exchange=f"{queue}.dlx",
                   dead_letter_queue=f"{queue}.dead", retry_queue=f"{queue}.retry",
                   results_exchange=results_exchange)

    def names(self) -> tuple[list[str], list[str]]:
        """(queues, exchanges), for tests and cleanup."""
        return ([self.queue, self.dead_letter_queue, self.retry_queue],
                [self.dead_letter_exchange, self.results_exchange])


def declare(channel, topology: Topology) -> None:
    """Declare everything (idempotent). The channel may be replaced: use the returned state.

    The main queue is declared durable *without* arguments, so a queue v2.7 already created
    keeps working (RabbitMQ refuses a re-declaration with other arguments, 406). Dead letters
    are published explicitly with a reason header, so the queue needs no x-dead-letter-*.
    """
    channel.exchange_declare(topology.dead_letter_exchange, exchange_type="direct", durable=True)
    channel.queue_declare(topology.dead_letter_queue, durable=True)
    channel.queue_bind(topology.dead_letter_queue, topology.dead_letter_exchange,
                       routing_key=topology.queue)
    # Retry path: a message waits here for its own `expiration` (retry_delay) and is then
    # dead-lettered by the broker back into the main queue. A per-message TTL (rather than
    # x-message-ttl) lets retry_delay change without re-declaring the queue.
    channel.queue_declare(topology.retry_queue, durable=True, arguments={
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": topology.queue})
    channel.exchange_declare(topology.results_exchange, exchange_type="topic", durable=True)
    channel.queue_declare(topology.queue, durable=True)


def delete_topology(channel, topology: Topology) -> None:
    """Tests only: remove every queue and exchange of `topology`."""
    queues, exchanges = topology.names()
    for queue in queues:
        channel.queue_delete(queue)
    for exchange in exchanges:
        channel.exchange_delete(exchange)


# ---- servers ---------------------------------------------------------------------------------


class Server(Protocol):
    name: str
    host: str
    port: int
    user: str
    password: str
    vhost: str
    queue: str


def describe(server: Server) -> str:
    """For logs and `status`: never the password. The vhost after a "/" as in an AMQP URL
    (`guest@127.0.0.1:5672/lab`); the default vhost "/" shows as the bare "/"."""
    vhost = "" if server.vhost == "/" else server.vhost
    return f"[{server.name}] {server.user}@{server.host}:{server.port}/{vhost}"


def parameters(server: Server, heartbeat: int = 30, timeout: float = 5.0) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        host=server.host, port=server.port, virtual_host=server.vhost,
        credentials=pika.PlainCredentials(server.user, server.password),
        heartbeat=heartbeat, blocked_connection_timeout=60, socket_timeout=timeout,
        stack_timeout=timeout + 5, connection_attempts=1,
        client_properties={"connection_name": f"arimonitor-clicktocall-{server.name}-{os.getpid()}"})


# ---- the outer loop --------------------------------------------------------------------------


@dataclass
class SessionEnd:
    consumed: bool  # the session got as far as consuming: the backoff is reset
    reason: str
    fatal: bool = False  # a restart will not help (bad config): stop the process


class Session(Protocol):
    def run(self, connection: pika.BlockingConnection, server_index: int) -> SessionEnd: ...


class Stopping(Protocol):
    @property
    def stopping(self) -> bool: ...

    def wait(self, seconds: float) -> bool: ...


Connect = Callable[[Server], pika.BlockingConnection]


def default_connect(server: Server) -> pika.BlockingConnection:
    return pika.BlockingConnection(parameters(server))


def run_sessions(servers: Sequence[Server], session: Session, stopper: Stopping,
                 log: logging.Logger, backoff: Backoff | None = None,
                 connect: Connect = default_connect) -> SessionEnd:
    """Connect and run sessions until the stopper is set (or a fatal end); returns the last end."""
    if not servers:
        return SessionEnd(False, "no RabbitMQ server in __MQSERVERS__.DEF", fatal=True)
    backoff = backoff or Backoff()
    last = SessionEnd(False, "not started")
    # a broker outage is one episode: logged once, then counted (arimonitor/repeats.py)
    unanswered = RepeatedFailure(log, "connecting to RabbitMQ", grace=STARTUP_GRACE)
    while not stopper.stopping:
        why: list[str] = []
        connection, index = _first_that_answers(servers, stopper, log, connect, why)
        if connection is None:
            delay = backoff.next()
            unanswered.failed(f"no server in __MQSERVERS__.DEF answered ({'; '.join(why)}); "
                              f"next round in {delay:.1f} s")
            stopper.wait(delay)
            continue
        unanswered.succeeded()
        try:
            last = session.run(connection, index)
        except pika.exceptions.AMQPError as exc:
            # Connection closed by the broker (rabbitmqctl close_connection, a restart),
            # heartbeat lost, channel closed: all worth a reconnect.
            last = SessionEnd(getattr(session, "consumed", False), f"{type(exc).__name__}: {exc}")
        finally:
            _close_quietly(connection)
        log.log(logging.INFO if stopper.stopping else logging.WARNING,  # a clean stop is no news
                "RabbitMQ session on %s ended: %s", describe(servers[index]), last.reason)
        if last.fatal:
            return last
        if last.consumed:
            backoff.reset()
        if not stopper.stopping and not last.consumed:
            stopper.wait(backoff.next())
    return last


def _first_that_answers(servers: Sequence[Server], stopper: Stopping, log: logging.Logger,
                        connect: Connect, why: list[str] | None = None) -> tuple[pika.BlockingConnection | None, int]:
    """The first server that accepts a connection; each refusal's reason goes to `why` (logged
    by the caller once per outage, not once per server and round)."""
    why = [] if why is None else why
    for index, server in enumerate(servers):
        if stopper.stopping:
            break
        try:
            connection = connect(server)
        except pika.exceptions.ProbableAuthenticationError:
            why.append(f"{describe(server)} refused the user or password")
            continue
        except (pika.exceptions.AMQPError, OSError) as exc:
            why.append(f"{describe(server)}: {type(exc).__name__}")
            continue
        log.info("connected to RabbitMQ %s", describe(server))
        return connection, index
    return None, -1


def preferred_is_back(servers: Sequence[Server], connect: Connect = default_connect) -> bool:
    """Does the first server accept a connection again? (Asked by a session on a later one.)"""
    try:
        _close_quietly(connect(servers[0]))
        return True
    except (pika.exceptions.AMQPError, OSError):
        return False


def _close_quietly(connection: pika.BlockingConnection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except (pika.exceptions.AMQPError, OSError):
        pass
