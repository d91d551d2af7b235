"""Generate the Python code for the .proto contracts, or check that the committed code is fresh.

`python -m schemas.generate` rewrites `schemas/liveops/v1/`; `--check` exits 1 when the committed
code differs from what the current .proto files produce. protoc writes absolute imports named
after the proto package (`from liveops.v1 import ...`); they are rewritten to the importable
`schemas.liveops.v1` so that no top-level `liveops` package is needed.
"""

from __future__ import annotations

import argparse
import importlib.resources
import subprocess
import sys
import tempfile
from pathlib import Path

SCHEMAS_DIR = Path(__file__).resolve().parent
PROTO_ROOT = SCHEMAS_DIR / "proto"
OUTPUT_DIR = SCHEMAS_DIR / "liveops" / "v1"
_IMPORT_FROM = "from liveops.v1 import"
_IMPORT_TO = "from schemas.liveops.v1 import"


def render() -> dict[str, str]:
    """Run protoc on every .proto file and return generated file name -> text."""
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            *protos,
        ]
        subprocess.run(command, check=True)  # noqa: S603 - fixed argv, our own interpreter
        generated = Path(out) / "liveops" / "v1"
        return {
            path.name: path.read_text().replace(_IMPORT_FROM, _IMPORT_TO)
            for path in sorted(generated.iterdir())
            if path.suffix in {".py", ".pyi"}
        }


def stale_files(rendered: dict[str, str]) -> list[str]:
    """Names of generated files missing, different or left over in OUTPUT_DIR."""
    present = {p.name for p in OUTPUT_DIR.glob("*_pb2.py*")}
    stale = [
        n
        for n, text in rendered.items()
        if not (OUTPUT_DIR / n).exists() or (OUTPUT_DIR / n).read_text() != text
    ]
    return sorted(stale + list(present - rendered.keys()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when committed code is stale")
    args = parser.parse_args()
    rendered = render()
    if args.check:
        stale = stale_files(rendered)
        if stale:
            print(f"generated protobuf code is stale: {', '.join(stale)}; run `make proto`")
            return 1
        print(f"generated protobuf code is fresh ({len(rendered)} files)")
        return 0
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    for leftover in OUTPUT_DIR.glob("*_pb2.py*"):
        leftover.unlink()
    for name, text in rendered.items():
        (OUTPUT_DIR / name).write_text(text)
    print(f"wrote {len(rendered)} files to {OUTPUT_DIR.relative_to(SCHEMAS_DIR.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
