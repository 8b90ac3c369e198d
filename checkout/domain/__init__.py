"""Domain code: money, states and transitions. Nothing here imports Flask."""
