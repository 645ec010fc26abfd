"""What the engine knows, the way its operators already look at things: Prometheus.

    readings.py   what the collector may read of the engine (a Protocol of plain values), the
                  adapter over today's engine, and the tallies of ended calls and outcomes
    snapshot.py   one cheap snapshot taken in the loop thread (counts, never per-record lists)
    families.py   the snapshot as Prometheus metric families (names, HELP, labels)
    health.py     the /healthz rule
    server.py     the HTTP thread: /metrics, /healthz, basic auth
    component.py  the engine component that wires them (one line in engine/app.py)
"""
