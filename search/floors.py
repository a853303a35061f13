"""The floors a searched ViT must clear: a linear classifier (logistic regression on the
raw pixels) and an MLP (256-128, ReLU), trained with the same recipe as every model here
(tflm_vit/fit.py) and measured as the ViTs are: the int8 model in TFLM on the full test
set, with its arena recorded by TFLM and its flash."""

from __future__ import annotations

import numpy as np

FLOORS = ("logistic_regression", "mlp")
MLP_WIDTHS = (256, 128)


def build(kind: str, shape: tuple, classes: int, batch_size: int | None = None):
    import keras
    from keras import layers
    inp = keras.Input(shape, batch_size=batch_size)
    x = layers.Flatten()(inp)
    if kind == "mlp":
        for width in MLP_WIDTHS:
            x = layers.Dense(width, activation="relu")(x)
    elif kind != "logistic_regression":
        raise ValueError(f"unknown floor {kind!r}; one of {', '.join(FLOORS)}")
    return keras.Model(inp, layers.Dense(classes)(x), name=kind)


def train_and_measure(kind: str, train, val, test_x, test_y, epochs: int, recipe,
                      teacher=None, seed: int = 0, checkpoint_dir: str | None = None,
                      say=None) -> dict:
    """Train the floor on `train` (scored on `val` per epoch), export it int8 and measure
    it in TFLM on the test images: top-1, arena, flash, seconds."""
    import keras

    from tflm_vit import evaluate, runtime
    from tflm_vit.export import keras_to_tflite
    from tflm_vit.fit import fit
    keras.utils.set_random_seed(seed)
    shape = train.x_train.shape[1:]
    model = build(kind, shape, train.num_classes)
    result = fit(model, train.x_train, train.y_train, val.x_test, val.y_test, epochs, recipe,
                 train.augmentation, None if teacher is None else teacher.probs, None,
                 checkpoint_dir, seed, say, kind,
                 {"floor": kind, "teacher": None if teacher is None else teacher.fingerprint})
    single = build(kind, shape, train.num_classes, batch_size=1)
    single.set_weights(model.get_weights())
    tflite = keras_to_tflite(single, train.x_train[:100])
    q, _, _ = evaluate.run_int8(tflite, test_x)
    float_top1 = float(np.mean(np.argmax(model.predict(test_x, batch_size=1000, verbose=0),
                                         -1) == test_y))
    return {"top1": float(np.mean(np.argmax(q, -1) == test_y)), "float_top1": float_top1,
            "measured_arena": runtime.allocations(tflite).total, "flash": len(tflite),
            "params": int(model.count_params()), "epochs": result.epochs,
            "train_seconds": result.seconds}
