"""Conda environments per rule kind pin exactly what the pip constraints pin (one set of versions, two ways
to install it)."""

from __future__ import annotations

import re

import yaml

from conftest import REPO


def constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)==(\S+)$", line.strip()):
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_every_env_pin_matches_the_constraints():
    pins = constraints()
    checked = 0
    for env in sorted((REPO / "envs").glob("*.yaml")):
        spec = yaml.safe_load(env.read_text())
        pip = next((d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d), [])
        for requirement in pip:
            name, _, version = requirement.partition("==")
            assert version, f"{env.name}: {requirement!r} is not pinned"
            key = name.lower().replace("_", "-")
            assert key in pins, f"{env.name}: {name} is not in constraints.txt"
            assert pins[key] == version, f"{env.name}: {name}=={version}, constraints.txt has {pins[key]}"
            checked += 1
    assert checked >= 20


def test_the_torch_env_has_everything_the_library_imports_at_run_time():
    torch_env = yaml.safe_load((REPO / "envs/torch.yaml").read_text())
    pip = next(d["pip"] for d in torch_env["dependencies"] if isinstance(d, dict) and "pip" in d)
    names = {r.partition("==")[0].lower() for r in pip}
    declared = re.findall(r'^\s+"([A-Za-z0-9_.-]+)', (REPO / "pyproject.toml").read_text().split("dependencies = [")[1]
                          .split("]")[0], flags=re.M)
    missing = {re.split(r"[<>=]", d)[0].lower() for d in declared} - names
    assert not missing, f"envs/torch.yaml lacks {sorted(missing)} that pyproject.toml declares"
