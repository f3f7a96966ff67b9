"""Whether a volume can take a new type where it is: the pool's reported capabilities satisfy
the new type's extra specs (Cinder's ``find_retype_backend`` for the volume's own pool, by the
scheduler's CapabilitiesFilter rule, ``services.scheduler.filters.match_extra_spec``), and the
encryption does not change (Cinder's manager migrates a volume whose encryption changes).

cindermesh has no migration, so a retype is done in place or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from google.protobuf.json_format import MessageToDict

from cindermesh_pb.scheduler.v1 import scheduler_pb2
from services.scheduler.backend_state import CapabilityValue
from services.scheduler.filters import match_extra_spec

__all__ = ["pool_capabilities", "satisfies"]


def pool_capabilities(
    pools: Sequence[scheduler_pb2.PoolInfo], host: str
) -> Mapping[str, CapabilityValue] | None:
    """The reported capabilities of the pool ``host`` (host@backend#pool); None if it does not
    report (its backend is down, or it is not the scheduler's)."""
    for pool in pools:
        if pool.name == host:
            found: dict[str, CapabilityValue] = MessageToDict(pool.capabilities)
            return found
    return None


def satisfies(capabilities: Mapping[str, CapabilityValue], extra_specs: Mapping[str, str]) -> bool:
    """CapabilitiesFilter: every extra spec that applies (unscoped or ``capabilities:``) is
    reported and matched."""
    for key, requirement in extra_specs.items():
        scope = key.split(":")
        if len(scope) > 1 and scope[0] != "capabilities":
            continue
        name = ":".join(scope[1:] if scope[0] == "capabilities" else scope)
        value = capabilities.get(name)
        if value is None or not match_extra_spec(value, requirement):
            return False
    return True
