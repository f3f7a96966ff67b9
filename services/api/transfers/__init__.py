"""Volume transfers (Cinder's volume-transfers and os-volume-transfer)."""
