"""Readers for the files v2.7 wrote: endpoints_pjsip.def, __CLIENTES__.DEF, __MQSERVERS__.DEF.

The engine calls load_all() at start and on reload, diff() to log what a reload changed, and
swaps its one reference to the Tables snapshot. Nothing here raises on bad input.
"""

from arimonitor.v27.clients import Client, load_clients, parse_clients
from arimonitor.v27.diff import Changes, TableChanges, diff
from arimonitor.v27.endpoints import Endpoint, load_endpoints, parse_endpoints
from arimonitor.v27.mqservers import MQServer, load_mqservers, parse_mqservers
from arimonitor.v27.problems import ERROR, WARNING, Loaded, Problem, mask_secrets
from arimonitor.v27.tables import Tables, load_all

__all__ = [
    "ERROR", "WARNING", "Changes", "Client", "Endpoint", "Loaded", "MQServer", "Problem",
    "TableChanges", "Tables", "diff", "load_all", "load_clients", "load_endpoints",
    "load_mqservers", "mask_secrets", "parse_clients", "parse_endpoints", "parse_mqservers",
]
