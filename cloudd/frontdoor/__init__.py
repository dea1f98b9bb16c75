"""The front doors: what the HTTP APIs (REST and EC2 alike) call for an operation that spans
domains. ``compute`` is Nova's compute API (``ComputeAPI``): a server's create, actions and
delete, resolving references (flavor, image, key pair, networks, group) through the domains and
casting through the conductor. It sits above the domains it orchestrates, so that none of them
(the conductor and scheduler read compute's records) imports back up into it.
"""
