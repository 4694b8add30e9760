"""What a user needs to use and report on the package: a licence, a version, a changelog."""

from importlib.metadata import version
from pathlib import Path

import tomllib
from click.testing import CliRunner

import lrpredict
from lrpredict.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def test_release_license_is_apache_in_file_and_metadata() -> None:
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]


def test_release_version_comes_from_package_metadata() -> None:
    assert lrpredict.__version__ == version("lrpredict")


def test_release_cli_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"lrpredict, version {lrpredict.__version__}"


def test_release_changelog_has_a_section_for_the_pyproject_version() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{pyproject.removesuffix('.dev0')}]" in changelog


def test_release_ships_every_subpackage() -> None:
    """A package folder left out of pyproject's list installs a wheel whose suggest fails on import (the pipeline
    package was missed once, 2026-12-04)."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {
        "lrpredict." + p.parent.name
        for p in (root / "lrpredict").glob("*/__init__.py")
        if not p.parent.is_symlink()  # a development link to calibrate/ or coefficients/ (they map by package-dir)
    }
    assert folders <= listed, f"not shipped: {sorted(folders - listed)}"
