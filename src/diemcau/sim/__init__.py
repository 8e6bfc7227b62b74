"""Simulated sites: control-plane sessions and aiortc media bots."""
