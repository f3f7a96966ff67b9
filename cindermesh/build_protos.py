"""Generates the Python stubs and Envoy's descriptor set from `protos/`.

Run by the setup and test scripts (``python -m cindermesh.build_protos``); the output
(`cindermesh_pb/` and `build/cindermesh.pb`) is never committed nor edited by hand.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import google.api  # googleapis-common-protos: google/api/*.proto
import grpc_tools
from grpc_tools import protoc

__all__ = ["DESCRIPTOR_SET", "REPO_ROOT", "build"]

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "protos"
DESCRIPTOR_SET = REPO_ROOT / "build" / "cindermesh.pb"


def _include_dirs() -> list[Path]:
    googleapis = Path(next(iter(google.api.__path__))).parent.parent
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    return [PROTO_ROOT, googleapis, well_known]


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
    for package_dir in {(REPO_ROOT / p).parent for p in protos}:
        for directory in (package_dir, *package_dir.parents):
            if directory == REPO_ROOT:
                break
            (directory / "__init__.py").touch()
    (REPO_ROOT / "cindermesh_pb" / "py.typed").touch()


if __name__ == "__main__":
    build()
