"""Volume-type operations on a real SQLite database: visibility, policy, conflicts, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cindermesh.db.engine import Database, open_database
from cindermesh.db.models import Volume
from cindermesh.errors import Conflict, Forbidden, InvalidInput, NotFound
from cindermesh.settings import Settings
from services.api.edge.auth import ADMIN_ROLES, Caller
from services.api.edge.microversion import MIN_VERSION
from services.api.edge.request_context import RequestContext
from services.api.types.body import TypeCreateInput
from services.api.types.operations import VolumeTypeOperations, type_view

ADMIN = RequestContext(Caller("admin", "p1", ADMIN_ROLES), MIN_VERSION, "http://x", True)
USER = RequestContext(Caller("u1", "p1"), MIN_VERSION, "http://x", True)
SPECS = {"volume_backend_name": "file-1", "multiattach": "<is> True"}


@pytest.fixture
async def db(tmp_path: Path, migrated_database_url: str) -> AsyncIterator[Database]:
    database = open_database(Settings(data_dir=tmp_path, database_url=migrated_database_url))
    await database.create_schema()
    yield database
    await database.close()


@pytest.fixture
def types(db: Database) -> VolumeTypeOperations:
    return VolumeTypeOperations(db)


async def test_create_list_and_visibility(types: VolumeTypeOperations) -> None:
    gold = await types.create(ADMIN, TypeCreateInput("gold", "fast", SPECS))
    secret = await types.create(ADMIN, TypeCreateInput("secret", is_public=False))
    assert [r.volume_type.name for r in await types.list(ADMIN, None)] == ["gold", "__DEFAULT__"]
    assert [r.volume_type.name for r in await types.list(ADMIN, "None")] == [
        "secret",
        "gold",
        "__DEFAULT__",
    ]
    assert [r.volume_type.name for r in await types.list(ADMIN, "false")] == ["secret"]
    # Other users: public types only, whatever they ask; the private one is not found.
    assert [r.volume_type.name for r in await types.list(USER, "false")] == ["gold", "__DEFAULT__"]
    with pytest.raises(NotFound, match=f"Volume type {secret.volume_type.id} could not be found."):
        await types.get(USER, secret.volume_type.id)
    assert (await types.get(ADMIN, secret.volume_type.id)).volume_type.name == "secret"

    shown = await types.get(USER, gold.volume_type.id)
    user_view = type_view(USER, shown, access_field=True)
    assert dict(user_view.extra_specs) == {"multiattach": "<is> True"}
    assert not user_view.HasField("qos_specs_id")
    admin_view = type_view(ADMIN, shown, access_field=False)
    assert dict(admin_view.extra_specs) == SPECS
    assert admin_view.HasField("qos_specs_id")
    assert not admin_view.HasField("os_volume_type_access_is_public")


async def test_create_refusals(types: VolumeTypeOperations) -> None:
    with pytest.raises(Forbidden, match="Policy doesn't allow volume_extension:type_create"):
        await types.create(USER, TypeCreateInput("x"))
    await types.create(ADMIN, TypeCreateInput("gold"))
    with pytest.raises(Conflict, match=r"^Volume Type gold already exists\.$"):
        await types.create(ADMIN, TypeCreateInput("gold"))
    with pytest.raises(InvalidInput, match=r"^Invalid is_public filter \[maybe\]$"):
        await types.list(ADMIN, "maybe")


async def test_delete(types: VolumeTypeOperations, db: Database) -> None:
    gold = (await types.create(ADMIN, TypeCreateInput("gold", extra_specs=SPECS))).volume_type
    default = (await types.get_default(USER)).volume_type
    with pytest.raises(Forbidden, match="volume_extension:type_delete"):
        await types.delete(USER, gold.id)
    with pytest.raises(InvalidInput, match=f"The volume type {default.id} is a default volume"):
        await types.delete(ADMIN, default.id)
    async with db.session() as session:
        session.add(
            Volume(
                id="v1",
                project_id="p1",
                user_id="u1",
                size=1,
                availability_zone="nova",
                volume_type_id=gold.id,
            )
        )
    with pytest.raises(InvalidInput, match=r"^Target volume type is still in use\.$"):
        await types.delete(ADMIN, gold.id)
    async with db.session() as session:
        volume = await session.get(Volume, "v1")
        await session.delete(volume)
    await types.delete(ADMIN, gold.id)
    with pytest.raises(NotFound):
        await types.get(ADMIN, gold.id)
    with pytest.raises(NotFound, match=f"^Volume type {gold.id} could not be found.$"):
        await types.delete(ADMIN, gold.id)
