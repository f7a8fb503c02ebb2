#!/usr/bin/env python3
"""Set up and run loopml with nothing but Python 3.11+ and pip.

    python3 dev.py demo    create .venv, install loopml (with its server), run the demo
    python3 dev.py test    create .venv, install loopml with its dev tools, then run
                           ruff (format + lint), mypy --strict, lint-imports (the
                           layers of ARCHITECTURE.md) and pytest (with the browser
                           and mlflow extras, so those tests run instead of skipping) (the browser
                           test of the HTML report runs when /usr/bin/chromium exists;
                           tools/install_browser.sh installs it, .ci/run calls that)
    python3 dev.py check   only ruff and mypy
    python3 dev.py bench   install the benchmark peers and run benchmarks/

The virtual environment is made once and refreshed when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("LOOPML_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def run(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may run on an older python3
        sys.exit(f"loopml needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
        run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".loopml-installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    target = f".[{extras}]" if extras else "."
    run(PY, "-m", "pip", "install", "--quiet", "-e", target)
    stamp.write_text(digest)


def lint() -> None:
    run(PY, "-m", "ruff", "format", "--check", "src", "tests", "benchmarks", "dev.py")
    run(PY, "-m", "ruff", "check", "src", "tests", "benchmarks", "dev.py")
    run(PY, "-m", "mypy")
    run(BIN / "lint-imports")  # the layers of ARCHITECTURE.md ([tool.importlinter])


def main(argv: list[str]) -> None:
    command = argv[0] if argv else "help"
    rest = argv[1:]
    if command == "demo":
        ensure_venv("serve")  # the demo serves the champion on a loopback port
        run(BIN / "loopml", "demo", *rest)
    elif command == "test":
        ensure_venv("dev,browser,mlflow,serve")
        lint()
        run(PY, "-m", "pytest", *rest)
    elif command == "check":
        ensure_venv("dev")
        lint()
    elif command == "bench":
        ensure_venv("dev,bench,serve,mlflow")
        for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
            run(PY, script, *rest)
    else:
        print(__doc__)
        sys.exit(0 if command in {"help", "-h", "--help"} else 2)


if __name__ == "__main__":
    main(sys.argv[1:])
