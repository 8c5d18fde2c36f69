"""The user's guide stays true: generated references up to date, links resolve, and its commands run.

The slow tests run every shell command and Python block of docs/quickstart.md and
docs/extending.md in a scratch directory, with tiny budgets appended (see
:func:`tiny`): ``make run`` becomes the ``evo run`` it stands for, ``evo dashboard``
is started, fetched once and stopped.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from evo.docgen import cli_reference, config_reference

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GUIDE = ["index.md", "quickstart.md", "extending.md", "concepts.md", "continual.md", "ray.md", "config.md", "cli.md"]
#: appended to every `evo run` / `evo search`, merged into every `evo.run(...)` of a Python block.
TINY = {"evolution.eval_steps": 10, "evolution.population_size": 3, "evolution.generations": 1, "backend.kind": "serial"}


def blocks(doc: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", (DOCS / doc).read_text(), re.DOTALL)


def shell_commands(doc: str) -> list[str]:
    """The commands of a page's bash blocks, without comments and ``source`` lines."""
    lines = [re.sub(r"\s+#\s.*$", "", line).strip() for block in blocks(doc, "bash") for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("source ")]


def tiny(command: str) -> str:
    """The command with a tiny budget: `make run` spelled out, small runs and one search trial."""
    command = command.replace("make run", "evo run configs/digits_mlp.yaml")
    if command.startswith(("evo run", "evo search")):
        command += "".join(f" --set {key}={value}" for key, value in TINY.items())
    if command.startswith("evo search"):
        command += " --trials 1"
    return command


def test_generated_references_are_up_to_date() -> None:
    assert (DOCS / "config.md").read_text() == config_reference(), "run `python -m evo.docgen`"
    assert (DOCS / "cli.md").read_text() == cli_reference(), "run `python -m evo.docgen`"


def test_the_references_cover_every_task_kind_and_command() -> None:
    config, cli = config_reference(), cli_reference()
    for kind in ("supervised", "control", "xor", "continual", "custom"):
        assert f"`'{kind}'`" in config
    for command in ("run", "resume", "show", "export", "search", "dashboard", "ops"):
        assert f"## `evo {command}`" in cli


@pytest.mark.parametrize("page", [*(f"docs/{name}" for name in GUIDE), "README.md"])
def test_every_relative_link_resolves(page: str) -> None:
    path = ROOT / page
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text())
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    missing = [link for link in local if not (path.parent / link).exists()]
    assert not missing, f"{page}: broken links {missing}"


def test_the_index_links_every_page_of_the_guide() -> None:
    index = (DOCS / "index.md").read_text()
    for name in GUIDE[1:]:
        assert f"({name})" in index


def test_the_quickstart_commands_are_real_cli_commands() -> None:
    """Cheap guard for the slow test: every `evo X` names a command with the options the page uses."""
    cli = cli_reference()
    for command in shell_commands("quickstart.md") + shell_commands("extending.md"):
        words = shlex.split(command)
        if words[0] != "evo":
            continue
        assert f"## `evo {words[1]}`" in cli, command
        section = cli.split(f"## `evo {words[1]}`")[1].split("\n## ")[0]
        for option in (w for w in words if w.startswith("--")):
            assert f"`{option}" in section or f", {option}" in section, f"{command}: {option}"


def _scratch(tmp_path: Path) -> dict[str, str]:
    """A working directory with the repository's configs and examples, and an env whose PATH finds `evo`."""
    for name in ("configs", "search_spaces", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dashboard_answers(command: str, cwd: Path, env: dict[str, str]) -> None:
    port = _free_port()
    server = subprocess.Popen([*shlex.split(command), "--port", str(port)], cwd=cwd, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard/", timeout=5) as page:
                    assert page.status == 200
                    return
            except OSError:
                assert server.poll() is None, "evo dashboard exited"
                assert time.monotonic() < deadline, "evo dashboard did not answer"
                time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _run_page(page: str, tmp_path: Path) -> None:
    env = _scratch(tmp_path)
    for command in map(tiny, shell_commands(page)):
        if command.startswith("evo dashboard"):
            _dashboard_answers(command, tmp_path, env)
            continue
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    prelude = (
        "import evo.api\n"
        "_run = evo.api.run\n"
        f"evo.api.run = lambda config, overrides=(), **kw: _run(config, overrides={{**dict(overrides), **{TINY!r}}}, **kw)\n"
    )
    script = prelude + "\n".join(blocks(page, "python"))
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{page} Python blocks\n{done.stderr[-3000:]}"


def test_the_operator_example_registers_and_applies_an_operator(tmp_path: Path) -> None:
    """Runs in a subprocess: registering into the global table must not leak into other tests."""
    [code] = [b for b in blocks("extending.md", "python") if "OPERATORS[" in b]
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "jitter_biases(sigma=0.05) 4→8→relu→3"


@pytest.mark.slow
def test_the_quickstart_runs(tmp_path: Path) -> None:
    _run_page("quickstart.md", tmp_path)
    assert (tmp_path / "demo.pt").is_file() and (tmp_path / "runs" / "demo" / "lineage_3.svg").is_file()


@pytest.mark.slow
def test_the_extending_guide_runs(tmp_path: Path) -> None:
    _run_page("extending.md", tmp_path)
    assert (tmp_path / "runs" / "spirals" / "config.yaml").is_file()
