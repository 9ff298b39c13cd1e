#!/usr/bin/env bash
# The tests on a fresh machine: install what they need, then run the whole suite in .venv/.
#
#   bash scripts/test.sh                     # everything (what CI runs: .ci/run calls this)
#   bash scripts/test.sh tests/models/test_losses.py -x     # arguments go to pytest
#
# Installs, each only when missing (a second run installs nothing): .venv/ with requirements-test.txt
# (requirements.txt + pytest + ruff), Debian's chromium for the live-viewer browser test, Debian's
# slurmctld, slurmd and munge for the SLURM executor's test (which skips if they cannot be installed), and
# visdom's web assets from the npm registry (npm from Debian only if there is no npm: Debian's npm package
# conflicts with a Node.js that brings its own). apt-get runs as root, or through sudo.
# Exits with pytest's status; "no tests ran" (pytest's 5) is a failure too.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh

ensure_venv requirements-test.txt
ensure_command chromium chromium          # tests/viz/test_viewer_browser.py: headless Chromium
# tests/scripts/test_reproduce_slurm.py starts a one-node SLURM cluster; without apt it skips, saying why
(PATH="$PATH:/usr/sbin:/sbin"; ensure_command slurmctld slurmctld && ensure_command slurmd slurmd \
   && ensure_command munged munge && ensure_command sbatch slurm-client) \
  || say "could not install Debian's SLURM packages: the SLURM tests will skip"
ensure_visdom_assets                      # ... and the page it renders

say "running the tests: .venv/bin/python -m pytest $*"
.venv/bin/python -m pytest "$@"
