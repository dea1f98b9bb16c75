"""The network domain's error base: a request the network model refuses (its own module, so the
rule model and IPAM can both derive from it without importing each other)."""


class NetworkError(Exception):
    """A request the network model refuses; the message is for the user."""
