"""The import contracts in pyproject.toml ([tool.importlinter]): the layers of DESIGN §5, no cycles, Ray in one
package, Optuna in two (the mirror and the search). import-linter reads every import statement, function-local
(lazy) ones included, so a lazy import cannot hide a cycle or an import up the layers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def test_every_import_contract_is_kept() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _LINT, "--config", str(ROOT / "pyproject.toml"), "--no-cache",
                           "--no-logo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout
