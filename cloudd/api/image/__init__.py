"""Image v2 (Glance-compatible) API; see app.py. `import_image` is for `cloudd manage`."""

from cloudd.api.image.data import import_image
from cloudd.api.image.records import image_store

__all__ = ["image_store", "import_image"]
