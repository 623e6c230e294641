"""The GPU check of configs/bert_bigru_mha_crf.cfg: train, check placement,
package, reload, predict. Run it through scripts/gpu_check.sh, which installs
the carried wheels first; the header there says what it needs and how to run it.

    python scripts/gpu_check.py run [--cpu] [--steps N] [--workdir DIR] [--json PATH]
    python scripts/gpu_check.py versions

`run` trains in this process through the same functions `spacy train
--gpu-id 0` calls (setup_gpu, init_nlp, spacy.training.loop.train), so the live
pipeline can be inspected after its last update: every torch module that
`crf_ner` and `transformer` hold must have all its parameters and buffers on
the GPU. The pipeline is then packaged with `spacy package` and the wheel
installed into a folder of its own; a fresh process (`reload`) calls
`spacy.require_gpu(0)` before `spacy.load`, with the tiny BERT's folder removed
and the hub off, checks placement again and predicts the dev texts with the
installed package and with the trained directory, which must agree.

`--cpu` is the dry mode for a machine without CUDA: the same steps on CPU
(5 training steps by default), with "cpu" as the device every module must be on.

Figures: steps/s over the training run (median step interval, and the whole
run's wall time, which includes the evaluations), peak GPU memory from
torch.cuda.max_memory_allocated (the config sets gpu_allocator = "pytorch",
so CuPy's arrays come from torch's allocator and are counted too), and dev
docs/s of the reloaded package. Results go to $OUT/gpu_check.json when OUT is
set, and to the work folder.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "bert_bigru_mha_crf.cfg"
DEMO = ROOT / "assets" / "demo"
PACKAGE_NAME, PACKAGE_VERSION = "gpucheck", "0.0.1"
CHECKED_PIPES = ("transformer", "crf_ner")
VERSIONED = (
    "torch", "cupy", "numpy", "spacy", "thinc", "spacy_transformers", "transformers",
    "tokenizers", "huggingface_hub", "torchcrf", "pydantic", "typer", "click", "spacy_medner",
)

# No hub: the tiny BERT is built locally, and the reload must work without it.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


def versions() -> Dict[str, str]:
    """Version and location of each package the check runs on, so a report
    shows whether the carried wheels (and not the image's own) were used."""
    import importlib
    from importlib.metadata import PackageNotFoundError, version as dist_version

    found = {}
    for name in VERSIONED:
        try:
            module = importlib.import_module(name)
        except Exception as err:  # a missing or broken package is a finding, not a crash here
            found[name] = f"unavailable ({type(err).__name__}: {err})"
            continue
        try:
            version = dist_version({"torchcrf": "pytorch-crf", "cupy": "cupy-cuda13x"}.get(name, name))
        except PackageNotFoundError:
            version = getattr(module, "__version__", "?")
        found[name] = f"{version} ({Path(getattr(module, '__file__', '') or '?').parent})"
    return found


def make_tiny_bert(path: Path) -> str:
    """A tiny random BERT over the demo corpus's characters, saved offline.

    Like the tests' `tiny_bert` fixture, but with 512 positions: the config's
    strided span getter feeds windows of 256 wordpieces (plus [CLS]/[SEP])."""
    import srsly
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True)
    chars = sorted({c for f in ("train.jsonl", "dev.jsonl") for r in srsly.read_jsonl(DEMO / f) for c in r["text"]})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [c.lower() for c in chars] + list("abcdefghijklmnopqrstuvwxyz0123456789")
    (path / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf8")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True, tokenize_chinese_chars=True)
    tokenizer.save_pretrained(str(path))
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=512,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(path))
    return str(path)


def torch_modules(pipe: Any) -> List[Tuple[str, Any]]:
    """Every torch module a component holds: those behind the shims of its
    thinc model's layers (thinc's PyTorchShim, spacy-transformers' HFShim), any
    a layer keeps in its attrs, and any on the component itself. Deduplicated,
    so a module reached twice is checked once."""
    import torch

    found: Dict[int, Tuple[str, Any]] = {}

    def add(where: str, obj: Any) -> None:
        if isinstance(obj, torch.nn.Module) and id(obj) not in found:
            found[id(obj)] = (f"{where}:{type(obj).__name__}", obj)

    model = getattr(pipe, "model", None)
    for node in model.walk() if model is not None else []:
        for shim in node.shims:
            add(f"{node.name}/shim", getattr(shim, "_model", None))
        for key, value in node.attrs.items():
            add(f"{node.name}/attrs[{key}]", value)
    for key, value in vars(pipe).items():
        add(f"component.{key}", value)
    return list(found.values())


def placement(nlp: Any, device_type: str, gpu_id: int) -> Dict[str, Any]:
    """Where each checked component's torch parameters and buffers live. `ok`
    needs at least one torch tensor per component and every tensor on
    `device_type` (and on GPU `gpu_id`): a component whose modules the walk
    cannot find fails rather than passing with nothing checked."""
    report: Dict[str, Any] = {"ok": True, "components": {}}
    for name in CHECKED_PIPES:
        if name not in nlp.pipe_names:
            report["components"][name] = {"ok": False, "error": f"no pipe {name!r} in {nlp.pipe_names}"}
            report["ok"] = False
            continue
        modules, n_tensors, ok = [], 0, True
        for where, module in torch_modules(nlp.get_pipe(name)):
            tensors = list(module.parameters()) + list(module.buffers())
            devices = sorted({str(t.device) for t in tensors})
            good = all(t.device.type == device_type and (device_type != "cuda" or t.device.index == gpu_id) for t in tensors)
            modules.append({"module": where, "tensors": len(tensors), "devices": devices, "ok": good})
            n_tensors += len(tensors)
            ok = ok and good
        ok = ok and n_tensors > 0
        report["components"][name] = {"ok": ok, "tensors": n_tensors, "modules": modules}
        report["ok"] = report["ok"] and ok
    return report


def entity_tuples(docs: List[Any]) -> List[List[Tuple[int, int, str]]]:
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs]


def run_step(log: Dict[str, Any], name: str, cmd: List[str], quiet: bool = False, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run a command and record its time; its output is echoed, or with
    `quiet` kept in the work folder. A failure raises with the output's tail."""
    print(f"\n=== {name}: {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    log.setdefault("timings_s", {})[name] = round(time.perf_counter() - start, 2)
    if not quiet:
        print(proc.stdout, end="", flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed (exit {proc.returncode}): {proc.stdout.strip()[-1500:]}")
    return proc


def train(result: Dict[str, Any], work: Path, bert: str, steps: int, gpu_id: int, max_train_s: float) -> Tuple[Any, Path]:
    """`spacy train CONFIG --gpu-id N` done in this process, with a timer on
    each update. The timer wraps the `nlp.update` the training loop calls, on
    this one object only; a `before_update` callback would do the same but be
    written into the saved config, which the packaged pipeline would then need
    this script to load."""
    import torch
    from spacy import util
    from spacy.cli._util import setup_gpu
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train as train_nlp
    from thinc.api import get_current_ops

    overrides = {
        "paths.train": str(work / "train.spacy"),
        "paths.dev": str(work / "dev.spacy"),
        "components.transformer.model.name": bert,
        "training.max_steps": steps,
    }
    optional = {
        # The config evaluates every 500 steps: three evaluations in the run, so model-best is a trained model.
        "training.eval_frequency": max(steps // 3, 1),
        # A 500-step warm-up would keep the learning rate near zero for the whole short run.
        "training.optimizer.learn_rate.warmup_steps": max(steps // 10, 1),
    }
    raw = util.load_config(CONFIG, interpolate=False)
    for key, value in optional.items():  # only where the config (which others edit) still has the key
        section: Any = raw
        for part in key.split(".")[:-1]:
            section = section.get(part, {}) if isinstance(section, dict) else {}
        if isinstance(section, dict) and key.split(".")[-1] in section:
            overrides[key] = value
    result["train"] = {"config": str(CONFIG.relative_to(ROOT)), "overrides": overrides, "gpu_id": gpu_id}
    setup_gpu(gpu_id)
    config = util.load_config(CONFIG, overrides=overrides, interpolate=False)
    start = time.perf_counter()
    nlp = init_nlp(config, use_gpu=gpu_id)
    result["train"]["init_s"] = round(time.perf_counter() - start, 2)

    stamps: List[float] = []
    update = nlp.update
    device_type = "cuda" if gpu_id >= 0 else "cpu"

    def timed_update(*args: Any, **kwargs: Any) -> Any:
        stamps.append(time.perf_counter())
        if len(stamps) == 2:  # after the first update: a pipeline on the wrong device fails here, not 300 steps later
            result["placement_after_first_update"] = first = placement(nlp, device_type, gpu_id)
            if not first["ok"]:
                raise RuntimeError(f"torch modules not all on {device_type} after the first update: {json.dumps(first)[:1500]}")
        if stamps[-1] - stamps[0] > max_train_s:
            raise RuntimeError(f"training ran past --max-train-s {max_train_s} s after {len(stamps) - 1} updates")
        return update(*args, **kwargs)

    nlp.update = timed_update
    (work / "training").mkdir(parents=True, exist_ok=True)  # as `spacy train` does before it saves there
    if gpu_id >= 0:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    nlp, _ = train_nlp(nlp, work / "training", use_gpu=gpu_id, stdout=sys.stdout, stderr=sys.stderr)
    if gpu_id >= 0:
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    del nlp.update
    intervals = sorted(b - a for a, b in zip(stamps, stamps[1:]))
    median = intervals[len(intervals) // 2] if intervals else float("nan")
    meta = json.loads((work / "training" / "model-best" / "meta.json").read_text(encoding="utf8"))
    result["train"].update({
        "updates": len(stamps),
        "wall_s": round(wall, 2),
        "steps_per_s_wall": round(len(stamps) / wall, 2),
        "steps_per_s_median_step": round(1 / median, 2) if intervals else None,
        "best_ents_f": meta.get("performance", {}).get("ents_f"),
        "ops": type(get_current_ops()).__name__,
    })
    if gpu_id >= 0:
        result["train"]["peak_gpu_mem_allocated_mib"] = round(torch.cuda.max_memory_allocated(gpu_id) / 2**20, 1)
        result["train"]["peak_gpu_mem_reserved_mib"] = round(torch.cuda.max_memory_reserved(gpu_id) / 2**20, 1)
    return nlp, work / "training" / "model-best"


def build_package(result: Dict[str, Any], work: Path, model: Path) -> Optional[Path]:
    """`spacy package` the model, build its wheel without build isolation (no
    registry to fetch setuptools into an isolated environment), install it
    into a folder of its own. Returns that folder, or None where no wheel
    could be built, in which case the reload uses the package's data folder."""
    import importlib.util

    pkg = result["package"] = {}
    out = work / "packages"
    out.mkdir(parents=True, exist_ok=True)
    run_step(result, "spacy package", quiet=True, cmd=[
        sys.executable, "-m", "spacy", "package", str(model), str(out), "--name", PACKAGE_NAME,
        "--version", PACKAGE_VERSION, "--build", "none", "--force",
    ])
    folder = out / f"zh_{PACKAGE_NAME}-{PACKAGE_VERSION}"
    meta = json.loads((folder / "meta.json").read_text(encoding="utf8"))
    pkg["requirements"] = meta.get("requirements", [])
    names = {r.split(">")[0].split("<")[0].split("=")[0].replace("_", "-").lower() for r in pkg["requirements"]}
    pkg["requires_spacy_medner_and_spacy_transformers"] = {"spacy-medner", "spacy-transformers"} <= names
    dist = work / "dist"
    builders = []
    if importlib.util.find_spec("build") is not None:
        builders.append(("python -m build --no-isolation", [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(folder)]))
    builders.append(("pip wheel --no-build-isolation", [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "--no-build-isolation", "-w", str(dist), str(folder)]))
    for how, cmd in builders:
        try:
            run_step(result, f"build wheel ({how})", quiet=True, cmd=cmd)
        except RuntimeError as err:
            print(f"! {err}", flush=True)
            continue
        wheels = sorted(dist.glob("*.whl"))
        if wheels:
            pkg.update({"wheel": wheels[0].name, "built_with": how})
            break
    else:
        pkg["wheel"] = None
        pkg["note"] = "no wheel could be built here: the reload loads the package's data folder instead"
        print(f"! {pkg['note']}", flush=True)
        return None
    site = work / "pkgsite"
    run_step(result, "install package wheel", quiet=True, cmd=[
        sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-compile", "--target", str(site), str(dist / pkg["wheel"]),
    ])
    return site


def reload_in_fresh_process(result: Dict[str, Any], work: Path, site: Optional[Path], model: Path, gpu_id: int) -> None:
    folder = work / "packages" / f"zh_{PACKAGE_NAME}-{PACKAGE_VERSION}" / f"zh_{PACKAGE_NAME}" / f"zh_{PACKAGE_NAME}-{PACKAGE_VERSION}"
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    out = work / "reload.json"
    run_step(result, "reload in a fresh process", [
        sys.executable, str(Path(__file__).resolve()), "reload", "--gpu-id", str(gpu_id),
        "--package", f"zh_{PACKAGE_NAME}" if site is not None else str(folder),
        "--directory", str(model), "--site", str(site or ""), "--out", str(out),
    ], env=env)
    result["reload"] = json.loads(out.read_text(encoding="utf8"))


def reload(args: argparse.Namespace) -> int:
    """The fresh process: require the GPU before loading (as a user's app
    does), load the installed package without importing spacy_medner (its
    entry points must register `crf_ner`), check placement, predict."""
    import srsly

    report: Dict[str, Any] = {"spacy_medner_imported_before_load": "spacy_medner" in sys.modules}
    import spacy

    if args.gpu_id >= 0:
        report["require_gpu"] = spacy.require_gpu(args.gpu_id)
        preflight_gpu(report)
    else:
        spacy.require_cpu()
    from thinc.api import get_current_ops

    start = time.perf_counter()
    nlp = spacy.load(args.package)
    report["load_s"] = round(time.perf_counter() - start, 2)
    if args.site:
        import importlib.util

        origin = importlib.util.find_spec(args.package).origin
        report["loaded_from"] = origin
        report["loaded_from_installed_wheel"] = origin is not None and origin.startswith(args.site)
    report["ops"] = type(get_current_ops()).__name__
    report["pipe_names"] = nlp.pipe_names
    report["placement"] = placement(nlp, "cuda" if args.gpu_id >= 0 else "cpu", args.gpu_id)
    texts = [r["text"] for r in srsly.read_jsonl(DEMO / "dev.jsonl")]
    list(nlp.pipe(texts[:8]))  # warm-up: first CUDA kernels, cuBLAS handles
    if args.gpu_id >= 0:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=64))
    if args.gpu_id >= 0:
        torch.cuda.synchronize()
        report["peak_gpu_mem_allocated_mib"] = round(torch.cuda.max_memory_allocated(args.gpu_id) / 2**20, 1)
    elapsed = time.perf_counter() - start
    predicted = entity_tuples(docs)
    report.update({
        "docs": len(docs), "entities": sum(map(len, predicted)),
        "docs_per_s": round(len(docs) / elapsed, 1), "chars_per_s": round(sum(map(len, texts)) / elapsed),
        "example": {"text": texts[0], "ents": predicted[0]},
    })
    directory = spacy.load(args.directory)
    same = entity_tuples(list(directory.pipe(texts, batch_size=64)))
    report["docs_differing_from_trained_directory"] = sum(a != b for a, b in zip(predicted, same))
    Path(args.out).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf8")
    return 0


def check_gpu_backends(result: Dict[str, Any], gpu_id: int) -> None:
    """Fail early, with the reason, where thinc cannot reach the GPU: spaCy's
    --gpu-id needs CuPy as well as CUDA torch."""
    import torch
    from thinc import compat

    result["cuda"] = {
        "torch_cuda": torch.cuda.is_available(), "torch_cuda_version": torch.version.cuda,
        "device_name": torch.cuda.get_device_name(gpu_id) if torch.cuda.is_available() else None,
        "thinc_has_cupy": compat.has_cupy, "thinc_has_cupy_gpu": compat.has_cupy_gpu,
    }
    if not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA device")
    if not compat.has_cupy_gpu:
        try:
            import cupy
            import cupy.cublas  # noqa: F401
            import cupyx  # noqa: F401

            cupy.cuda.runtime.getDeviceCount()
            reason = "CuPy imports and sees a device, yet thinc.compat says no"
        except Exception as err:
            reason = f"{type(err).__name__}: {err}"
        raise RuntimeError(f"thinc cannot use the GPU (spaCy's --gpu-id needs CuPy): {reason}")


def preflight_gpu(report: Dict[str, Any]) -> None:
    """Two things spaCy on GPU needs from CuPy that this image's CuPy (14, for
    CUDA 13) is newer than thinc 8.3 was tested with: thinc's own CUDA kernels
    compile (thinc asks NVRTC for --std=c++11), and arrays pass between CuPy
    and torch through DLPack. Where thinc's kernels do not compile as shipped,
    they are recompiled with --std=c++17 so the rest of the check can run, and
    the report says so: a user on this stack would meet the failure."""
    import cupy
    import torch
    from thinc.api import torch2xp, xp2torch
    from thinc.backends import _custom_kernels as kernels

    try:
        kernels.KERNELS.get_function("reduce_sum<float>")  # compiles the whole module
        report["thinc_kernels_compile_as_shipped"] = True
    except Exception as err:
        report["thinc_kernels_compile_as_shipped"] = False
        report["thinc_kernels_error"] = f"{type(err).__name__}: {str(err)[-1500:]}"
        kernels.KERNELS = cupy.RawModule(code=kernels.KERNELS_SRC, options=("--std=c++17",), name_expressions=kernels.KERNELS_LIST)
        kernels.KERNELS.get_function("reduce_sum<float>")
        report["workaround"] = "thinc's CUDA kernels recompiled with --std=c++17 for this run"
        print(f"! thinc's CUDA kernels failed to compile as shipped; {report['workaround']}: {report['thinc_kernels_error'][:300]}", flush=True)
    x = cupy.arange(6, dtype="float32").reshape(2, 3)
    t = xp2torch(x, device=torch.device("cuda", x.device.id))
    y = torch2xp(t * 2)
    report["dlpack_round_trip"] = bool(t.device.type == "cuda" and isinstance(y, cupy.ndarray) and cupy.allclose(y, x * 2))
    torch.cuda.synchronize()


def run(args: argparse.Namespace) -> int:
    gpu_id = -1 if args.cpu else 0
    steps = args.steps or (5 if args.cpu else 300)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    result: Dict[str, Any] = {"mode": "cpu-dry-run" if args.cpu else "gpu", "steps": steps, "workdir": str(work)}
    outputs = [work / "gpu_check.json"] + ([Path(args.json)] if args.json else []) + ([Path(os.environ["OUT"]) / "gpu_check.json"] if os.environ.get("OUT") else [])
    start = time.perf_counter()
    try:
        if args.cpu:
            import torch

            torch.set_num_threads(1)
        else:
            check_gpu_backends(result, gpu_id)
            preflight_gpu(result["cuda"])
        result["versions"] = versions()
        for name, version in result["versions"].items():
            print(f"  {name:18} {version}")
        bert = make_tiny_bert(work / "tiny_bert")
        for split in ("train", "dev"):
            run_step(result, f"convert {split}", [
                sys.executable, "-m", "spacy_medner", "convert", "doccano", str(DEMO / f"{split}.jsonl"),
                "--output", str(work / f"{split}.spacy"), "--max-length", "256", "--quiet",
            ])
        nlp, best = train(result, work, bert, steps, gpu_id, args.max_train_s)
        result["placement_after_training"] = placement(nlp, "cpu" if args.cpu else "cuda", gpu_id)
        del nlp
        site = build_package(result, work, best)
        # The package must carry the transformer's weights: hide the BERT folder before the reload.
        shutil.rmtree(work / "tiny_bert")
        reload_in_fresh_process(result, work, site, best, gpu_id)
        rel = result["reload"]
        result["checks"] = {
            # spaCy counts steps from 0 and stops after step max_steps: max_steps + 1 updates.
            "trained_all_steps": result["train"]["updates"] == steps + 1,
            "torch_modules_on_device_after_training": result["placement_after_training"]["ok"],
            "package_requires_spacy_medner_and_spacy_transformers": result["package"]["requires_spacy_medner_and_spacy_transformers"],
            "reload_did_not_import_spacy_medner_first": not rel["spacy_medner_imported_before_load"],
            "torch_modules_on_device_after_reload": rel["placement"]["ok"],
            "reloaded_package_predicts_like_trained_directory": rel["docs_differing_from_trained_directory"] == 0,
        }
        if site is not None:
            result["checks"]["reloaded_from_installed_wheel"] = rel["loaded_from_installed_wheel"]
        if not args.cpu:
            result["checks"]["thinc_kernels_compile_as_shipped"] = result["cuda"]["thinc_kernels_compile_as_shipped"]
            result["checks"]["cupy_torch_dlpack_round_trip"] = result["cuda"]["dlpack_round_trip"]
            result["checks"]["thinc_ops_are_cupy"] = result["train"]["ops"] == "CupyOps" and rel["ops"] == "CupyOps"
        result["ok"] = all(result["checks"].values())
    except Exception as err:
        result["ok"] = False
        result["error"] = f"{type(err).__name__}: {err}"
        result["traceback"] = traceback.format_exc()
        traceback.print_exc()
    result["total_s"] = round(time.perf_counter() - start, 1)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    for path in outputs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf8")
    summarize(result, outputs)
    return 0 if result["ok"] else 1


def summarize(result: Dict[str, Any], outputs: List[Path]) -> None:
    print("\n=== gpu_check summary")
    train = result.get("train", {})
    rel = result.get("reload", {})
    if "cuda" in result:
        cuda = result["cuda"]
        print(f"  device: {cuda.get('device_name')} (CUDA {cuda.get('torch_cuda_version')}); thinc has_cupy_gpu={cuda.get('thinc_has_cupy_gpu')}")
        if "workaround" in cuda:
            print(f"  ! {cuda['workaround']}; as shipped: {cuda.get('thinc_kernels_error', '')[:500]}")
    for key in ("updates", "wall_s", "steps_per_s_wall", "steps_per_s_median_step", "peak_gpu_mem_allocated_mib", "peak_gpu_mem_reserved_mib", "best_ents_f", "ops"):
        if key in train:
            print(f"  train.{key}: {train[key]}")
    for key in ("load_s", "ops", "docs", "entities", "docs_per_s", "chars_per_s", "peak_gpu_mem_allocated_mib", "docs_differing_from_trained_directory"):
        if key in rel:
            print(f"  reload.{key}: {rel[key]}")
    if "package" in result:
        print(f"  package: wheel={result['package'].get('wheel')} requirements={result['package'].get('requirements')}")
    for name, ok in result.get("checks", {}).items():
        print(f"  {'✔' if ok else '✘'} {name}")
    if "error" in result:
        print(f"  ✘ error: {result['error']}")
    print(f"  total {result['total_s']} s; {'PASSED' if result['ok'] else 'FAILED'}; results in {', '.join(map(str, outputs))}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="train, check placement, package, reload, predict")
    p_run.add_argument("--cpu", action="store_true", help="dry mode on CPU (no CUDA needed)")
    p_run.add_argument("--steps", type=int, default=0, help="training steps (default 300 on GPU, 5 with --cpu)")
    p_run.add_argument("--max-train-s", type=float, default=300.0, help="stop training after this many seconds (keeps a GPU lease bounded)")
    p_run.add_argument("--workdir", default="", help="work folder (default: a new temporary folder)")
    p_run.add_argument("--json", default="", help="also write the results here")
    p_reload = sub.add_parser("reload", help="(internal) the fresh process that loads the package")
    p_reload.add_argument("--gpu-id", type=int, required=True)
    p_reload.add_argument("--package", required=True)
    p_reload.add_argument("--directory", required=True)
    p_reload.add_argument("--site", default="")
    p_reload.add_argument("--out", required=True)
    sub.add_parser("versions", help="print the versions and locations of the packages the check uses")
    args = parser.parse_args()
    if args.command == "versions":
        for name, version in versions().items():
            print(f"  {name:18} {version}")
        return 0
    return run(args) if args.command == "run" else reload(args)


if __name__ == "__main__":
    sys.exit(main())
