"""DynaBERT-TF: one BERT, twelve sizes (Keras 3 / TensorFlow, with a TFLite path)."""

import pathlib

import setuptools

_HERE = pathlib.Path(__file__).parent
_REQUIREMENTS = [line.strip() for line in (_HERE / "requirements.txt").read_text().splitlines()
                 if line.strip() and not line.startswith("#") and not line.startswith("pytest")]

setuptools.setup(
    name="dynabert_tf",
    version="0.1.0",
    description="DynaBERT (adaptive width and depth BERT) in TensorFlow/Keras with TFLite export",
    long_description=(_HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=setuptools.find_packages(include=["dynabert_tf", "dynabert_tf.*", "train",
                                               "train.*", "mobile", "mobile.*"]),
    install_requires=_REQUIREMENTS,
    extras_require={"test": ["pytest==9.2.0", "pytest-xdist==3.8.0"]},
)
