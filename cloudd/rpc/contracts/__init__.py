"""The RPC contracts between the controller and the agents: the pydantic messages both sides
exchange over the agent websocket, and the method prefixes they are called under.

- ``compute``: controller -> agent (``compute.*``), the host reports the agent sends back
  (``HostResources``, ``HostDomain``, ``HostHealthReport``) and the image descriptions builds
  carry (``ImageInfo``);
- ``instance``: ``Instance`` (with ``FlavorSnapshot``, ``SavedRequest``), Nova's Instance object:
  one row of ``instances``, typed, as the controller's repository decodes it and the messages
  of both directions carry it;
- ``conductor``: agent -> controller (``conductor.*``), the agents' only door to the database;
- ``network``: both directions (``network.*`` on the agent, ``network_conductor.*`` on the
  controller).

They live here, in neither side's package, so that each side imports the contract and not the
other side's internals: these modules import only ``cloudd.rpc`` and the pure rules of the
domains (``cloudd.vocab.states``, ``power_state``, ``cloudd.vocab.secgroup_rules``), never
``cloudd.db``, ``cloudd.api``, a controller service or the agent tree.
"""
