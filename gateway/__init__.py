"""ocpp-gateway."""
