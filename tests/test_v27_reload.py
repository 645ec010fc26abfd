"""Reload: load_all builds a new snapshot, diff() says what changed, never revealing values."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from arimonitor.v27 import ERROR, Changes, Tables, diff, load_all
from tests.support import FIXTURES

NAMES = ("endpoints_pjsip.def", "__CLIENTES__.DEF", "__MQSERVERS__.DEF")


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    for name in NAMES:
        shutil.copyfile(FIXTURES / "v27" / name, tmp_path / name)
    return tmp_path


def load(folder: Path, previous: Tables | None = None) -> Tables:
    return load_all(*(folder / name for name in NAMES), previous=previous)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_shipped_samples_are_the_fixtures():
    # What the checkout ships (git's copy), not the operator's configured conf/ files.
    root = Path(__file__).resolve().parent.parent
    for name in NAMES:
        shipped = subprocess.run(["git", "-C", str(root), "show", f"HEAD:conf/{name}"], capture_output=True,
                                 check=False)
        if shipped.returncode != 0:  # not a git checkout: the files as they are
            shipped.stdout = (root / "conf" / name).read_bytes()
        assert shipped.stdout == (FIXTURES / "v27" / name).read_bytes()


def test_same_files_no_changes(conf):
    changes = diff(load(conf), load(conf))
    assert not changes
    assert changes.summary() == "no changes"


def test_added_removed_changed(conf):
    old = load(conf)
    endpoints = conf / "endpoints_pjsip.def"
    edit(endpoints, "#include pjsip/1003000.pjsip ; Endpoint:1003000 CLI:100 TYPE:condominio "
                    "PW:hJdNf2YMjM GUID:8494ae0a-0e48-492d-9aa9-4b5b905180d0\n", "")
    edit(endpoints, "PW:P4XgreHciS", "PW:NewSecret1")
    edit(endpoints, "Endpoint:1003020 CLI:100 TYPE:apartamento",
         "Endpoint:1003020 CLI:101 TYPE:portaria")
    with endpoints.open("a", encoding="utf-8") as file:
        file.write("#include pjsip/1209999.pjsip ; Endpoint:1209999 CLI:120 TYPE:x PW:y\n")
    edit(conf / "__CLIENTES__.DEF", "nome=Solar Bragança\n", "nome=Solar Bragança\nobs=novo\n")
    edit(conf / "__CLIENTES__.DEF", "[101]\nnome=Residencial São João\ngravar=S",
         "[101]\nnome=Residencial São João\ngravar=N")
    new = load(conf, previous=old)
    changes = diff(old, new)

    assert changes.endpoints.added == ("1209999",)
    assert changes.endpoints.removed == ("1003000",)
    # Every line below the removed one moved up; moving is not a change.
    assert dict(changes.endpoints.changed) == {
        "1003010": ("password",), "1003020": ("client", "type")}
    assert dict(changes.clients.changed) == {"101": ("record",), "120": ("extra.obs",)}
    assert not changes.mqservers and not changes.mqservers_reordered
    assert changes.summary() == "endpoints +1 -1 ~2; clients ~2"


def test_changed_password_is_not_revealed(conf):
    old = load(conf)
    edit(conf / "endpoints_pjsip.def", "PW:P4XgreHciS", "PW:NewSecret1")
    edit(conf / "__MQSERVERS__.DEF", "password=guest\nvhost=/\nqueue=clicktocall\n\n[reserva]",
         "password=Rabbit99\nvhost=/\nqueue=clicktocall\n\n[reserva]")
    changes = diff(old, load(conf))
    assert changes.endpoints.changed["1003010"] == ("password",)
    assert changes.mqservers.changed["principal"] == ("password",)
    shown = repr(changes) + changes.summary()
    for secret in ("P4XgreHciS", "NewSecret1", "Rabbit99", "guest"):
        assert secret not in shown


def test_mqservers_reordered(conf):
    old = load(conf)
    path = conf / "__MQSERVERS__.DEF"
    text = path.read_text(encoding="utf-8")
    head, rest = text.split("[principal]")
    principal, reserva = rest.split("[reserva]")
    path.write_text(head + "[reserva]" + reserva.rstrip("\n") + "\n\n[principal]" + principal,
                    encoding="utf-8")
    changes = diff(old, load(conf))
    assert changes.mqservers_reordered
    assert not changes.mqservers  # same servers, same settings
    assert [s.name for s in load(conf).mqservers] == ["reserva", "principal"]


def test_missing_file_on_first_load_gives_empty_table(conf):
    (conf / "__CLIENTES__.DEF").unlink()
    tables = load(conf)
    assert len(tables.clients) == 0
    assert tables.unreadable == (str(conf / "__CLIENTES__.DEF"),)
    assert len(tables.endpoints) == 70  # no client list: no orphan warnings for all 70
    assert [(Path(p.file).name, p.line, p.level) for p in tables.problems] == [
        ("__CLIENTES__.DEF", 0, ERROR)]


def test_missing_file_on_reload_keeps_previous_table(conf):
    old = load(conf)
    (conf / "endpoints_pjsip.def").unlink()
    new = load(conf, previous=old)
    assert new.endpoints is old.endpoints
    assert not diff(old, new)
    assert old.unreadable == () and len(new.unreadable) == 1
    (problem,) = new.problems
    assert problem.reason.endswith("keeping the table loaded before")


def test_snapshot_is_immutable(conf):
    tables = load(conf)
    with pytest.raises(AttributeError):
        tables.endpoints = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        tables.endpoints["x"] = None  # type: ignore[index]


def test_changes_is_falsy_when_empty():
    assert not Changes()
