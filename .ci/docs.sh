#!/usr/bin/env bash
# CI: build the docs site the way `make docs` does: every Sphinx warning is an error (broken
# links, unresolved references, docstrings Sphinx cannot parse), then the doctest builder
# runs every example in the docs. Called by .ci/run from the repository root, inside the
# project's activated virtual environment (restorekit and torch already installed).
set -euo pipefail
cd "$(dirname "$0")/.."

pip install --quiet -e ".[docs]"
start=$(date +%s)
if command -v make > /dev/null; then
    make docs
else  # the same two builds as the Makefile's `docs` target
    python -m sphinx -b html -W --keep-going -n -d docs/_build/doctrees docs docs/_build/html
    python -m sphinx -b doctest -W --keep-going -n -d docs/_build/doctrees docs docs/_build/doctest
fi
echo "::: docs built in $(( $(date +%s) - start )) s: docs/_build/html/index.html"
