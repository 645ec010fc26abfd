"""Every pattern that guards input, fuzzed with trailing and embedded control characters.

`re.match` with `$` lets a trailing "\\n" through (a request_id ending in a newline once made a
channel id with a newline in it). Each guard is fed a valid value with control characters
(and non-ASCII digits) put at the end, the start and inside: none may pass.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from arimonitor import datatypes
from arimonitor.clicktocall import reasons
from arimonitor.clicktocall.request import parse_channel_id, parse_request
from arimonitor.engine.calls import c2c_leg_a
from arimonitor.transcode.rescan import tags_for

CONTROL = st.sampled_from(["\n", "\r", "\r\n", "\t", "\x00", "\x0b", "\x0c", "\x1b", "\x7f",
                           "\u2028", "\u0085", " \n"])
WHERE = st.sampled_from(["end", "start", "inside"])


def spoil(value: str, bad: str, where: str) -> str:
    if where == "end":
        return value + bad
    if where == "start":
        return bad + value
    middle = max(1, len(value) // 2)
    return value[:middle] + bad + value[middle:]


GOOD = {"request_id": "req-1.a_B", "client": "101", "origin": "1013010",
        "destination": "1123000"}


def _parse(**fields):
    return parse_request(json.dumps({**GOOD, **fields}).encode())


def test_the_good_request_passes():
    assert _parse().request_id == "req-1.a_B"


@settings(max_examples=200, deadline=None)
@given(bad=CONTROL, where=WHERE)
def test_request_id_with_control_characters_is_refused(bad, where):
    refusal = _parse(request_id=spoil(GOOD["request_id"], bad, where))
    assert getattr(refusal, "reason", None) == reasons.BAD_REQUEST_ID


@settings(max_examples=200, deadline=None)
@given(bad=CONTROL, where=st.just("inside"), field=st.sampled_from(["client", "origin"]))
def test_identifiers_with_embedded_control_characters_are_refused(bad, where, field):
    refusal = _parse(**{field: spoil(GOOD[field], bad, where)})
    assert getattr(refusal, "reason", None) == reasons.MALFORMED


@settings(max_examples=200, deadline=None)
@given(bad=CONTROL, where=WHERE, value=st.sampled_from(["1123000", "+5511999990000", "000"]))
def test_destination_never_keeps_a_control_character(bad, where, value):
    parsed = _parse(destination=spoil(value, bad, where))
    # Blanks around the value are trimmed (a web form's stray newline); nothing else passes.
    if hasattr(parsed, "destination"):
        assert parsed.destination == value
    else:
        assert parsed.reason == reasons.BAD_DESTINATION


@settings(max_examples=100, deadline=None)
@given(bad=CONTROL, where=WHERE)
def test_variable_names_with_control_characters_are_refused(bad, where):
    refusal = _parse(variables={spoil("ORDER", bad, where): "1"})
    assert getattr(refusal, "reason", None) == reasons.BAD_VARIABLES


@settings(max_examples=100, deadline=None)
@given(bad=CONTROL, where=WHERE)
def test_caller_id_with_control_characters_is_refused(bad, where):
    refusal = _parse(caller_id=spoil("Portaria <100>", bad, where))
    if bad == " \n" and where != "inside":
        return
    assert getattr(refusal, "reason", None) == reasons.BAD_CALLER_ID


@settings(max_examples=200, deadline=None)
@given(bad=CONTROL, where=WHERE, leg=st.sampled_from(["a", "b"]))
def test_channel_ids_with_control_characters_are_not_ours(bad, where, leg):
    good = f"c2c-req-1-{leg}"
    assert parse_channel_id(good) is not None
    assert parse_channel_id(spoil(good, bad, where)) is None
    assert c2c_leg_a("c2c-req-1-b") == "c2c-req-1-a"
    if where != "inside":
        assert c2c_leg_a(spoil("c2c-req-1-b", bad, where)) is None


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet="0123456789٠١٢\n\t ", min_size=1, max_size=6))
def test_non_ascii_digits_are_no_seconds_or_sizes(text):
    for convert in (datatypes.seconds, datatypes.byte_size):
        try:
            convert(text + "\u0663")  # ARABIC-INDIC DIGIT THREE
        except ValueError:
            continue
        raise AssertionError(f"{convert.__name__} accepted a non-ASCII digit in {text!r}")


def test_a_recording_date_folder_must_be_a_plain_date():
    assert tags_for("101/2026-01-02/x.wav", "", 0.0)["date"] == "2026-01-02"
    for folder in ("2026-01-02\n", "\u0662026-01-02", "2026-01-02\r"):
        assert tags_for(f"101/{folder}/x.wav", "", 0.0)["client"] == ""
