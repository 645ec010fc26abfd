"""Validate JSON against Asterisk's own ARI models (the swagger 1.2 files in api-docs/).

`ApiDocs(folder).check(value, "Channel")` returns a list of problems (empty when the value
fits); `check_message(event)` picks the model from the event's `type` (the `Message`
discriminator) and also checks the inherited `Event`/`Message` fields. Unknown fields are
reported too: the simulator must not invent fields real Asterisk never sends.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$")
PRIMITIVES = {
    "string": (str,),
    "int": (int,),
    "long": (int,),
    "double": (int, float),
    "boolean": (bool,),
    "object": (dict,),
}


class ApiDocs:
    """Every model of every api-docs file, by id."""

    def __init__(self, folder: str | Path) -> None:
        self.models: dict[str, dict] = {}
        for path in sorted(Path(folder).glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            self.models.update(data.get("models", {}))
        self.parent: dict[str, str] = {}
        for name, model in self.models.items():
            for sub in model.get("subTypes", []):
                self.parent[sub] = name

    def properties(self, model: str) -> dict[str, dict]:
        """The model's own fields plus those inherited through subTypes."""
        props: dict[str, dict] = {}
        chain = [model]
        while chain[-1] in self.parent:
            chain.append(self.parent[chain[-1]])
        for name in reversed(chain):
            props.update(self.models[name]["properties"])
        return props

    def check(self, value: Any, type_name: str, where: str = "$") -> list[str]:
        if type_name.startswith("List[") and type_name.endswith("]"):
            if not isinstance(value, list):
                return [f"{where}: expected a list, got {type(value).__name__}"]
            inner = type_name[5:-1]
            errors: list[str] = []
            for i, item in enumerate(value):
                errors += self.check(item, inner, f"{where}[{i}]")
            return errors
        if type_name == "Date":
            if not isinstance(value, str) or not DATE.match(value):
                return [f"{where}: not an ARI date: {value!r}"]
            return []
        if type_name in PRIMITIVES:
            kinds = PRIMITIVES[type_name]
            # bool is an int in Python; ARI never mixes them
            if not isinstance(value, kinds) or (type_name != "boolean" and isinstance(value, bool)):
                return [f"{where}: expected {type_name}, got {type(value).__name__}"]
            return []
        if type_name not in self.models:
            return [f"{where}: unknown model {type_name}"]
        if not isinstance(value, dict):
            return [f"{where}: expected {type_name} object, got {type(value).__name__}"]
        return self._check_fields(value, self.properties(type_name), type_name, where)

    def _check_fields(self, value: dict, props: dict[str, dict], type_name: str, where: str) -> list[str]:
        errors = []
        for field, spec in props.items():
            if field not in value:
                if spec.get("required"):
                    errors.append(f"{where}: {type_name}.{field} is required")
                continue
            errors += self.check(value[field], spec["type"], f"{where}.{field}")
            allowed = spec.get("allowableValues", {})
            if allowed.get("valueType") == "LIST" and value[field] not in allowed["values"]:
                errors.append(f"{where}.{field}: {value[field]!r} not in {allowed['values']}")
        for field in value:
            if field not in props:
                errors.append(f"{where}: {type_name} has no field {field!r}")
        return errors

    def check_message(self, message: Any) -> list[str]:
        """An event (or any Message) as sent on the WebSocket."""
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return ["$: a message needs a string 'type'"]
        if message["type"] not in self.models:
            return [f"$: unknown message type {message['type']!r}"]
        return self.check(message, message["type"])
