"""Image helpers shared by the controller's image code and the agents' drivers.

Nothing here imports ``cloudd.api`` or ``cloudd.db``: an agent imports it too.
"""
