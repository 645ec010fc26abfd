"""endpoints_pjsip.def: golden counts on both fixture sets and one test per quirk."""

from __future__ import annotations

from pathlib import Path

import pytest

from arimonitor.v27 import ERROR, WARNING, load_all, load_endpoints, parse_endpoints
from tests.support import FIXTURES

V27 = FIXTURES / "v27"
QUIRKS = FIXTURES / "v27-quirks"


def tables(folder: Path):
    return load_all(folder / "endpoints_pjsip.def", folder / "__CLIENTES__.DEF",
                    folder / "__MQSERVERS__.DEF")


def test_v27_counts():
    loaded = tables(V27)
    assert len(loaded.endpoints) == 70
    assert len(loaded.endpoints_of("100")) == 6
    assert len(loaded.endpoints_of("101")) == 12
    assert {client: len(items) for client, items in loaded.by_client.items()} == {
        "100": 6, "101": 12, "102": 11, "105": 11, "110": 10, "112": 10, "120": 10}
    assert loaded.problems == ()


def test_v27_fields():
    endpoints = tables(V27).endpoints
    first = endpoints["1003000"]
    assert (first.client, first.type, first.password, first.guid, first.file, first.line) == (
        "100", "condominio", "hJdNf2YMjM", "8494ae0a-0e48-492d-9aa9-4b5b905180d0",
        "pjsip/1003000.pjsip", 3)
    assert endpoints["1003040"].guid is None
    assert endpoints["1003040"].type == "portaria"
    assert list(endpoints)[:3] == ["1003000", "1003010", "1003020"]  # file order kept


def test_password_is_not_in_repr():
    endpoint = tables(V27).endpoints["1003000"]
    assert "hJdNf2YMjM" not in repr(endpoint)


def test_quirks_problems_exactly():
    problems = [(Path(p.file).name, p.line, p.level, p.reason) for p in tables(QUIRKS).problems
                if p.file.endswith(".def")]
    assert problems == [
        ("endpoints_pjsip.def", 4, WARNING, "#include without metadata; not monitored"),
        ("endpoints_pjsip.def", 8, ERROR, "Endpoint has no value"),
        ("endpoints_pjsip.def", 83, ERROR, "duplicate endpoint 1003020 (first at line 7); ignored"),
        ("endpoints_pjsip.def", 84, WARNING, "client 404 is not in __CLIENTES__.DEF"),
        ("endpoints_pjsip.def", 85, ERROR, "not an #include line"),
    ]


def test_quirks_every_good_line_loads():
    loaded = tables(QUIRKS)
    # Counted by hand from `cat -A`: 6+12+11+11+10+10+10 well-formed lines, plus the orphan.
    assert len(loaded.endpoints) == 71
    assert {client: len(items) for client, items in loaded.by_client.items()} == {
        "100": 6, "101": 12, "102": 11, "105": 11, "110": 10, "112": 10, "120": 10, "404": 1}
    assert "9999999" not in loaded.endpoints  # `; #include` is commented out, not a problem
    assert "" not in loaded.endpoints


def test_quirks_bom_crlf_tabs_lowercase():
    endpoints = tables(QUIRKS).endpoints
    tabs = endpoints["1003000"]  # first line after the BOM comment, tab-separated, CRLF
    assert (tabs.client, tabs.password, tabs.guid) == (
        "100", "WKbtDE6kGZ", "81e74ef5-e8e2-4d94-8ed9-04759531985d")
    lower = endpoints["1203045"]  # tabs and lower-case keys together
    assert (lower.client, lower.type, lower.password) == ("120", "portaria",
                                                          "cEtCgmkWLd")
    assert not any(e.password and e.password.endswith("\r") for e in endpoints.values())
    assert not any(e.guid and e.guid.endswith("\r") for e in endpoints.values())


def test_duplicate_keeps_the_first():
    assert tables(QUIRKS).endpoints["1003020"].password == "UcKkHnVm6v"


def test_orphan_is_loaded():
    orphan = tables(QUIRKS).endpoints["9990001"]
    assert orphan.client == "404"


def test_problem_text_masks_passwords():
    problems = tables(QUIRKS).problems
    assert all("dupe" not in p.text and "orphan" not in p.text for p in problems)
    duplicate = next(p for p in problems if p.line == 83)
    assert duplicate.text.endswith("PW:***")


def test_each_line_reported_at_most_once():
    data = b"#include a.pjsip ; Endpoint:1 CLI:9 PW:x PW:y\n"
    loaded = parse_endpoints(data, known_clients=set())
    assert [(p.line, p.level) for p in loaded.problems] == [(1, WARNING)]
    reason = loaded.problems[0].reason
    assert "given twice" in reason and "no TYPE" in reason and "client 9" in reason
    assert "x" not in loaded.problems[0].text.split("PW:")[1]
    assert loaded.table["1"].password == "x"


@pytest.mark.parametrize(("line", "reason"), [
    (b"#include a.pjsip ; CLI:1 PW:x", "no Endpoint in the metadata"),
    (b"#include a.pjsip ; Endpoint:1 PW:x", "no CLI in the metadata"),
    (b"#include a.pjsip ; Endpoint:1 CLI: PW:x", "CLI has no value"),
    (b"#includea.pjsip ; Endpoint:1 CLI:1", "not an #include line (no blank after #include)"),
    (b"#include ; Endpoint:1 CLI:1", "#include without a file name"),
    (b"# just a note", "not an #include line"),
])
def test_bad_lines(line, reason):
    loaded = parse_endpoints(b"#include ok.pjsip ; Endpoint:7 CLI:1 TYPE:x PW:y\n" + line)
    assert [(p.line, p.level, p.reason) for p in loaded.problems] == [(2, ERROR, reason)]
    assert list(loaded.table) == ["7"]


def test_missing_pw_and_type_load_with_a_warning():
    loaded = parse_endpoints(b"#include a.pjsip ; Endpoint:5 CLI:1 GUID:")
    endpoint = loaded.table["5"]
    assert (endpoint.type, endpoint.password, endpoint.guid) == (None, None, None)
    assert [p.reason for p in loaded.problems] == ["no TYPE; no PW; GUID has no value"]


def test_tryinclude_and_free_text_after_metadata():
    loaded = parse_endpoints(b"#tryinclude b.pjsip ; Endpoint:8 CLI:1 TYPE:x PW:y bloco B")
    assert loaded.problems == ()
    assert loaded.table["8"].file == "b.pjsip"


def test_latin1_file_loads_with_a_warning():
    data = "; comentário\n#include a.pjsip ; Endpoint:1 CLI:1 TYPE:condomínio PW:p\n"
    loaded = parse_endpoints(data.encode("latin-1"))
    assert loaded.table["1"].type == "condomínio"
    assert [(p.line, p.level) for p in loaded.problems] == [(1, WARNING)]
    assert "not valid UTF-8" in loaded.problems[0].reason


def test_missing_file_is_a_problem_not_a_crash(tmp_path):
    loaded = load_endpoints(tmp_path / "nope.def")
    assert not loaded.readable
    assert len(loaded.table) == 0
    assert [(p.line, p.level) for p in loaded.problems] == [(0, ERROR)]
    assert "cannot read file" in loaded.problems[0].reason


def test_ten_thousand_endpoints_load():
    # speed is measured in bench/bench_v27.py, not asserted here (a shared, noisy machine)
    data = "\n".join(f"#include pjsip/{i}.pjsip ; Endpoint:{i} CLI:{i % 300} TYPE:condominio "
                     f"PW:abcdefghij GUID:8494ae0a-0e48-492d-9aa9-4b5b905180d0"
                     for i in range(1_000_000, 1_010_000)).encode()
    loaded = parse_endpoints(data, known_clients={str(i) for i in range(300)})
    assert len(loaded.table) == 10_000 and loaded.problems == ()


def test_block_comments_are_skipped_like_asterisk_does():
    data = (b"#include a.pjsip ; Endpoint:1 CLI:1 TYPE:x PW:y\n"
            b";-- old ones\n#include b.pjsip ; Endpoint:2 CLI:1 TYPE:x PW:y\n--;\n"
            b";-- one-line block --;\n"
            b"#include c.pjsip ; Endpoint:3 CLI:1 TYPE:x PW:y\n"
            b";--\n#include d.pjsip ; Endpoint:4 CLI:1 TYPE:x PW:y\n")
    loaded = parse_endpoints(data)
    assert list(loaded.table) == ["1", "3"]
    assert [(p.line, p.level) for p in loaded.problems] == [(7, WARNING)]
