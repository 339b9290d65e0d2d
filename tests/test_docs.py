"""The README stays true: it starts with the two commands and documents every config key."""

from pathlib import Path

from pydantic import BaseModel

from soccerlab.cli import build_parser
from soccerlab.config import Config

README = (Path(__file__).parents[1] / "README.md").read_text()


def leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        sub = next((a for a in (field.annotation, *getattr(field.annotation, "__args__", ()))
                    if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if sub is not None and name != "normalize":
            keys += leaf_keys(sub, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def test_readme_starts_with_the_two_commands():
    head = README.splitlines()[:8]
    assert any("make train" in line for line in head) and any("make test" in line for line in head)


def test_every_config_key_is_documented():
    missing = [k for k in leaf_keys(Config) if f"`{k}`" not in README]
    assert not missing, f"README lacks: {missing}"


def test_every_command_is_documented():
    commands = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001
    assert all(f"soccerlab {name}" in README for name in commands)
