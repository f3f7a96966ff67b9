"""Cinder's policy table and the check-string evaluator: every default parses, the personas'
matrices of representative rules, overrides from the configuration, and the refusals."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import services.api
from cindermesh.errors import Forbidden, NotAuthenticated
from cindermesh.settings import Settings, load_settings
from services.api.edge.auth import ADMIN_ROLES, MEMBER_ROLES, Caller, authenticate
from services.api.edge.microversion import MIN_VERSION
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import RPC_POLICIES, Edge, rpc
from services.api.policy import (
    DEFAULT_ENFORCER,
    Enforcer,
    PolicyConfigError,
    allowed,
    authorize,
)
from services.api.policy.checks import PolicySyntaxError, parse
from services.api.policy.defaults import DEFAULT_RULES

PROJECT = "p1"
OTHER = "p2"
ADMIN = Caller("admin", PROJECT, ADMIN_ROLES)
MEMBER = Caller("u1", PROJECT, MEMBER_ROLES)
READER = Caller("u2", PROJECT, frozenset({"reader"}))
NOBODY = Caller("u3", PROJECT, frozenset())
CALLERS = {"admin": ADMIN, "member": MEMBER, "reader": READER, "none": NOBODY}


def _ctx(caller: Caller, enforcer: Enforcer = DEFAULT_ENFORCER) -> RequestContext:
    return RequestContext(caller, MIN_VERSION, "http://gw", True, policy=enforcer)


def _who(rule: str, target: dict[str, object] | None = None) -> set[str]:
    return {n for n, c in CALLERS.items() if DEFAULT_ENFORCER.allowed(rule, c, target)}


# -- the table ------------------------------------------------------------------------------


def test_every_default_parses_and_refers_to_rules_of_the_table() -> None:
    for rule in DEFAULT_RULES.values():
        parse(rule.check_str)
    Enforcer()  # references and cycles are checked at load
    assert len(DEFAULT_RULES) >= 60


@pytest.mark.parametrize(
    ("rule", "who"),
    [
        # readers read their project, members also write, admins do everything
        ("volume:get", {"admin", "member", "reader"}),
        ("volume:get_all", {"admin", "member", "reader"}),
        ("volume:get_volume_metadata", {"admin", "member", "reader"}),
        ("volume_extension:type_get_all", {"admin", "member", "reader"}),
        ("volume_extension:quotas:show", {"admin", "member", "reader"}),
        ("message:get", {"admin", "member", "reader"}),
        ("volume:create", {"admin", "member"}),
        ("volume:update", {"admin", "member"}),
        ("volume:delete", {"admin", "member"}),
        ("volume:create_volume_metadata", {"admin", "member"}),
        ("volume:update_volume_metadata", {"admin", "member"}),
        ("volume:delete_volume_metadata", {"admin", "member"}),
        ("message:delete", {"admin", "member"}),
        ("volume_extension:volume_type_access", {"admin", "member"}),
        # the admin API
        ("volume:force_delete", {"admin"}),
        ("volume_extension:type_create", {"admin"}),
        ("volume_extension:type_delete", {"admin"}),
        ("volume_extension:types_extra_specs:create", {"admin"}),
        ("volume_extension:quotas:update", {"admin"}),
        ("volume_extension:quotas:delete", {"admin"}),
        ("volume_extension:services:index", {"admin"}),
        ("scheduler_extension:scheduler_stats:get_pools", {"admin"}),
        ("volume_extension:qos_specs_manage:get_all", {"admin"}),
        ("volume_extension:hosts", {"admin"}),
        ("volume_extension:capabilities", {"admin"}),
        ("volume_extension:volume_host_attribute", {"admin"}),
        ("volume_extension:volume_tenant_attribute", {"admin", "member", "reader"}),
        ("context_is_admin", {"admin"}),
    ],
)
def test_personas_in_their_project(rule: str, who: set[str]) -> None:
    assert _who(rule) == who


def test_project_rules_are_for_the_resources_project() -> None:
    other = {"project_id": OTHER, "user_id": "x"}
    assert _who("volume:get", other) == {"admin"}
    assert _who("volume:delete", other) == {"admin"}
    assert _who("volume_extension:quotas:show", {"project_id": OTHER}) == {"admin"}
    # A target without the project: the project checks fail, the role checks still count.
    assert _who("volume:get", {}) == {"admin"}


def test_authorize_raises_cinders_refusal() -> None:
    authorize(_ctx(MEMBER), "volume:create")
    with pytest.raises(Forbidden) as raised:
        authorize(_ctx(READER), "volume:create")
    assert raised.value.message == "Policy doesn't allow volume:create to be performed."
    assert not allowed(_ctx(READER), "volume:get", {"project_id": OTHER})


# -- the evaluator --------------------------------------------------------------------------


def _check(text: str, caller: Caller = MEMBER, target: dict[str, object] | None = None) -> bool:
    check = parse(text)
    enforcer = Enforcer()
    creds: dict[str, object] = {
        "roles": caller.roles,
        "project_id": caller.project_id,
        "user_id": caller.user_id,
        "is_admin": caller.is_admin,
    }
    resolve = enforcer._rules.get
    return check(target if target is not None else {"project_id": PROJECT}, creds, resolve)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("@", True),
        ("!", False),
        ("role:member", True),
        ("role:MEMBER", True),
        ("role:admin", False),
        ("not role:admin", True),
        ("NOT role:member", False),
        ("role:admin or role:reader", True),
        ("role:admin and role:reader", False),
        # and binds tighter than or
        ("role:reader or role:admin and role:nope", True),
        ("(role:reader or role:admin) and role:nope", False),
        ("((role:reader))", True),
        ("not (role:admin or role:nope)", True),
        ("project_id:%(project_id)s", True),
        ("project_id:%(missing)s", False),
        ("user_id:%(user_id)s", False),
        ("user_id:u1", True),
        ("is_admin:True", False),
        ("is_admin:False", True),
        ("system_scope:all", False),
        ("rule:xena_system_admin_or_project_member", True),
        ("rule:admin_api", False),
        ("'p1':%(project_id)s", True),
        ("'p2':%(project_id)s", False),
    ],
)
def test_check_strings(text: str, expected: bool) -> None:
    assert _check(text) is expected


def test_user_target_and_admin_credential() -> None:
    assert _check("user_id:%(user_id)s", target={"user_id": "u1"})
    assert _check("is_admin:True", caller=ADMIN)
    assert _check("rule:admin_api", caller=ADMIN)


@pytest.mark.parametrize(
    "text",
    [
        "role:admin and",
        "or role:admin",
        "(role:admin",
        "role:admin)",
        "role:admin role:member",
        "admin",
        "role:",
        ":x",
        "project_id:%(project_id)d",
        "not",
        "()",
    ],
)
def test_malformed_check_strings(text: str) -> None:
    with pytest.raises(PolicySyntaxError):
        parse(text)


# -- overrides ------------------------------------------------------------------------------


def _settings(tmp_path: Path, policy: str) -> Settings:
    config = tmp_path / "cindermesh.toml"
    config.write_text(f"[policy]\n{policy}\n")
    return load_settings({"CINDERMESH_CONFIG": str(config)})


def test_override_from_the_configuration(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        '"volume:delete" = "rule:admin_api"\n'
        '"volume:get_all" = "role:auditor or rule:xena_system_admin_or_project_reader"\n'
        '"context_is_admin" = "role:admin or role:cloud-admin"',
    )
    enforcer = Edge(settings).policy
    assert not enforcer.allowed("volume:delete", MEMBER)
    assert enforcer.allowed("volume:delete", ADMIN)
    assert enforcer.allowed("volume:get_all", Caller("a", OTHER, frozenset({"auditor"})))
    # is_admin:True follows context_is_admin, so admin_api does too.
    assert enforcer.allowed("volume:force_delete", Caller("c", OTHER, frozenset({"cloud-admin"})))
    # Rules not overridden keep Cinder's default.
    assert enforcer.allowed("volume:create", MEMBER)
    with pytest.raises(Forbidden, match=r"volume:delete to be performed\.$"):
        authorize(_ctx(MEMBER, enforcer), "volume:delete")


def test_unknown_rule_in_the_configuration_is_an_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path, '"volume:create" = "@"\n"volume:frobnicate" = "@"')
    with pytest.raises(PolicyConfigError, match="unknown rules: volume:frobnicate"):
        Edge(settings)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"volume:create": "role:member and"}, "volume:create: invalid check string"),
        ({"volume:create": "rule:nope"}, "volume:create: no rule 'nope'"),
        (
            {"admin_api": "rule:context_is_admin", "context_is_admin": "rule:admin_api"},
            "refer to each other",
        ),
    ],
)
def test_bad_overrides_are_errors(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(PolicyConfigError, match=message):
        Enforcer(overrides)


def test_policy_section_holds_strings_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="maps rule names to check strings"):
        _settings(tmp_path, '"volume:create" = 1')


# -- every RPC declares its rule ------------------------------------------------------------

#: RPCs Cinder serves without a policy (any authenticated caller; versions: anyone).
NO_RULE = {
    "VersionServicer.ListVersions",
    "VersionServicer.GetVersionV3",
    "InfoServicer.ListAvailabilityZones",
    "InfoServicer.ListExtensions",
    "QuotaServicer.GetLimits",
    # Cinder's group types index and show check no rule.
    "GroupTypeServicer.ListGroupTypes",
    "GroupTypeServicer.GetGroupType",
    # Cinder's attachments show and index check no rule (they read the caller's project's).
    "AttachmentServicer.GetAttachment",
    "AttachmentServicer.ListAttachments",
    "AttachmentServicer.ListAttachmentsDetail",
}


def _servicer_rpcs() -> list[str]:
    names: list[str] = []
    for module_info in pkgutil.walk_packages(services.api.__path__, "services.api."):
        if not module_info.name.endswith(("servicer", "versions")):
            continue
        module = importlib.import_module(module_info.name)
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                continue
            for base in cls.__mro__[1:]:
                if base.__name__.endswith("Servicer") and base.__module__.endswith("_pb2_grpc"):
                    names += [f"{cls.__name__}.{m}" for m in vars(base) if m[0].isupper()]
    return names


def test_every_rpc_names_a_rule_of_the_table() -> None:
    rpcs = _servicer_rpcs()
    assert "VolumeServicer.CreateVolume" in rpcs and "TypeServicer.CreateType" in rpcs
    for name in rpcs:
        assert name in RPC_POLICIES, f"{name} is not an @rpc"
        edge, in_domain = RPC_POLICIES[name]
        if name in NO_RULE:
            assert edge is None and not in_domain, name
        else:
            assert (edge is None) != (not in_domain), f"{name}: policy= or domain_policy="
            assert {edge, *in_domain} - {None} <= set(DEFAULT_RULES), name


def test_representative_rpc_rules() -> None:
    assert RPC_POLICIES["VolumeServicer.CreateVolume"] == ("volume:create", ())
    assert RPC_POLICIES["VolumeServicer.ListVolumesDetail"] == ("volume:get_all", ())
    assert RPC_POLICIES["VolumeServicer.DeleteVolumeMetadataItem"] == (
        "volume:delete_volume_metadata",
        (),
    )
    # Cinder checks it after the body's validation: the domain code does.
    assert RPC_POLICIES["QuotaServicer.UpdateQuotaSet"] == (
        None,
        ("volume_extension:quotas:update",),
    )


def test_an_rpc_names_rules_of_the_table_only() -> None:
    with pytest.raises(ValueError, match="no policy rule 'volume:frobnicate'"):
        rpc(policy="volume:frobnicate")


# -- noauth roles ---------------------------------------------------------------------------


def test_noauth_token_may_narrow_the_roles() -> None:
    assert authenticate("u1:p1", ("admin",)).roles == MEMBER_ROLES
    assert authenticate("u1:p1:reader", ("admin",)) == Caller("u1", "p1", frozenset({"reader"}))
    assert authenticate("u1:p1:", ()).roles == frozenset()
    assert authenticate("admin:p1:reader,admin", ("admin",)).roles == {"reader", "admin"}
    for token in ("u1:p1:admin", "u1:p1:reader,superuser", "u1::reader"):
        with pytest.raises(NotAuthenticated):
            authenticate(token, ("admin",))
