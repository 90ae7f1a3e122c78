"""Hash sets: formats in and out, category schemes, and the hash library."""
