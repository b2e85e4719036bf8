"""Live events across the server's worker processes: the bus the console's live views read."""
