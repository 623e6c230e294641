#!/usr/bin/env bash
# GPU check of the transformer workflow (issue 27, part 7): on a machine with
# CUDA, train configs/bert_bigru_mha_crf.cfg for 300 steps on the demo corpus
# with a tiny randomly initialised BERT built offline, with --gpu-id 0; check
# that every torch module of `crf_ner` and `transformer` sits on the GPU;
# `spacy package` it, install the wheel, reload it in a fresh process after
# spacy.require_gpu(0) (the BERT folder removed, the hub off), check placement
# again and predict; print steps/s and peak GPU memory. The work itself is
# scripts/gpu_check.py; results go to $OUT/gpu_check.json when OUT is set.
# Expected to take 2-3 minutes on an H200, installs included (an estimate: not yet run on one).
#
#   bash scripts/gpu_check.sh                  GPU run (exits at once, with a message, without CUDA)
#   OMP_NUM_THREADS=1 bash scripts/gpu_check.sh --cpu   dry run on CPU, 5 steps, current env
#   options: --steps N, --max-train-s S, --workdir DIR, --json PATH (passed on to gpu_check.py);
#            --install / --no-install (default: install on GPU runs, not with --cpu);
#            --install-only (install, print versions, stop); --wheels DIR (default .whl)
#
# A GPU machine with its own Python 3.12 and CUDA torch but no package
# registry gets the rest as wheels in .whl/ at the repo root (git-ignored:
# `echo /.whl/ >> .git/info/exclude`). Make them here, with pip and binutils:
#
#   bash scripts/gpu_wheels.sh        (downloads the pins below, strips debug info, 38.5 MiB in all)
#
# and carry `.whl` with the run. This script installs them with
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SITE .whl/*.whl
# puts $SITE first on PYTHONPATH (shadowing the image's transformers 5.x,
# tokenizers 0.23 and huggingface_hub 1.x, too new for spacy-transformers 1.4),
# then installs spacy_medner from the working tree into $SITE without build
# isolation (its dist-info's entry points register `crf_ner` and the
# architectures, which a packaged pipeline needs in a fresh process). The
# wheels (cp312 manylinux x86-64; sizes after gpu_wheels.sh strips them):
#
#   spacy 3.8.18 .............. 7.1 MB    blis 1.3.4 .............. 13.1 MB
#   transformers 4.53.2 ...... 10.8 MB    tokenizers 0.21.4 ........ 3.1 MB
#   pydantic_core 2.50.5 ...... 2.2 MB    thinc 8.3.14 ............. 0.9 MB
#   srsly 2.5.6 ............... 0.7 MB    huggingface_hub 0.36.2 ... 0.6 MB
#   pydantic 2.14.4 ........... 0.5 MB    spacy_alignments 0.9.3 ... 0.3 MB
#   spacy_transformers 1.4.0 .. 0.2 MB    preshed 3.0.15 ........... 0.2 MB
#   click 8.5.1, typer 0.29.2, smart_open 9.0.4, cloudpathlib 0.26.0, cymem 2.0.16,
#   weasel 1.0.1, typing_extensions 4.16.0, confection 1.3.4, murmurhash 1.0.16,
#   spacy_legacy 3.0.12, wasabi 1.1.3, spacy_loggers 1.0.5, catalogue 2.0.10,
#   typing_inspection 0.4.5, annotated_types 0.8.0, pytorch_crf 0.7.2 (each under 0.2 MB)
#   total: 28 wheels, 40.4 MB (38.5 MiB)
#
# The image's own numpy, torch, cupy, requests, tqdm, jinja2, pyyaml, regex,
# safetensors, filelock, fsspec, hf-xet, httpx, rich, shellingham,
# annotated-doc, wrapt, setuptools, wheel and build are used as they are.
# jieba is not needed: spacy_medner imports it only for word features.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
MODE=gpu
INSTALL=auto
INSTALL_ONLY=0
WHEELS="$ROOT/.whl"
PASS=()
while (($#)); do
  case "$1" in
    --cpu) MODE=cpu ;;
    --install) INSTALL=yes ;;
    --no-install) INSTALL=no ;;
    --install-only) INSTALL_ONLY=1 ;;
    --wheels) WHEELS="$2"; shift ;;
    --steps | --workdir | --json | --max-train-s) PASS+=("$1" "$2"); shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown option $1 (see --help)" >&2; exit 1 ;;
  esac
  shift
done

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
# No registry anywhere in this check: a pip that tried one would hang on a machine without a network.
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

if [[ $MODE == gpu ]] && ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: no CUDA GPU here ($PY's torch is missing or torch.cuda.is_available() is False); nothing was run." >&2
  echo "gpu_check: for the dry run on CPU use: OMP_NUM_THREADS=1 bash scripts/gpu_check.sh --cpu" >&2
  exit 1
fi

if [[ $INSTALL == auto ]]; then
  if [[ $MODE == gpu ]]; then INSTALL=yes; else INSTALL=no; fi
fi
if [[ $INSTALL == yes ]]; then
  shopt -s nullglob
  wheels=("$WHEELS"/*.whl)
  shopt -u nullglob
  SITE="${GPU_CHECK_SITE:-/tmp/gpu_check_site}"
  rm -rf "$SITE"
  start=$SECONDS
  if ((${#wheels[@]})); then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}"
  elif ! "$PY" -c 'import spacy, spacy_transformers, torchcrf' 2>/dev/null; then
    echo "gpu_check: no wheels in $WHEELS and $PY lacks spaCy's stack: run 'bash scripts/gpu_wheels.sh' where pip works and carry .whl" >&2
    exit 1
  fi
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  # Build from a copy, so the working tree gets no build/ or egg-info folders.
  src="$(mktemp -d)"
  cp -r pyproject.toml setup.cfg README.md spacy_medner "$src/"
  find "$src" -name __pycache__ -prune -exec rm -rf {} +
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir --target "$SITE" "$src"
  rm -rf "$src"
  echo "gpu_check: installed ${#wheels[@]} wheels and spacy_medner (working tree) into $SITE in $((SECONDS - start)) s"
fi

if ((INSTALL_ONLY)); then
  "$PY" scripts/gpu_check.py versions
  exit 0
fi
if [[ $MODE == cpu ]]; then PASS+=(--cpu); fi
exec "$PY" scripts/gpu_check.py run ${PASS[@]+"${PASS[@]}"}  # (the +-form: an empty array under set -u on older bash)
