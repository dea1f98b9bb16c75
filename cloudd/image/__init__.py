"""The image domain: its front door (``api.ImageAPI``), rules and quotas, records, their data,
boot checks, inspection and transfer, without HTTP.

The Image API (``cloudd.api.image``) and the EC2 image calls go through ``ImageAPI``; the
Compute API, the conductor, ``cloudd manage`` and the object store's bundle registration use
the modules they need; it imports nothing of ``cloudd.api``. ``inspector`` imports neither
``cloudd.api`` nor ``cloudd.db``: the agents' drivers use it.
"""
