"""Resizing shared weights to a smaller token grid or patch size.

The supernet and the static export both call these, so a subnet's exported
weights are exactly the ones it trained with.
"""

import tensorflow as tf


def resize_images(images, resolution):
    """Bilinear resize of NHWC images to a square resolution (identity at equal size)."""
    return tf.image.resize(images, tf.stack([resolution, resolution]), method="bilinear")


def resize_patch_kernel(kernel, patch):
    """(P, P, C, D) patch-embedding kernel -> (p, p, C, D), FlexiViT-style.

    Scaled by (P/p)^2 so a constant image gives the same response at every
    patch size; at p == P this is the identity.
    """
    shape = tf.shape(kernel)
    big = shape[0]
    k = tf.reshape(kernel, [1, big, big, shape[2] * shape[3]])
    k = tf.image.resize(k, tf.stack([patch, patch]), method="bilinear")
    k = k * tf.cast(big * big, k.dtype) / tf.cast(patch * patch, k.dtype)
    return tf.reshape(k, tf.stack([patch, patch, shape[2], shape[3]]))


def resize_position_embedding(pos, grid):
    """(G, G, D) learned position embedding -> (grid*grid, D) tokens, bilinear."""
    shape = tf.shape(pos)
    p = tf.image.resize(pos[tf.newaxis], tf.stack([grid, grid]), method="bilinear")
    return tf.reshape(p, tf.stack([grid * grid, shape[2]]))
