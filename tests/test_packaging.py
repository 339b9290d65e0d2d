"""pyproject.toml builds without setuptools deprecation warnings."""

import warnings
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).parents[1]


def test_pyproject_license_is_an_spdx_string_setuptools_accepts(monkeypatch):
    from setuptools.config.pyprojecttoml import apply_configuration, load_file
    from setuptools.dist import Distribution

    monkeypatch.chdir(ROOT)  # readme and package discovery are relative to the project
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert [str(w.message).splitlines()[0] for w in caught] == []
    assert dist.metadata.license_expression == "MIT"
    # setuptools reads a license expression from 77 on: the isolated build must not get older
    project = load_file(ROOT / "pyproject.toml")
    [setuptools] = [Requirement(r) for r in project["build-system"]["requires"]
                    if Requirement(r).name == "setuptools"]
    assert not setuptools.specifier.contains("76.9") and setuptools.specifier.contains("77.0")
