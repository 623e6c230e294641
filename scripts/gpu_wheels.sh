#!/usr/bin/env bash
# Fill .whl/ with the wheels scripts/gpu_check.sh installs on a GPU machine
# that has its own Python 3.12 with CUDA torch but no package registry.
#
#   bash scripts/gpu_wheels.sh [DIR]        (DIR defaults to .whl at the repo root)
#
# WHEEL_PYTHON=3.11 fetches the same pins for another Python, to rehearse the
# install path here (scripts/gpu_check.sh --cpu --install --wheels DIR).
#
# The pins are what the CPU venv here runs (spaCy's stack, transformers below
# spacy-transformers 1.4's <4.53.3 ceiling and the tokenizers/huggingface_hub
# that transformers needs), so the GPU run tests the versions the tests pass
# on. The GPU image's own transformers 5.x, tokenizers 0.23 and huggingface_hub
# 1.x are too new for spacy-transformers 1.4; the carried ones shadow them on
# PYTHONPATH. Packages the image already has (numpy, requests, tqdm, jinja2,
# pyyaml, regex, safetensors, filelock, fsspec, hf-xet, httpx, rich,
# shellingham, annotated-doc, wrapt, setuptools, wheel, build, packaging) are
# not carried. jieba is not carried: spacy_medner imports it only for word
# features (CharEmbed word_width > 0), which the transformer configs do not use.
#
# The compiled wheels (spaCy, blis, thinc, ...) ship their extensions with
# debug information: spaCy's wheel is 35 MB and blis's 14 MB, over the 64 MiB
# a device call may carry. `strip --strip-debug` removes only the DWARF
# sections (no symbol a Python import resolves), and each stripped wheel is
# repacked with a RECORD of the new hashes, so pip installs it as usual.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/.whl}"
PYTHON="${PYTHON:-python3}"
WHEEL_PYTHON="${WHEEL_PYTHON:-3.12}"

PINS=(
  spacy==3.8.18 thinc==8.3.14 blis==1.3.4 cymem==2.0.16 murmurhash==1.0.16 preshed==3.0.15
  srsly==2.5.6 catalogue==2.0.10 wasabi==1.1.3 confection==1.3.4 weasel==1.0.1
  cloudpathlib==0.26.0 smart_open==9.0.4 spacy-legacy==3.0.12 spacy-loggers==1.0.5
  typer==0.29.2 click==8.5.1
  pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing_extensions==4.16.0
  spacy-transformers==1.4.0 spacy-alignments==0.9.3
  transformers==4.53.2 tokenizers==0.21.4 huggingface_hub==0.36.2
  pytorch-crf==0.7.2
)

command -v strip >/dev/null || { echo "gpu_wheels: 'strip' (binutils) is needed to shrink the compiled wheels" >&2; exit 1; }
mkdir -p "$DEST"
rm -f "$DEST"/*.whl  # one version of each: a stale second version stops the install there
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$WHEEL_PYTHON" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d "$DEST" "${PINS[@]}"

"$PYTHON" - "$DEST" <<'EOF'
"""Strip debug sections from the shared objects of each wheel, rewriting RECORD."""
import base64
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def strip_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zin:
        names = zin.namelist()
        if not any(n.endswith(".so") for n in names):
            return
        files = {n: zin.read(n) for n in names}
    record = next(n for n in names if n.endswith(".dist-info/RECORD"))
    with tempfile.TemporaryDirectory() as tmp:
        for name in [n for n in names if n.endswith(".so")]:
            path = Path(tmp) / "x.so"
            path.write_bytes(files[name])
            subprocess.run(["strip", "--strip-debug", str(path)], check=True)
            files[name] = path.read_bytes()
    lines = [f"{n},{record_hash(d)},{len(d)}" for n, d in files.items() if n != record] + [f"{record},,"]
    files[record] = ("\n".join(lines) + "\n").encode()
    before = wheel.stat().st_size
    tmp_wheel = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp_wheel, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        for name in names:  # keep the original order: dist-info last, as the spec asks
            zout.writestr(name, files[name])
    tmp_wheel.replace(wheel)
    print(f"stripped {wheel.name}: {before / 1e6:.1f} MB -> {wheel.stat().st_size / 1e6:.1f} MB")


for wheel in sorted(Path(sys.argv[1]).glob("*.whl")):
    strip_wheel(wheel)
EOF

ls -l "$DEST"/*.whl | awk '{printf "%10d  %s\n", $5, $NF}'
du -cb "$DEST"/*.whl | tail -1 | awk '{printf "total %.1f MiB in %s\n", $1 / 1048576, "'"$DEST"'"}'
