"""The volume manager: one process per backend, Cinder's ``cinder-volume``.

Layout (each module small, with ``__all__``):

- ``servicer``: the gRPC edge (validate -> call the manager -> map domain errors to status).
- ``manager``: accepts creates and deletes and runs them as background tasks.
- ``create_flow``: Cinder's manager create flow, step by step, each with its undo.
- ``delete``: the delete path.
- ``store``: the database reads and writes the flows need.
- ``registration``, ``reporter``: the Service row heartbeat and the capability stream.
- ``recovery``: picks up rows a crash left in ``creating`` / ``deleting``.
- ``drivers``: the driver ``Protocol`` and its implementations.
"""

__all__: list[str] = []
