"""User messages (Cinder's /messages, 3.3): MessageService."""
