"""Property tests: whatever bytes are in a v2.7 file, a loader returns tables and never raises."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arimonitor.v27 import (
    Loaded,
    Problem,
    Tables,
    diff,
    load_all,
    parse_clients,
    parse_endpoints,
    parse_mqservers,
)

# Text built from the pieces the formats care about, so the fuzzer reaches deep paths
# (sections, keys, metadata) instead of failing at the first character.
PIECES = st.sampled_from([
    "\ufeff", "\r\n", "\n", "\r", "\t", " ", "[", "]", "=", ";", ":", "#", "#include ",
    "#tryinclude ", "Endpoint:", "endpoint:", "CLI:", "cli:", "TYPE:", "PW:", "pw:", "GUID:",
    "host", "port", "queue", "password", "nome", "gravar", "max_chamadas", "ativo", "S", "N",
    "100", "-1", "99999", "ção", "\x00", "\u2028", "\x0c", "[100]", "[principal]", "pjsip/1.pjsip",
])
STRUCTURED = st.lists(st.one_of(PIECES, st.text(max_size=5)), max_size=60).map("".join)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"])
PARSERS = [parse_endpoints, parse_clients, parse_mqservers]


def check(loaded: Loaded) -> None:
    assert isinstance(loaded, Loaded)
    assert all(isinstance(problem, Problem) for problem in loaded.problems)
    for problem in loaded.problems:
        str(problem)  # formatting a problem must not raise either


@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data):
    for parse in PARSERS:
        check(parse(data))


@given(STRUCTURED, ENCODINGS)
def test_random_structured_text_never_raises(text, encoding):
    data = text.encode(encoding, errors="replace")
    for parse in PARSERS:
        check(parse(data))
    check(parse_endpoints(data, known_clients={"100"}))


@given(STRUCTURED)
def test_passwords_never_echoed(text):
    secret = "Zq9SecretValue"
    data = (text + f"\n#include a ; Endpoint:1 CLI:{text[:3]} PW:{secret} {text}\n"
            f"password={secret}\n").encode("utf-8", errors="replace")
    for parse in PARSERS:
        for problem in parse(data).problems:
            assert secret not in problem.text and secret not in problem.reason


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=300), STRUCTURED.map(str.encode)),
                min_size=3, max_size=3))
def test_load_all_always_returns_tables(contents):
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / name for name in ("e.def", "c.DEF", "m.DEF")]
        for path, data in zip(paths, contents, strict=True):
            path.write_bytes(data)
        first = load_all(*paths)
        assert isinstance(first, Tables)
        again = load_all(*paths, previous=first)
        assert isinstance(again, Tables)
        assert not diff(first, again)  # the same bytes load the same tables
