"""Image v2 (Glance-compatible) API: handlers, request models and views; see app.py.

The image domain (records, data, transfer) is cloudd.image."""
