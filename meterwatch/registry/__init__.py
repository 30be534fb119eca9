"""The registry: institutions, devices, RFID cards and quotas, loaded from one directory."""

from meterwatch.registry.load import RegistryError, load_registry
from meterwatch.registry.model import Card, Contact, Device, Institution, Problem, Registry

__all__ = ["Card", "Contact", "Device", "Institution", "Problem", "Registry", "RegistryError", "load_registry"]
