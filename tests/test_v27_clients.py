"""__CLIENTES__.DEF: golden fields on both fixture sets and the INI quirks."""

from __future__ import annotations

from pathlib import Path

from arimonitor.v27 import ERROR, load_clients, parse_clients
from tests.support import FIXTURES

V27 = FIXTURES / "v27" / "__CLIENTES__.DEF"
QUIRKS = FIXTURES / "v27-quirks" / "__CLIENTES__.DEF"


def test_v27_clients():
    loaded = load_clients(V27)
    assert loaded.problems == ()
    assert list(loaded.table) == ["100", "101", "102", "105", "110", "112", "120"]
    first = loaded.table["100"]
    assert (first.name, first.record, first.max_calls, first.active, first.line) == (
        "Condomínio Jardim das Flores", False, 16, True, 3)
    assert loaded.table["101"].record is True
    assert loaded.table["101"].max_calls == 8


def test_accents_decoded():
    names = {cid: client.name for cid, client in load_clients(V27).table.items()}
    assert names["101"] == "Residencial São João"
    assert names["102"] == "Edifício Açores"
    assert names["105"] == "Torre Ipê Amarelo"
    assert names["110"] == "Vila Conceição"
    assert names["112"] == "Parque das Águas"
    assert names["120"] == "Solar Bragança"


def test_quirks_problems_exactly():
    loaded = load_clients(QUIRKS)
    assert [(Path(p.file).name, p.line, p.level, p.reason) for p in loaded.problems] == [
        ("__CLIENTES__.DEF", 3, ERROR, "line before any [section]"),
        ("__CLIENTES__.DEF", 48, ERROR,
         "broken section header (no closing ']'); lines up to the next section are ignored"),
        ("__CLIENTES__.DEF", 49, ERROR, "line under the broken section header at line 48"),
    ]
    assert loaded.problems[2].text == "nome=seção quebrada"


def test_quirks_good_sections_load():
    table = load_clients(QUIRKS).table
    assert list(table) == ["100", "101", "102", "105", "110", "112", "120"]
    assert "999" not in table
    # indented key, spaces around '=', a value containing '='
    assert dict(table["100"].extra) == {"observacao": "texto com = sinal de igual"}
    assert dict(table["110"].extra) == {"observacao": "texto com = sinal de igual"}
    assert table["102"].record is False and table["102"].max_calls == 2


def test_extra_is_read_only():
    client = load_clients(QUIRKS).table["100"]
    try:
        client.extra["x"] = "y"  # type: ignore[index]
    except TypeError:
        pass
    else:
        raise AssertionError("Client.extra must be read-only")


def test_bad_values_fall_back_and_are_reported():
    data = b"[1]\nnome=A\ngravar=talvez\nmax_chamadas=muitas\nativo=?\n"
    loaded = parse_clients(data)
    client = loaded.table["1"]
    assert (client.record, client.max_calls, client.active) == (None, None, True)
    assert [(p.line, p.level) for p in loaded.problems] == [(3, ERROR), (4, ERROR), (5, ERROR)]
    assert "gravar" in loaded.problems[0].reason


def test_ini_edge_cases():
    data = (b"\xef\xbb\xbf[1] ; comment\r\nNOME=Um\r\nnome=Dois\r\nsem igual\r\n=x\r\n"
            b"[]\r\nk=v\r\n[1]\r\nnome=Tres\r\n[2]junk\r\n[3]\r\nativo=n\r\nsenha=segredo\r\n")
    loaded = parse_clients(data)
    assert list(loaded.table) == ["1", "3"]
    assert loaded.table["1"].name == "Um"  # first key wins; keys are case-insensitive
    assert loaded.table["3"].active is False
    assert [p.line for p in loaded.problems] == [3, 4, 5, 6, 7, 8, 9, 10]
    assert all("segredo" not in p.text for p in loaded.problems)


def test_missing_nome_and_ativo():
    client = parse_clients(b"[7]\n").table["7"]
    assert (client.name, client.record, client.max_calls, client.active) == ("", None, None, True)
