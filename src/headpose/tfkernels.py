"""TensorFlow-only speed-ups for training: same maths as Keras, faster kernels.

Keras 3 computes batch normalisation in training from generic ops (``tf.nn.moments`` +
``tf.nn.batch_normalization``): about six passes over every activation forward and more backward. TensorFlow's
fused kernel (``FusedBatchNormV3``, oneDNN on x86) does it in one pass each way: on SSR-Net-MT, whose 14 batch
norms sit on large activations (64×64×16 in the first layer), the training step runs about 1.6× faster on a
2-core CPU (measured: ``headpose bench``, README). Only the training branch changes: inference, the weights, the
saved files and every other backend are untouched.

Imported by ``headpose.train`` and ``headpose.bench`` only, and only on the TensorFlow backend.
"""

from __future__ import annotations

import types

import tensorflow as tf


def _fused_call(self, inputs, training=None, mask=None):
    """``BatchNormalization.call`` with the fused kernel in training; Keras' own code otherwise."""
    if not (training and self.trainable) or mask is not None:
        return type(self).call(self, inputs, training=training, mask=mask)
    x = tf.convert_to_tensor(inputs)
    gamma = tf.cast(tf.convert_to_tensor(self.gamma), tf.float32)
    beta = tf.cast(tf.convert_to_tensor(self.beta), tf.float32)
    # float32 statistics and scale for float32 and bfloat16 inputs alike; y in the input's dtype.
    y, mean, var = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=self.epsilon, is_training=True)
    # The kernel returns the variance with Bessel's correction; Keras updates its moving variance with the
    # biased one: undo the correction so that the moving statistics match Keras exactly.
    n = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
    var = var * ((n - 1.0) / n)
    m = self.momentum
    self.moving_mean.assign(self.moving_mean * m + tf.cast(mean, self.moving_mean.dtype) * (1.0 - m))
    self.moving_variance.assign(self.moving_variance * m + tf.cast(var, self.moving_variance.dtype) * (1.0 - m))
    return tf.cast(y, self.compute_dtype)


def fuse_batchnorm(model) -> int:
    """Make every plain channels-last ``BatchNormalization`` of ``model`` train with TensorFlow's fused kernel.

    Layers with renorm, synchronisation, no centre/scale, or a non-last axis keep Keras' implementation.
    Returns the number of layers switched. Idempotent.
    """
    import keras

    n = 0
    for layer in model.layers:
        if type(layer) is not keras.layers.BatchNormalization:
            continue
        try:
            rank = len(layer.input.shape)
        except (AttributeError, ValueError):  # not called on a symbolic input: cannot tell, leave it
            continue
        axis = layer.axis if isinstance(layer.axis, int) else (layer.axis[0] if len(layer.axis) == 1 else None)
        if axis is None or axis not in (-1, rank - 1) or rank != 4:
            continue
        if layer.renorm or layer.synchronized or not (layer.center and layer.scale):
            continue
        layer.call = types.MethodType(_fused_call, layer)
        n += 1
    return n


def set_stream_threads(cpus: int | None = None) -> tuple[int, int] | None:
    """Let TensorFlow run SSR-Net-MT's two conv streams side by side: inter-op 2, intra-op ``cpus // 2``.

    TensorFlow's default (every op spread over all CPUs, one op after the other) leaves the cores waiting on each
    other at every small op; with one core per stream the training step on 2 CPUs runs 1.1–1.4× faster (measured
    with ``headpose bench``). Must run before TensorFlow starts its thread pools; returns (intra, inter), or None
    when TensorFlow has already started (then its settings stay).
    """
    import os

    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    intra, inter = max(1, cpus // 2), 2 if cpus >= 2 else 1
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:  # TensorFlow is already initialised in this process
        return None
    return intra, inter
