"""The snapshots API (``/v3/{project_id}/snapshots``)."""
