"""Blueprints parse requests and render answers; the services do the work."""
