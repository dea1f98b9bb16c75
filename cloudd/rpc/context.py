"""Per-call context handed to RPC handlers; the request id that follows a request across hosts.

`RpcContext` is defined beside the peer it names (cloudd.rpc.peer) so the two modules do not
import each other; this module is where handlers import it from.
"""

from __future__ import annotations

# One variable for the whole process: the API sets it per HTTP request, RPC sends it with each
# call and sets it around each handler, and the log filter in cloudd.log prints it.
from cloudd.log import request_id_var
from cloudd.rpc.peer import RpcContext

__all__ = ["RpcContext", "request_id_var"]
