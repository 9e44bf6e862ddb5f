"""Per-user state: histories, served lists, the top-k cache and the feedback log."""
