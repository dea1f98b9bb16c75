"""The image domain's rules without I/O: who may see, create and change an image (Glance's
default policy), the attribute vocabulary, and the domain refusals the Image and EC2 APIs
render in their own formats.

`ImagePatch` applies changes one at a time, with the rules of each (read-only attributes, core
attributes that cannot be removed, values of the right type, admin-only changes, formats only
while queued, properties that must exist): the Image API turns its JSON-patch operations into
calls of it, so a patch's first broken rule is the one refused, in the patch's order.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from cloudd import errors
from cloudd.image.records import Image, ImageNotFound


# ----- domain refusals (each API renders them; the Image API by their status) -------------------
class ImageNotVisible(ImageNotFound):
    """No image of that id that the caller may see (names and other projects' images alike)."""

    def __init__(self, image_id: str) -> None:
        super().__init__(f"No image found with ID {image_id}")
        self.image_id = image_id


class ImageForbidden(errors.Forbidden):
    """Glance's policy refuses the caller this (a reader writing, a member publishing, ...)."""


class NotImageOwner(ImageForbidden):
    """The image is another project's: only its owner's members (or admins) change it."""


class ImageProtected(ImageForbidden):
    """A protected image cannot be deleted (its metadata may still change)."""


class ImageRefused(errors.BadRequest):
    """A value breaks an image rule (a property name, an id that is no UUID, ...)."""


class ImageConflict(errors.Conflict):
    """The image is not in a state for this, or the id is taken."""


class ImageTooLarge(errors.OverLimit):
    """Over the image size cap or the project's image quotas (Glance's 413)."""


class ImageGone(errors.Gone):
    """Deleted while its data was being uploaded."""


class ImageStoreUnavailable(errors.Unavailable):
    """The image store failed, or lost an active image's bytes."""


# ----- the vocabulary ---------------------------------------------------------------------------
Name = Annotated[str, StringConstraints(max_length=255)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=255)]
DiskFormat = Literal["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]
ContainerFormat = Literal["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]
Visibility = Literal["public", "private", "shared", "community"]
MAX_PROPERTY_LENGTH = 65535

# Keys a client can never set: they describe the data or the record itself.
READ_ONLY = frozenset({"id", "status", "size", "virtual_size", "checksum", "os_hash_algo",
                       "os_hash_value", "created_at", "updated_at", "self", "file", "schema",
                       "direct_url", "locations", "stores", "deleted", "deleted_at"})
# Core attributes clients may change (some only while queued, some only as admin).
MUTABLE_CORE = frozenset({"name", "visibility", "protected", "os_hidden", "min_ram", "min_disk",
                          "tags", "disk_format", "container_format", "owner"})
CORE = READ_ONLY | MUTABLE_CORE
# The type each mutable core attribute must have (strictly: "1" is not an integer).
_CORE_TYPES: dict[str, Any] = {
    "name": Name | None, "visibility": Visibility, "disk_format": DiskFormat | None,
    "container_format": ContainerFormat | None, "owner": str | None, "protected": StrictBool,
    "os_hidden": StrictBool, "min_ram": StrictInt, "min_disk": StrictInt, "tags": list[Tag],
}
CoreValue = str | bool | int | list[str] | None


# ----- who may do what (Glance's default policy) ------------------------------------------------
class Caller(Protocol):
    """Who asks: the API's request context satisfies it."""

    @property
    def project_id(self) -> str | None: ...

    @property
    def roles(self) -> frozenset[str]: ...

    @property
    def is_admin(self) -> bool: ...


def can_read(caller: Caller) -> bool:
    """Any role in the project reads (reader is implied by member and admin)."""
    return caller.is_admin or bool(caller.roles & {"reader", "member"})


def can_create(caller: Caller) -> bool:
    return caller.is_admin or "member" in caller.roles


def can_write(caller: Caller, image: Image) -> bool:
    """Owner project's members (or admins) change an image; readers never do."""
    return caller.is_admin or ("member" in caller.roles and image.owner == caller.project_id)


def check_publicize(caller: Caller, visibility: str) -> None:
    """Glance's publicize_image: only admins publish an image to every project."""
    if visibility == "public" and not caller.is_admin:
        raise ImageForbidden("Only administrators may make an image public.")


def is_uuid(value: str) -> bool:
    try:
        uuidlib.UUID(value)
    except ValueError:
        return False
    return True


def check_property(key: str, value: Any) -> str:
    """A custom property: a name of 1 to 255 characters, a string value of at most 64 KiB."""
    if key in READ_ONLY:
        raise ImageForbidden(f"Attribute '{key}' is read-only.")
    if not key or len(key) > 255:
        raise ImageRefused("Property names must be 1 to 255 characters long.")
    if not isinstance(value, str):
        raise ImageRefused(f"Property '{key}' must be a string.")
    if len(value) > MAX_PROPERTY_LENGTH:
        raise ImageRefused(f"Property '{key}' is too long.")
    return value


# ----- what a create and an update carry --------------------------------------------------------
class NewImage(BaseModel):
    """A create as the client asked for it: the core attributes in the vocabulary's types
    (strictly: the Image API's request model is this one, refusing unknown keys) and the
    custom properties."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    name: Name | None = None
    visibility: Visibility = "shared"
    protected: StrictBool = False
    os_hidden: StrictBool = False
    disk_format: DiskFormat | None = None
    container_format: ContainerFormat | None = None
    min_disk: StrictInt = Field(0, ge=0, le=2**31 - 1)
    min_ram: StrictInt = Field(0, ge=0, le=2**31 - 1)
    tags: list[Tag] = Field(default_factory=list, max_length=128)
    owner: Annotated[str, StringConstraints(max_length=255)] | None = None
    properties: dict[str, str] = Field(default_factory=dict)


@dataclass
class ImageChanges:
    """What an update saves: core attributes by name, and the properties as they will be
    (None: untouched)."""

    core: dict[str, CoreValue] = field(default_factory=dict)
    properties: dict[str, str] | None = None

    def __bool__(self) -> bool:
        return bool(self.core) or self.properties is not None

    def values(self) -> dict[str, object]:
        """The columns for the repository's update."""
        return {**self.core, **({} if self.properties is None else
                                {"properties": self.properties})}


class ImagePatch:
    """Changes of one image, applied in order with each one's rules (see the module)."""

    def __init__(self, caller: Caller, image: Image) -> None:
        self.caller = caller
        self.image = image
        self.changes = ImageChanges()

    def set(self, name: str, value: Any, *, must_exist: bool = False) -> None:
        """Add (`must_exist` False) or replace an attribute or property."""
        self._not_read_only(name)
        if name in MUTABLE_CORE:
            self._set_core(name, _core_value(name, value))
            return
        properties = self._properties()
        if must_exist and name not in properties:
            raise ImageConflict(f"Property {name} does not exist.")
        properties[name] = check_property(name, value)

    def set_description(self, text: str) -> None:
        """EC2's image description: the `description` property, as the EC2 API always stored
        it (without a Glance property's length limit)."""
        self._properties()["description"] = text

    def remove(self, name: str) -> None:
        self._not_read_only(name)
        if name in MUTABLE_CORE:
            raise ImageForbidden(f"Unable to remove core attribute '{name}'.")
        properties = self._properties()
        if name not in properties:
            raise ImageConflict(f"Property {name} does not exist.")
        del properties[name]

    def _not_read_only(self, name: str) -> None:
        if name in READ_ONLY:
            raise ImageForbidden(f"Attribute '{name}' is read-only.")

    def _set_core(self, name: str, value: CoreValue) -> None:
        if name == "visibility":
            check_publicize(self.caller, str(value))
        if name == "owner" and not self.caller.is_admin:
            raise ImageForbidden("Only administrators may change an image's owner.")
        if name in ("disk_format", "container_format") and self.image.status != "queued":
            raise ImageForbidden(f"Attribute '{name}' can be only replaced for a queued image.")
        self.changes.core[name] = value

    def _properties(self) -> dict[str, str]:
        if self.changes.properties is None:
            self.changes.properties = dict(self.image.properties)
        return self.changes.properties


def _core_value(name: str, value: Any) -> CoreValue:
    try:
        checked: CoreValue = TypeAdapter(_CORE_TYPES[name]).validate_python(value, strict=True)
    except ValidationError as exc:
        raise ImageRefused(f"Invalid value for '{name}': {exc.errors()[0]['msg']}") from None
    if name in ("min_ram", "min_disk") and isinstance(checked, int) \
            and not 0 <= checked < 2**31:
        raise ImageRefused(f"'{name}' must be between 0 and 2147483647")
    if name == "tags" and isinstance(checked, list):
        if len(checked) > 128 or any(not 0 < len(t) <= 255 for t in checked):
            raise ImageRefused("At most 128 tags of 1 to 255 characters each")
        return list(dict.fromkeys(checked))
    return checked
