"""Use cases. Each owns its transaction; none imports Flask."""
