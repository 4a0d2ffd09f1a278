"""Small pieces shared by the sliceable layers."""

import keras
import tensorflow as tf

ACTIVATIONS = {
    "gelu": lambda x: keras.activations.gelu(x, approximate=False),
    "gelu_approximate": lambda x: keras.activations.gelu(x, approximate=True),
    "relu": keras.activations.relu,
}


def initializer():
    return keras.initializers.TruncatedNormal(stddev=0.02)


def dense_out_in(x, kernel, bias):
    """x [..., in] @ kernel[out, in]^T + bias [out] -> [..., out].

    The kernel is stored output-major (the Hugging Face `nn.Linear` layout), so a narrowed
    layer reads a leading slice of it; the matmul transposes it for free (`transpose_b`)
    and becomes a TFLite FULLY_CONNECTED, whose native weight layout this is.
    """
    flat = tf.reshape(x, (-1, tf.shape(x)[-1]))
    out = tf.matmul(flat, kernel, transpose_b=True) + bias
    return tf.reshape(out, tf.concat([tf.shape(x)[:-1], tf.shape(kernel)[:1]], axis=0))


def dense_in_out(x, kernel, bias):
    """x [..., in] @ kernel[in, out] + bias [out] -> [..., out] (kernel sliced on `in`)."""
    flat = tf.reshape(x, (-1, tf.shape(x)[-1]))
    out = tf.matmul(flat, kernel) + bias
    return tf.reshape(out, tf.concat([tf.shape(x)[:-1], tf.shape(kernel)[1:]], axis=0))
