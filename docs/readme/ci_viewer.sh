# --- viewer (issue 8): what the browser test needs; .ci/run runs these after the pip install and
# before pytest. tests/test_viewer_browser.py FAILS (does not skip) without them.
# Headless Chromium from Debian, and npm for visdom's web assets:
need=""
command -v chromium >/dev/null 2>&1 || need="$need chromium"
command -v npm >/dev/null 2>&1 || need="$need npm"
if [ -n "$need" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need
fi
# visdom's JS/CSS/fonts/MathJax from the npm registry into visdom's static/ folder (idempotent):
python3 scripts/install_visdom_assets.py
