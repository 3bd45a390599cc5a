"""ocpp-gateway: presents OCPP 1.6J chargers to an OCPP 2.0.1 CSMS."""

__version__ = "0.1.0"
