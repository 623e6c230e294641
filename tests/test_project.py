"""project.yml: every workflow can run from a fresh clone, in order, without
running it (the `all` workflow itself runs in .ci/run)."""
from pathlib import Path
from typing import Dict, List

import pytest
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
