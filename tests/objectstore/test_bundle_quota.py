"""Bundle unpacking is bounded by the project's image quota before anything is written: a
small gzip that unpacks to a large image is refused at the tar header."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from cloudd.image.bundles import BundleError, _untar_first

MIB = 1024**2


def make_tarball(path: Path, size: int) -> None:
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("image.img")
        info.size = size
        archive.addfile(info, io.BytesIO(b"\0" * size))  # zeros: a 2 MiB member gzips to ~2 KiB


def test_unpacking_past_the_quota_is_refused_before_writing(tmp_path: Path) -> None:
    tarball = tmp_path / "image.tar.gz"
    make_tarball(tarball, 2 * MIB)
    assert tarball.stat().st_size < 64 * 1024
    with pytest.raises(BundleError) as err:
        _untar_first(tarball, tmp_path / "image", max_bytes=MIB)
    assert err.value.code == "ResourceLimitExceeded"
    assert "image_size_total" in err.value.message
    assert not (tmp_path / "image").exists()
    # Within the quota (or with none) it unpacks.
    assert _untar_first(tarball, tmp_path / "image", max_bytes=2 * MIB).stat().st_size == 2 * MIB
    assert _untar_first(tarball, tmp_path / "again", max_bytes=None).stat().st_size == 2 * MIB
