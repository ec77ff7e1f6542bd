"""Mean signed error (prediction − truth) and MAE per angle of models on packed sets, one pass: whether a model
reads a set with an offset (a convention) rather than noise. Session 18 read BIWI's zero of yaw against
AFLW2000's with it, on selection and training data only.

    python scripts/experiments/signed_error.py --sets runs/data/aflw2000_a.npz,runs/data/biwi_train10.npz,\
runs/data/biwi_select.npz ../shared/peers/fsa_ssrnet_mt_300wlp.h5 src/headpose/weights/headpose_ssrnet_mt.keras
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from headpose.evaluate import predict_npz  # noqa: E402
from headpose.runtime import open_model  # noqa: E402


def main(models: list[str], sets: list[str], flip: bool) -> None:
    for path in models:
        runner = open_model(path, flip=flip)
        for s in sets:
            pred, true = predict_npz(runner, s)
            err = pred - true
            print(f"{os.path.basename(path)} on {os.path.basename(s)}: MAE {np.round(np.nanmean(np.abs(err), 0), 2)}"
                  f"  mean signed error (yaw, pitch, roll) {np.round(np.nanmean(err, 0), 2)}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--sets", required=True, help="comma-separated .npz files")
    ap.add_argument("--flip", action="store_true", help="read each crop with its mirror image too")
    a = ap.parse_args()
    main(a.models, a.sets.split(","), a.flip)
