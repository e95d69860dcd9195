"""pyproject.toml and environment.yml install the same things."""
import re
import tomllib

import yaml

from sparsity_core import paths


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ]", spec.strip(), maxsplit=1)[0].lower()


def test_environment_yml_agrees_with_pyproject():
    root = paths.repo_root()
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((root / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(d.startswith("python=3.11") for d in conda)
    conda_pkgs = {_name(d): d for d in conda if _name(d) not in ("python", "pip")}
    runtime = {_name(d): d.replace(" ", "") for d in project["dependencies"]}
    # torch comes from pip, pinned to the CPU build; everything else from conda, same specs
    assert "torch==2.13.0" in pip
    assert set(conda_pkgs) == set(runtime) - {"torch"}
    for name, spec in conda_pkgs.items():
        assert spec.replace(" ", "") == runtime[name], name
    extras = re.search(r"-e \.\[([^\]]+)\]", " ".join(pip)).group(1).split(",")
    assert sorted(extras) == sorted(project["optional-dependencies"])


def test_torch_pin_is_installed_first_in_makefile():
    make = (paths.repo_root() / "Makefile").read_text()
    assert make.index("$(TORCH)") < make.index('-e ".[bench,book,sae,sweep,test]"')
    assert "TORCH := torch==2.13.0" in make


def test_nodeps_wheels_are_installed_by_make_and_named_for_conda():
    root = paths.repo_root()
    pins = [l for l in (root / "requirements-nodeps.txt").read_text().splitlines()
            if l.strip() and not l.startswith("#")]
    assert pins and all("==" in p for p in pins)
    make = (root / "Makefile").read_text()
    assert make.index('-e ".[bench,book,sae,sweep,test]"') < make.index("--no-deps -r requirements-nodeps.txt")
    assert "pip install --no-deps -r requirements-nodeps.txt" in (root / "environment.yml").read_text()
