"""Feed a captured ARI stream through the engine's handlers, with no process and no socket."""

from __future__ import annotations

from pathlib import Path

from arimonitor.engine import calls as C
from arimonitor.engine.handlers import Handlers
from arimonitor.engine.state import State, load_files
from arimonitor.v27.tables import load_all
from tests.engine.fakes import RecordingEffects
from tests.support import ARI, FIXTURES

TRACES = ARI / "traces"
V27 = FIXTURES / "v27"


def fixture_tables():
    return load_all(V27 / "endpoints_pjsip.def", V27 / "__CLIENTES__.DEF", V27 / "__MQSERVERS__.DEF")


def new_engine_state(with_files: bool = True) -> tuple[State, RecordingEffects, Handlers]:
    state = State("asterisk1")
    if with_files:
        load_files(state, fixture_tables())
    fx = RecordingEffects()
    return state, fx, Handlers(state, fx)


def replay(handlers: Handlers, trace: str | Path) -> int:
    """Apply every line of a trace; time is the event's own timestamp. Returns the count."""
    import json

    path = TRACES / trace if not Path(trace).is_absolute() else Path(trace)
    n = 0
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        t = C.parse_ari_time(json.loads(line).get("timestamp"), 0.0)
        handlers.apply(line, t, where=f"{path.name}:{n + 1}")
        n += 1
    return n
