#!/usr/bin/env python3
"""The project's single entry point; needs only Python 3.11+.

    python3 dev.py run     # the app on SQLite with the sandboxes, the webhook worker and a demo
                           # shop; prints checkout URLs (--port N, --help)
    python3 dev.py test    # the whole test suite (TEST_DATABASE_URL=postgresql://... for PG)
    python3 dev.py lint    # ruff check, ruff format --check, lint-imports (the layers) and the
                           # docs site (mkdocs --strict)
    python3 dev.py docs    # serve the docs site (mkdocs.yml, docs/) on 127.0.0.1:8000
    python3 dev.py bench   # the benchmarks (gunicorn + sandbox + wrk); writes docs/benchmarks.md
    python3 dev.py audit   # Lighthouse on the shopper pages (needs node); writes docs/audit.md

Each creates .venv and installs the project into it first when needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
MARKER = VENV / ".installed"
TRANSLATIONS = ROOT / "checkout" / "translations"
SITE = ROOT / "site"  # the built docs (not in git)
# Material for MkDocs prints a banner about its successor on every build; the build is quiet.
MKDOCS_ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit("Python 3.11 or newer is needed")
    pyproject = ROOT / "pyproject.toml"
    if not MARKER.exists() or MARKER.stat().st_mtime < pyproject.stat().st_mtime:
        if not (BIN / "python").exists():
            print("creating .venv ...", flush=True)
            venv.EnvBuilder(with_pip=True).create(VENV)
        print("installing dependencies into .venv ...", flush=True)
        subprocess.run(
            [str(BIN / "python"), "-m", "pip", "install", "-q", "-e", f"{ROOT}[dev]"], check=True
        )
        compile_translations(force=True)
        MARKER.touch()
    else:
        compile_translations()


def compile_translations(force: bool = False) -> None:
    """Compile checkout/translations/*/LC_MESSAGES/messages.po to .mo (part of installing).

    The .mo files are build output (not in git); this runs after every install and whenever a
    .po is newer than its .mo.
    """
    stale = [
        po
        for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")
        if not po.with_suffix(".mo").exists()
        or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime
    ]
    if not stale and not force:
        return
    print("compiling translations ...", flush=True)
    subprocess.run(
        [
            str(BIN / "python"),
            "-m",
            "babel.messages.frontend",
            "-q",
            "compile",
            "-d",
            str(TRANSLATIONS),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command not in ("run", "test", "lint", "docs", "bench", "audit"):
        print(__doc__)
        return 0 if command in ("help", "-h", "--help") else 2
    ensure_venv()
    os.chdir(ROOT)
    if command == "run":
        return subprocess.call([str(BIN / "python"), "-m", "checkout.devtools.devserver", *rest])
    if command == "audit":  # not part of the tests; needs node and npm (lighthouse)
        return subprocess.call([str(BIN / "python"), "-m", "bench.audit", *rest])
    if command == "test":
        return subprocess.call([str(BIN / "pytest"), "-q", *rest])
    if command == "bench":  # not part of the tests; needs wrk (installed if missing)
        python = str(BIN / "python")
        if subprocess.call([python, "-c", "import pyinstrument"], stderr=subprocess.DEVNULL):
            subprocess.run(
                [python, "-m", "pip", "install", "-q", "pyinstrument==5.1.3"], check=True
            )
        return subprocess.call([python, "-m", "bench.run", *rest])
    if command == "docs":
        return subprocess.call([str(BIN / "mkdocs"), "serve", *rest], env=MKDOCS_ENV)
    code = subprocess.call([str(BIN / "ruff"), "check", "."])
    code = code or subprocess.call([str(BIN / "ruff"), "format", "--check", "."])
    # The layers' contracts ([tool.importlinter] in pyproject.toml): one way down.
    code = code or subprocess.call([str(BIN / "lint-imports"), "--no-cache"], cwd=ROOT)
    # The docs site: a broken link, anchor or page fails the build (mkdocs.yml: strict).
    return code or subprocess.call(
        [str(BIN / "mkdocs"), "build", "--strict", "--quiet", "--site-dir", str(SITE)],
        env=MKDOCS_ENV,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
