"""project.yml: every workflow can run from a fresh clone, in order, without
running it (the `all` workflow itself runs in .ci/run)."""
import re
from pathlib import Path
from typing import Dict, List

import pytest
import srsly
from weasel.util import load_project_config

ROOT = Path(__file__).resolve().parents[1]
PROJECT = load_project_config(ROOT)  # validates the schema and substitutes vars
COMMANDS = {command["name"]: command for command in PROJECT["commands"]}


def normalised(paths: List[str]) -> List[str]:
    return [Path(path).as_posix() for path in paths]


def produced(command: Dict) -> List[str]:
    return normalised(command.get("outputs", []) + command.get("outputs_no_cache", []))


@pytest.mark.parametrize("workflow", sorted(PROJECT["workflows"]))
def test_every_dependency_is_in_the_repository_or_made_by_an_earlier_step(workflow):
    made = set()
    for step in PROJECT["workflows"][workflow]:
        assert step in COMMANDS, f"workflow {workflow}: no command {step!r}"
        for dep in normalised(COMMANDS[step].get("deps", [])):
            assert dep in made or (ROOT / dep).exists(), f"workflow {workflow}, step {step}: nothing makes {dep}"
        made.update(produced(COMMANDS[step]))


@pytest.mark.parametrize("workflow", sorted(PROJECT["workflows"]))
def test_every_trained_model_is_evaluated(workflow):
    """A workflow that trains a model-best and never scores it leaves the user
    without the one figure they ran it for."""
    steps = PROJECT["workflows"][workflow]
    for i, step in enumerate(steps):
        for model in (path for path in produced(COMMANDS[step]) if path.endswith("model-best")):
            later = {dep for after in steps[i + 1:] for dep in normalised(COMMANDS[after].get("deps", []))}
            assert model in later, f"workflow {workflow}: {step} trains {model}, which no later step evaluates"


RAW = srsly.read_yaml(ROOT / "project.yml")  # before substitution: which var each step reads
RAW_COMMANDS = {command["name"]: command for command in RAW["commands"]}


def test_a_users_files_by_absolute_path_are_the_convert_steps_dependencies(tmp_path):
    """Weasel checks each dep as project_dir / dep: an absolute path must stay
    absolute (a "./" prefix made it relative), two paths must stay two
    entries, and a folder (brat) counts as present."""
    train, dev = tmp_path / "my corpus" / "train.txt", tmp_path / "brat_dev"
    train.parent.mkdir()
    train.write_text("{}\n", encoding="utf8")
    dev.mkdir()
    config = load_project_config(ROOT, overrides={"vars.train": str(train), "vars.dev": str(dev)})
    deps = {command["name"]: command for command in config["commands"]}["convert"]["deps"]
    assert [(ROOT / dep) for dep in deps] == [train, dev]
    assert all((ROOT / dep).exists() for dep in deps)
    missing = load_project_config(ROOT, overrides={"vars.train": str(tmp_path / "absent.txt")})
    convert = {command["name"]: command for command in missing["commands"]}["convert"]
    assert not (ROOT / convert["deps"][0]).exists()


def test_visualize_renders_the_converted_dev_set_whatever_the_format():
    (script,) = COMMANDS["visualize"]["script"]
    assert "corpus/dev.spacy" in script and "corpus/dev.spacy" in COMMANDS["visualize"]["deps"]
    assert "${vars.dev}" not in RAW_COMMANDS["visualize"]["script"][0]


def test_all_transformer_runs_all_with_every_var_forwarded():
    """all-transformer is the `all` workflow with other vars, not a copy of its
    commands: it must forward every var those commands read (a var it forgot
    would silently take its default in the nested run) and swap in the
    transformer config and budget."""
    (script,) = RAW_COMMANDS["all-transformer"]["script"]
    assert script.split()[:6] == ["python", "-m", "spacy", "project", "run", "all"]
    forwarded = dict(re.findall(r"--vars\.(\w+) \$\{vars\.(\w+)\}", script))
    read = {var for step in RAW["workflows"]["all"] for var in re.findall(r"\$\{vars\.(\w+)\}", str(RAW_COMMANDS[step]))}
    assert read <= set(forwarded), f"all-transformer does not forward {sorted(read - set(forwarded))}"
    swapped = {"config": "transformer_config", "max_steps": "transformer_steps"}
    assert {var: forwarded[var] for var in swapped} == swapped
    assert all(source == var for var, source in forwarded.items() if var not in swapped)
    assert "transformer_steps" in PROJECT["vars"] and "max_steps" in PROJECT["vars"]


def test_every_step_that_loads_a_model_calls_require_gpu_first():
    """--gpu-id makes spaCy call require_gpu() before the pipeline is built, so
    torch modules are created on the device; a step without it loads on CPU."""
    loading = re.compile(r"spacy (train|evaluate|pretrain)\b|scripts/visualize\.py")
    for name, command in RAW_COMMANDS.items():
        for line in command["script"]:
            if loading.search(line):
                assert "--gpu-id ${vars.gpu_id}" in line, f"{name}: {line}"


@pytest.mark.parametrize("config", sorted(path.name for path in (ROOT / "configs").glob("*.cfg")))
def test_the_train_commands_transformer_name_reaches_every_transformer_config(config):
    """`train` passes --paths.transformer_name to every config: a transformer
    config must read its weights from it; the others just ignore the extra path."""
    from spacy.util import load_config

    train = RAW_COMMANDS["train"]["script"][0]
    assert "--paths.transformer_name ${vars.transformer_name}" in train
    loaded = load_config(ROOT / "configs" / config, overrides={"paths.transformer_name": "/models/my-bert"}, interpolate=True)
    if "transformer" in loaded["components"]:
        assert loaded["components"]["transformer"]["model"]["name"] == "/models/my-bert"
