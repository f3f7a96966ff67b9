"""The database shared by the services: tables, engine and quota accounting."""
