"""Operations: the status and configure APIs, the admin dashboard, Prometheus metrics, e-mail
alerts on state changes and connection uptime checks (docs/operations.md).

A Django app of its own (label ``operations``) so its tables and migrations stay apart from
the sync engine's. It reads the engine's rows and calls its services; it never changes how a
run works.
"""
