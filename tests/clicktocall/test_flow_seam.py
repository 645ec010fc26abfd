"""The restart logic (flowstate.py) drives the flow only through `flowstate.Flow`."""

import ast
import inspect
from pathlib import Path

from arimonitor.clicktocall import flowstate
from arimonitor.clicktocall.flow import ClickToCallFlow


def test_flowstate_uses_no_private_member_of_the_flow():
    tree = ast.parse(Path(flowstate.__file__).read_text())
    private = [f"{node.lineno}: flow.{node.attr}" for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
               and node.value.id == "flow" and node.attr.startswith("_")]
    assert private == []


def test_the_flow_offers_every_step_of_the_interface_with_its_signature():
    for name, member in vars(flowstate.Flow).items():
        if name.startswith("_") or not callable(member):
            continue
        ours = getattr(ClickToCallFlow, name)
        assert inspect.signature(ours) == inspect.signature(member), name
