"""Small pieces shared by the sliceable layers."""

import keras

ACTIVATIONS = {
    "gelu": lambda x: keras.activations.gelu(x, approximate=False),
    "gelu_approximate": lambda x: keras.activations.gelu(x, approximate=True),
    "relu": keras.activations.relu,
}


def initializer():
    return keras.initializers.TruncatedNormal(stddev=0.02)
