"""The api's checks of a create's source, with Cinder's messages."""

from __future__ import annotations

import pytest

from cindermesh.db.models import Snapshot, Volume
from cindermesh.errors import InvalidInput, InvalidSnapshot, InvalidVolume
from services.api.volumes.sources import (
    CreateSource,
    check_same_zone,
    extract_size,
    extract_source,
    source_zone,
)


def volume(status: str = "available", size: int = 2, zone: str = "nova") -> Volume:
    return Volume(
        id="vol-1",
        project_id="p",
        user_id="u",
        size=size,
        status=status,
        availability_zone=zone,
        volume_type_id="type-1",
        host="node1@rbd-1#rbd-1",
        bootable=True,
    )


def snapshot(status: str = "available", size: int = 2) -> Snapshot:
    return Snapshot(
        id="snap-1",
        project_id="p",
        user_id="u",
        volume_id="vol-1",
        volume_size=size,
        status=status,
        volume_type_id="type-1",
    )


def from_snapshot(status: str = "available", size: int = 2) -> CreateSource:
    return CreateSource(snapshot=snapshot(status, size), origin=volume())


def from_volume(status: str = "available", size: int = 2) -> CreateSource:
    source = volume(status, size)
    return CreateSource(source_volume=source, origin=source)


@pytest.mark.parametrize("status", ["creating", "error", "deleting"])
def test_snapshot_must_be_available(status: str) -> None:
    with pytest.raises(InvalidSnapshot) as raised:
        extract_source(from_snapshot(status))
    assert raised.value.message == (
        "Invalid snapshot: Originating snapshot status must be one of 'available' values"
    )


@pytest.mark.parametrize("status", ["available", "in-use"])
def test_source_volume_available_or_in_use(status: str) -> None:
    extract_source(from_volume(status))


@pytest.mark.parametrize("status", ["creating", "error", "deleting", "extending"])
def test_source_volume_in_another_status(status: str) -> None:
    with pytest.raises(InvalidVolume) as raised:
        extract_source(from_volume(status))
    assert raised.value.message == (
        "Invalid volume: Originating source volume status must be one of 'available, in-use' values"
    )


def test_only_one_source() -> None:
    both = CreateSource(snapshot=snapshot(), source_volume=volume(), origin=volume())
    with pytest.raises(InvalidInput) as raised:
        extract_source(both)
    assert raised.value.message == (
        "Invalid input received: May specify only one of backup, imageRef, snapshot, source volume"
    )


@pytest.mark.parametrize(
    ("size", "source", "expected"),
    [
        (None, CreateSource(), None),
        (3, CreateSource(), 3),
        (None, from_volume(size=2), 2),
        (5, from_volume(size=2), 5),
        (None, from_snapshot(size=4), 4),
        (4, from_snapshot(size=4), 4),
    ],
)
def test_size_defaults_to_the_source_and_may_grow(
    size: int | None, source: CreateSource, expected: int | None
) -> None:
    assert extract_size(size, source) == expected


def test_size_smaller_than_the_source_volume() -> None:
    with pytest.raises(InvalidInput) as raised:
        extract_size(1, from_volume(size=2))
    assert raised.value.message == (
        "Invalid input received: Volume size '1'GB cannot be smaller than original volume "
        "size  2GB. They must be >= original volume size."
    )


def test_size_smaller_than_the_snapshot() -> None:
    with pytest.raises(InvalidInput) as raised:
        extract_size(1, from_snapshot(size=2))
    assert raised.value.message == (
        "Invalid input received: Volume size '1'GB cannot be smaller than the snapshot size "
        "2GB. They must be >= original snapshot size."
    )


def test_zone_bootable_type_and_backend_from_the_source() -> None:
    source = from_snapshot()
    assert source_zone(None, source) == "nova"
    assert source_zone("az2", source) == "az2"
    assert source_zone(None, CreateSource()) is None
    assert source.bootable and not CreateSource().bootable
    assert source.volume_type_id == "type-1"
    assert source.backend == "node1@rbd-1"
    assert (source.snapshot_id, source.source_volid) == ("snap-1", None)
    check_same_zone("nova", source)


@pytest.mark.parametrize(
    ("source", "what"), [(from_snapshot(), "snapshot"), (from_volume(), "source volume")]
)
def test_another_zone_than_the_source(source: CreateSource, what: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_same_zone("az2", source)
    assert raised.value.message == (
        f"Invalid input received: Volume must be in the same availability zone as the {what}"
    )
