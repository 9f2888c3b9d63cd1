#!/usr/bin/env bash
# CI for the plugin packages, in a second environment built the way a user would build it.
# timm imports torchvision, and PyPI's torchvision needs PyPI's regular torch build (not the
# CPU-only wheel of the main environment), so the plugins get a virtual environment of their
# own. restorekit and both plugins are installed non-editable, as from a release (pip rebuilds
# and reinstalls a local folder on every run), and the plugin tests (tests/plugins) run against
# those installed copies with timm present.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
venv=.venv-timm
py="$repo/$venv/bin/python"

start=$(date +%s)
[ -x "$py" ] || python3 -m venv "$venv"
"$py" -m pip install -q torch torchvision timm pytest
"$py" -m pip install -q . plugins/restorekit-example plugins/restorekit-timm
echo "::: plugin environment ready in $(( $(date +%s) - start )) s"
"$py" -m pip list 2>/dev/null | grep -iE '^(restorekit|restorekit-example|restorekit-timm|torch|torchvision|timm) '

# Run from an empty folder so that `import restorekit` finds the installed copy, not ./restorekit.
# RESTOREKIT_REQUIRE_TIMM turns the timm tests' skip (timm missing) into a failure here.
echo "::: plugin tests"
cd "$(mktemp -d)"
"$py" -c 'import restorekit; print("restorekit imported from", restorekit.__file__)'
RESTOREKIT_REQUIRE_TIMM=1 "$py" -m pytest -p no:cacheprovider "$repo/tests/plugins"
