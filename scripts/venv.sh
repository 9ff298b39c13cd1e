# Shared set-up for scripts/demo.sh and scripts/test.sh (sourced, not run): the project's virtual
# environment in .venv/ and the Debian packages a step needs. Each function checks before it installs,
# so a second run installs nothing.
#
#   ensure_venv requirements.txt        .venv/ exists and holds these requirements (+ constraints.txt)
#   ensure_visdom_assets                visdom's web assets (npm registry) in .venv/'s visdom
#   ensure_command chromium chromium    the command exists, else apt-get install the Debian package
#
# PYTHON=/path/to/python3.11 picks the interpreter that makes .venv/ (default: python3.11, else python3).

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# .venv/ with one requirements file installed. A stamp in .venv/ holds a hash of it, the files it
# includes, constraints.txt and the interpreter; while the stamp matches, pip is not run at all.
ensure_venv() {
  local py="${PYTHON:-}"
  if [ -z "$py" ]; then
    if command -v python3.11 >/dev/null 2>&1; then py=python3.11; else py=python3; fi
  fi
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "" >/dev/null 2>&1; then
    command -v "$py" >/dev/null 2>&1 || die "$py not found: install Python 3.11 (or set PYTHON=/path/to/python3)"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
      || die "$py is Python $("$py" -c 'import platform; print(platform.python_version())'); the project needs 3.10+ (3.11 tested): set PYTHON=/path/to/python3.11"
    say "creating the virtual environment .venv/ with $("$py" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    rm -rf "$VENV"
    "$py" -m venv "$VENV" || die "$py -m venv failed: install the venv module (Debian: apt-get install python3-venv)"
  fi
  local req="$1" stamp="$VENV/.installed-$(basename "${1%.txt}")" want
  # the file, the files it includes with -r, constraints.txt and the interpreter's version
  want="$(cd "$REPO" && { "$VENV/bin/python" -c 'import sys; print(sys.version)';
                          cat "$req" $(sed -n 's/^-r[[:space:]]*//p' "$req") constraints.txt; } \
          | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say ".venv/ already has $req installed: nothing to install (rm $stamp to make pip check again)"
    return 0
  fi
  say "installing $req into .venv/ (torch alone is several GB: minutes the first time)"
  (cd "$REPO" && PIP_CONSTRAINT=constraints.txt "$VENV/bin/python" -m pip install -q -r "$req") \
    || die "pip install -r $req failed (see above)"
  printf '%s\n' "$want" >"$stamp"
}

# Make sure the command $1 exists, else install Debian package $2 (as root, or with sudo).
ensure_command() {
  command -v "$1" >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 || die "$1 is missing and this is no Debian/Ubuntu machine: install $2 yourself"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "$1 is missing: run as root, or install it yourself (apt-get install $2)"
    sudo="sudo"
  fi
  say "installing Debian package $2 (for $1)"
  if [ -z "${_APT_UPDATED:-}" ]; then $sudo apt-get update -qq || die "apt-get update failed"; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$2" >/dev/null \
    || die "apt-get install $2 failed"
  command -v "$1" >/dev/null 2>&1 || die "apt-get installed $2 but $1 is still not on PATH"
}

# visdom's web assets (JS, CSS, fonts) from the npm registry, for the live viewer; needs npm.
# (npm only when missing: Debian's npm package conflicts with an installed Node.js that brings its own.)
ensure_visdom_assets() {
  if "$VENV/bin/python" "$REPO/scripts/install_visdom_assets.py" --check >/dev/null 2>&1; then
    return 0
  fi
  ensure_command npm npm
  say "installing visdom's web assets from the npm registry"
  "$VENV/bin/python" "$REPO/scripts/install_visdom_assets.py" || die "installing visdom's web assets failed"
}
