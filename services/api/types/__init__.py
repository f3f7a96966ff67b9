"""Volume types: TypeService (servicer), its operations and create body."""
