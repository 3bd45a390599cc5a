"""Independent OCPP test peers for the gateway: a 1.6J charger sim and a 2.0.1 CSMS sim.

They share no code with the gateway on purpose: framing uses the stdlib ``json`` module
and validation the reference ``jsonschema`` library against the official schemas shipped
by the ``ocpp`` package. Nothing here may import from ``gateway`` outside ``gateway.sim``.
"""

from gateway.sim.charger import ChargerSim
from gateway.sim.configuration import ChargerConfiguration, ConfigKey, standard_configuration
from gateway.sim.csms import CsmsSim, Received
from gateway.sim.wire import CallErrorReceived, SchemaValidator, SchemaViolation

__all__ = [
    "CallErrorReceived",
    "ChargerConfiguration",
    "ChargerSim",
    "ConfigKey",
    "CsmsSim",
    "Received",
    "SchemaValidator",
    "SchemaViolation",
    "standard_configuration",
]
