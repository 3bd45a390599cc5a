"""Websocket edges: the charger-facing server and the per-station CSMS client."""
