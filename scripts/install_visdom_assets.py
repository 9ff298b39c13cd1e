"""Install visdom's web assets (JS, CSS, fonts, MathJax) from the npm registry, where visdom's own server
would fetch them from CDNs (docs/viewer.md): `npm pack` the pinned packages, copy the files into the
installed visdom's static/ folder, each atomically, and write static/version.built (visdom's sign that
the download is done) last, so an interrupted install is never taken for a complete one.

    python scripts/install_visdom_assets.py            # installs what is missing; idempotent
    python scripts/install_visdom_assets.py --check    # exit 1 and list what is missing
    python scripts/install_visdom_assets.py --force    # reinstall every file
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402

from pix2pix_tr.run import atomic  # noqa: E402
from pix2pix_tr.errors import UserError, run_cli  # noqa: E402

_MATHJAX = "mathjax@2.7.5"
_MATHJAX_FILES = ("MathJax.js", "config/Safe.js", "config/TeX-AMS-MML_HTMLorMML.js",
                  "extensions/Safe.js", "jax/output/SVG/jax.js", "jax/output/SVG/config.js",
                  "jax/output/SVG/fonts/TeX/fontdata.js",
                  "jax/output/SVG/fonts/TeX/Size1/Regular/Main.js")
_GLYPHICONS = ("eot", "woff2", "woff", "ttf")

# (npm package@version, path inside the package, path under visdom's static/): the files of
# visdom 0.2.4's visdom/server/build.py download_scripts(), same versions, same destinations.
ASSETS = (
    ("jquery@3.1.1", "dist/jquery.min.js", "js/jquery.min.js"),
    ("bootstrap@3.3.7", "dist/js/bootstrap.min.js", "js/bootstrap.min.js"),
    ("react@16.2.0", "umd/react.production.min.js", "js/react-react.min.js"),
    ("react-dom@16.2.0", "umd/react-dom.production.min.js", "js/react-dom.min.js"),
    ("react-modal@3.1.10", "dist/react-modal.min.js", "js/react-modal.min.js"),
    # the minified build, as visdom's cdn.plot.ly/plotly-2.11.1.min.js (plotly.js-dist's is 8.7 MB)
    ("plotly.js-dist-min@2.11.1", "plotly.min.js", "js/plotly-plotly.min.js"),
    ("sjcl@1.0.7", "sjcl.js", "js/sjcl.js"),
    ("layout-bin-packer@1.4.0", "dist/layout-bin-packer.js.map", "js/layout-bin-packer.js.map"),
    ("layout-bin-packer@1.4.0", "dist/layout-bin-packer.js", "js/layout_bin_packer.js"),
    ("d3@3.5.17", "d3.min.js", "js/d3.v3.min.js"),
    ("d3-selection-multi@1.0.1", "build/d3-selection-multi.js", "js/d3-selection-multi.v1.js"),
    ("save-svg-as-png@1.4.17", "lib/saveSvgAsPng.js", "js/saveSvgAsPng.js"),
    ("react-resizable@1.4.6", "css/styles.css", "css/react-resizable-styles.css"),
    ("react-grid-layout@0.16.3", "css/styles.css", "css/react-grid-layout-styles.css"),
    ("bootstrap@3.3.7", "dist/css/bootstrap.min.css", "css/bootstrap.min.css"),
    ("classnames@2.2.5", "index.js", "fonts/classnames"),
    *(("bootstrap@3.3.7", f"dist/fonts/glyphicons-halflings-regular.{ext}",
       f"fonts/glyphicons-halflings-regular.{ext}") for ext in _GLYPHICONS),
    ("bootstrap@3.3.7", "dist/fonts/glyphicons-halflings-regular.svg",
     "fonts/glyphicons-halflings-regular.svg#glyphicons_halflingsregular"),
    *((_MATHJAX, path, f"js/mathjax/2.7.5/{path}") for path in _MATHJAX_FILES),
)
VERSION_FILE = "version.built"


def visdom_static_dir():
    """visdom's installed static/ folder, where its server serves /static/ from."""
    try:
        import visdom
    except ImportError as err:
        raise UserError(f"visdom is not importable ({err}): pip install -r requirements.txt") from err
    return os.path.join(os.path.dirname(os.path.abspath(visdom.__file__)), "static")


def visdom_version():
    import visdom

    return visdom.__version__


def missing_assets(static_dir):
    """Destinations (relative to static/) that are absent or empty, plus version.built if stale."""
    missing = [dest for _, _, dest in ASSETS if not _nonempty(os.path.join(static_dir, dest))]
    version = pathlib.Path(static_dir, VERSION_FILE)
    if missing or not version.is_file() or version.read_text().strip() != visdom_version():
        missing.append(VERSION_FILE)
    return missing


def install(static_dir, *, force=False):
    """Fetch the missing assets with `npm pack` and copy them into `static_dir`; the number of files written."""
    wanted = [a for a in ASSETS if force or not _nonempty(os.path.join(static_dir, a[2]))]
    if wanted:
        npm = shutil.which("npm")
        if npm is None:
            raise UserError("npm is not on PATH: install Node.js/npm (Debian: apt-get install npm), "
                            "then rerun python scripts/install_visdom_assets.py")
        if not os.access(static_dir, os.W_OK):
            raise UserError(f"cannot write visdom's static folder {static_dir}: rerun with the "
                            "permissions of the Python environment that holds visdom")
        with tempfile.TemporaryDirectory(prefix="visdom-assets-") as tmp:
            tarballs = _npm_pack(npm, sorted({spec for spec, _, _ in wanted}), tmp)
            for spec, member, dest in wanted:
                _write(os.path.join(static_dir, dest), _read_member(tarballs[spec], member, spec))
    if force or wanted or VERSION_FILE in missing_assets(static_dir):
        _write(os.path.join(static_dir, VERSION_FILE), visdom_version().encode())
    return len(wanted)


def _write(path, data):
    """`data` (bytes) into `path` atomically, readable by all: the server may run as another user."""
    with atomic.atomic_path(path) as tmp_path:
        pathlib.Path(tmp_path).write_bytes(data)
        os.chmod(tmp_path, 0o644)


def _npm_pack(npm, specs, folder):
    """npm pack every spec into `folder`; returns {spec: tarball path}."""
    print(f"npm pack {len(specs)} packages: {' '.join(specs)}")
    result = subprocess.run([npm, "pack", "--silent", *specs], cwd=folder, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
        raise UserError(f"npm pack failed ({' | '.join(tail)}): check that the npm registry "
                        "(or your mirror, `npm config get registry`) is reachable")
    packed = {}
    for name in os.listdir(folder):
        if name.endswith(".tgz"):
            meta = json.loads(_read_member(os.path.join(folder, name), "package.json", name))
            packed[f"{meta['name']}@{meta['version']}"] = os.path.join(folder, name)
    absent = [spec for spec in specs if spec not in packed]
    if absent:
        raise UserError(f"npm pack did not deliver {', '.join(absent)} (got {sorted(packed)})")
    return packed


def _read_member(tarball, member, spec):
    """A file of an npm tarball, by its path inside the package (under a top folder, usually `package/`)."""
    with tarfile.open(tarball, "r:gz") as archive:
        for info in archive.getmembers():
            if info.isfile() and info.name.split("/", 1)[-1] == member:
                return archive.extractfile(info).read()
    raise UserError(f"{spec} has no file {member}: the npm registry served an unexpected package")


def _nonempty(path):
    return os.path.isfile(path) and os.path.getsize(path) > 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--static_dir", default=None,
                        help="where to install (default: the installed visdom's static/ folder)")
    parser.add_argument("--force", action="store_true", help="reinstall every file")
    parser.add_argument("--check", action="store_true",
                        help="install nothing; list what is missing and exit 1 if anything is")
    args = parser.parse_args(argv)
    static_dir = args.static_dir or visdom_static_dir()
    if args.check:
        missing = missing_assets(static_dir)
        for name in missing:
            print(f"missing: {os.path.join(static_dir, name)}")
        print(f"visdom assets in {static_dir}: {'incomplete' if missing else 'complete'}")
        return 1 if missing else 0
    written = install(static_dir, force=args.force)
    missing = missing_assets(static_dir)
    if missing:
        raise UserError(f"still missing after install: {', '.join(missing)}")
    print(f"visdom assets complete in {static_dir} ({written} files written)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
