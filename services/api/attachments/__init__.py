"""The attachments API (``/v3/{project_id}/attachments``)."""
