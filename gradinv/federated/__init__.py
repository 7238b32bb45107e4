"""The simulated federated client and what it shares."""

from gradinv.federated.client import FederatedClient
from gradinv.federated.update import PrivateRecord, SharedUpdate

__all__ = ["FederatedClient", "PrivateRecord", "SharedUpdate"]
