"""environment.yml (conda) and pyproject.toml pin the same versions; nothing is left unpinned."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins():
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(proj["dependencies"])
    for group in proj["optional-dependencies"].values():
        deps += [d for d in group if not d.startswith("megu_lib")]
    return deps


def test_every_dependency_pinned():
    for dep in _pyproject_pins():
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+]+", dep), dep


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = {p.split("==")[0].lower(): p.split("==")[1] for p in pip if "==" in p}
    py_pins = {p.split("==")[0].lower(): p.split("==")[1] for p in _pyproject_pins()}
    assert conda_pins == py_pins


def test_lock_agrees_with_pins():
    lock = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, ver = line.split("==")
            lock[name.lower().replace("_", "-")] = ver.strip()
    for p in _pyproject_pins():
        name, ver = p.split("==")
        assert lock.get(name.lower().replace("_", "-")) == ver, p
