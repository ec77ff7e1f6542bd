"""Forward + backward milliseconds of the training step's kernels on the shapes of one SSR-Net-MT stream
(batch 128, TensorFlow): depthwise and pointwise convolutions, the pointwise ones also as matrix products, and
batch norm + tanh the way Keras computes it against TensorFlow's fused kernel.

    python scripts/experiments/kernels.py [--batch 128]
"""

from __future__ import annotations

import argparse
import os
import time

SHAPES = [(64, 3, 16), (32, 16, 32), (32, 32, 32), (16, 32, 64), (16, 64, 64), (8, 64, 128), (8, 128, 128)]


def ms(fn, n: int = 10) -> float:
    fn(), fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1000


def shape_row(tf, b: int, r: int, ci: int, co: int) -> dict:
    """Forward + backward ms of each kernel variant for one layer shape."""
    x, y = tf.random.normal([b, r, r, ci]), tf.random.normal([b, r, r, co])
    dk = tf.Variable(tf.random.normal([3, 3, ci, 1]))
    pk = tf.Variable(tf.random.normal([1, 1, ci, co]))
    gamma, beta = tf.Variable(tf.ones([co])), tf.Variable(tf.zeros([co]))

    def grads(f, *wrt):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                tape.watch(wrt[0])
                loss = tf.reduce_sum(f())
            return tape.gradient(loss, list(wrt))
        return step

    def keras_bn():
        m, v = tf.nn.moments(y, [0, 1, 2])
        return tf.tanh(tf.nn.batch_normalization(y, m, v, beta, gamma, 1e-3))

    def fused_bn():
        return tf.tanh(tf.compat.v1.nn.fused_batch_norm(y, gamma, beta, epsilon=1e-3, is_training=True)[0])

    return {
        "depthwise": ms(grads(lambda: tf.nn.depthwise_conv2d(x, dk, [1, 1, 1, 1], "SAME"), x, dk)),
        "pointwise conv": ms(grads(lambda: tf.square(tf.nn.conv2d(x, pk, 1, "VALID")), x, pk)),
        "pointwise matmul": ms(grads(lambda: tf.square(tf.reshape(x, [-1, ci]) @ tf.reshape(pk, [ci, co])), x, pk)),
        "keras bn+tanh": ms(grads(keras_bn, y, gamma, beta)),
        "fused bn+tanh": ms(grads(fused_bn, y, gamma, beta)),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    b = p.parse_args().batch
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    total = {}
    for r, ci, co in SHAPES:
        row = shape_row(tf, b, r, ci, co)
        for k, v in row.items():
            total[k] = total.get(k, 0) + v
        print(f"{r}x{r} {ci}->{co}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()))
    print("one stream, ms: " + ", ".join(f"{k} {v:.1f}" for k, v in total.items()))


if __name__ == "__main__":
    main()
