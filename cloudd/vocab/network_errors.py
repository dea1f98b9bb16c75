"""The network domain's error base: a request the network model refuses (its own module, so the
rule model and IPAM can both derive from it without importing each other)."""

from cloudd import errors


class NetworkError(errors.CloudError):
    """A request the network model refuses; the message is for the user. Raised bare, a 400
    (what Nova answers); each subclass is also the kind it means (listed first, so its status
    wins), and the handlers still map them where an API answers otherwise."""

    status = errors.BadRequest.status
