"""Generates the Python stubs and Envoy's descriptor set from `protos/`.

Run by the setup and test scripts (``python -m cindermesh.build_protos``); the output
(`cindermesh_pb/` and `build/cindermesh.pb`) is never committed nor edited by hand.

The descriptor set carries Cinder's JSON names, so that Envoy's transcoder prints them itself
(``preserve_proto_field_names: false`` prints each field's ``json_name``): a field's JSON name
is its proto name (Cinder's keys are snake_case), or the ``(cindermesh.api.v1.json_key)`` option
for a key no proto name can spell (``os-vol-host-attr:host``). No response is ever renamed as
text, so map keys and string values reach the client exactly as stored.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import google.api  # googleapis-common-protos: google/api/*.proto
import grpc_tools
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from cindermesh.json_keys import json_key_option

__all__ = ["DESCRIPTOR_SET", "REPO_ROOT", "build", "name_json_fields"]

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "protos"
DESCRIPTOR_SET = REPO_ROOT / "build" / "cindermesh.pb"


def _include_dirs() -> list[Path]:
    googleapis = Path(next(iter(google.api.__path__))).parent.parent
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    return [PROTO_ROOT, googleapis, well_known]


def _messages(
    messages: Iterable[descriptor_pb2.DescriptorProto],
) -> Iterator[descriptor_pb2.DescriptorProto]:
    for message in messages:
        yield message
        yield from _messages(message.nested_type)


def name_json_fields(path: Path) -> None:
    """Sets the ``json_name`` of every field of cindermesh's own messages in the descriptor set
    at ``path``: its ``json_key`` option, else its proto name."""
    # Generated just before; importing it registers the extension, so that parsing keeps it.
    from cindermesh_pb.api.v1 import json_key_pb2  # noqa: F401

    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
    for file in descriptor_set.file:
        if not file.package.startswith("cindermesh."):
            continue
        for message in _messages(file.message_type):
            for field in message.field:
                field.json_name = json_key_option(field.options) or field.name
    path.write_bytes(descriptor_set.SerializeToString())


def build() -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    includes = [f"-I{d}" for d in _include_dirs()]
    DESCRIPTOR_SET.parent.mkdir(parents=True, exist_ok=True)
    stubs = [
        f"--python_out={REPO_ROOT}",
        f"--pyi_out={REPO_ROOT}",
        f"--grpc_python_out={REPO_ROOT}",
    ]
    # Typed gRPC stubs (`*_pb2_grpc.pyi`) from mypy-protobuf, when installed (test extras).
    bin_dir = Path(sys.executable).parent
    if (plugin := shutil.which("protoc-gen-mypy_grpc", path=str(bin_dir))) is not None:
        stubs += [f"--plugin=protoc-gen-mypy_grpc={plugin}", f"--mypy_grpc_out={REPO_ROOT}"]
    descriptor = [
        "--include_imports",
        "--include_source_info",
        f"--descriptor_set_out={DESCRIPTOR_SET}",
    ]
    for args in (stubs, descriptor):
        if protoc.main(["protoc", *includes, *args, *protos]) != 0:
            sys.exit("protoc failed")
    _mark_packages(protos)
    name_json_fields(DESCRIPTOR_SET)


def _mark_packages(protos: list[str]) -> None:
    for package_dir in {(REPO_ROOT / p).parent for p in protos}:
        for directory in (package_dir, *package_dir.parents):
            if directory == REPO_ROOT:
                break
            (directory / "__init__.py").touch()
    (REPO_ROOT / "cindermesh_pb" / "py.typed").touch()


if __name__ == "__main__":
    build()
