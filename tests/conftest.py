"""Test-wide settings: quiet TensorFlow, deterministic seeds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


def pytest_collection_modifyitems(items):
    """Files with end-to-end (`slow`) tests first, in collection order: `make test` runs
    `-n 2 --dist=loadfile --no-loadscope-reorder`, so the two workers start on the longest
    files and the many short ones fill in behind them, instead of a long file starting last."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
