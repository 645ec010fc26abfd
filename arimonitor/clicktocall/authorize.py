"""Who may publish what: a request is bound to its publisher and to its client's rights.

RabbitMQ checks the AMQP `user_id` property against the user of the connection that published
it (a message claiming another user is refused by the broker), so `user_id` says who sent a
request. Four settings, each a list `name: values; name: values` (`*` = any):

- `clicktocall.publishers`  user -> the clients it may act for (`webapp1: 101 102; ops: *`).
  Empty (the default, v2.7's behaviour): not checked, and the consumer says at start that any
  publisher may act for any client. Set: a request with no `user_id`, or for a client not in
  its user's list, is refused `not_authorized`.
- `clicktocall.trunk_numbers`  client -> a pattern of the numbers it may dial through the trunk
  (`101: 0800[0-9]{7}|[2-9][0-9]{7}`). Default: none, so a number destination is refused.
- `clicktocall.cross_client`  the clients whose requests may ring another client's endpoint
  (`101 120`, or `*`). Default: none.
- `clicktocall.free_caller_id`  the clients that may set any caller ID. Others may set digits
  (`+` first allowed), their own name (`nome`), or both as `"name" <digits>` / `name <digits>`.

Every pattern is used with fullmatch; a bad one stops start-up with the key named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from arimonitor.clicktocall import reasons
from arimonitor.clicktocall.request import ClickToCallRequest, Refusal

ANY = "*"
_DIGITS = re.compile(r"\+?[0-9]{1,20}")
_NAME_AND_NUMBER = re.compile(r'"?(?P<name>[^"<>]*?)"?\s*<(?P<number>\+?[0-9]{1,20})>')


def parse_map(text: str, key: str) -> dict[str, str]:
    """`name: value; name: value` -> {name: value}; ValueError naming `key` on a bad entry."""
    out: dict[str, str] = {}
    for entry in (text or "").split(";"):
        if not entry.strip():
            continue
        name, sep, value = entry.partition(":")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"clicktocall.{key}: {entry.strip()!r} is not 'name: value'")
        out[name.strip()] = value.strip()
    return out


def _names(text: str) -> frozenset[str]:
    return frozenset(text.replace(",", " ").split())


@dataclass(frozen=True)
class Policy:
    publishers: Mapping[str, frozenset[str]] = field(default_factory=dict)  # empty: unchecked
    trunk_numbers: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    cross_client: frozenset[str] = frozenset()
    free_caller_id: frozenset[str] = frozenset()

    @classmethod
    def open(cls) -> Policy:
        """Everything allowed (tests of other parts; never the configured default)."""
        return cls(trunk_numbers={ANY: re.compile(r".*")}, cross_client=frozenset({ANY}),
                   free_caller_id=frozenset({ANY}))

    @classmethod
    def from_config(cls, cfg: Any) -> Policy:
        publishers = {user: _names(clients)
                      for user, clients in parse_map(cfg["clicktocall.publishers"], "publishers").items()}
        numbers = {}
        for client, pattern in parse_map(cfg["clicktocall.trunk_numbers"], "trunk_numbers").items():
            try:
                numbers[client] = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"clicktocall.trunk_numbers: {client}: bad pattern: {exc}") from None
        return cls(publishers, numbers, _names(cfg["clicktocall.cross_client"]),
                   _names(cfg["clicktocall.free_caller_id"]))

    def check(self, req: ClickToCallRequest, publisher: str | None, client: Any,
              endpoints: Mapping[str, Any]) -> Refusal | None:
        """None if `publisher` may ask this; else a `not_authorized` refusal saying why."""
        if self.publishers:
            allowed = self.publishers.get(publisher or "")
            if allowed is None:
                who = f"user {publisher!r}" if publisher else "a request without user_id"
                return _refused(f"{who} may act for no client")
            if ANY not in allowed and req.client not in allowed:
                return _refused(f"user {publisher!r} may not act for client {req.client}")
        destination = endpoints.get(req.destination)
        if destination is None:  # a number, through the trunk
            pattern = self.trunk_numbers.get(req.client) or self.trunk_numbers.get(ANY)
            if pattern is None or not pattern.fullmatch(req.destination):
                return _refused(f"client {req.client} may not dial {req.destination}")
        elif destination.client != req.client and not self._has(self.cross_client, req.client):
            return _refused(f"{req.destination} is an endpoint of another client")
        if (req.caller_id is not None and not self._has(self.free_caller_id, req.client)
                and not caller_id_allowed(req.caller_id, getattr(client, "name", "") or "")):
            return _refused("caller ID may be digits and the client's own name only")
        return None

    @staticmethod
    def _has(names: frozenset[str], client: str) -> bool:
        return ANY in names or client in names

    def describe(self) -> str:
        if not self.publishers:
            return "any publisher may act for any client (clicktocall.publishers is empty)"
        return f"{len(self.publishers)} publisher(s) mapped to their clients"


def caller_id_allowed(caller_id: str, own_name: str) -> bool:
    text = caller_id.strip()
    if _DIGITS.fullmatch(text) or (own_name and text.strip('"') == own_name):
        return True
    match = _NAME_AND_NUMBER.fullmatch(text)
    return bool(match) and match.group("name").strip() in ("", own_name)


def _refused(text: str) -> Refusal:
    return Refusal.of(reasons.NOT_AUTHORIZED, text)
