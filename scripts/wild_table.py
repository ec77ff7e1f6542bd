"""The in-the-wild model card table: our models beside the seed's and FSA-Net's on the same data.

    python scripts/wild_table.py [MODEL ...] [--json OUT.json] [--plot OUT.png] [--no-photos] [--flip | --no-flip]

Default models: the bundled full and lite models, the seed project's released model and FSA-Net's SSR-Net-MT
trained on 300W-LP (``../shared/peers``: comparison only). Test data, made by ``scripts/build_wild_model.sh``
(``runs/data``): AFLW2000 crops by fixed half (a: even photos, the half checkpoints are chosen on; b: odd, never
looked at while choosing), their grey copies, BIWI sequences 04 11 17 22 (people no model of ours trained or
chose on), ``aflw_wild`` block p14 (yaw only), and AFLW2000 end to end (detector + crop + pose, as
``HeadPoseEstimator`` runs on the whole photo) with the faces missed per yaw bin. ``--plot``: the held-out crop sets'
error per bin of |yaw|, one line per model (``headpose.evaluate.plot_models_vs_yaw``; the model card's figure).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from headpose.evaluate import evaluate, evaluate_photos, mae_table, plot_models_vs_yaw, predict_npz  # noqa: E402
from headpose.runtime import open_model  # noqa: E402

PEERS = Path("../shared/peers")
DATA = Path("runs/data")
SETS = {"AFLW2000 a": "aflw2000_a.npz", "AFLW2000 b": "aflw2000_b.npz", "BIWI 04 11 17 22": "biwi_hold.npz",
        "aflw_wild p14 (yaw)": "wild_hold.npz"}
PLOTTED = ("AFLW2000 b", "BIWI 04 11 17 22", "aflw_wild p14 (yaw)")  # held out: never chosen on
NAMES = {"full": "ours, full", "lite": "ours, lite", "seed_head_pose_v2_fp32.tflite": "seed's released model",
         "fsa_ssrnet_mt_300wlp.h5": "FSA-Net SSR-Net-MT (300W-LP)"}
GREY = {"AFLW2000 a grey": "aflw2000_a.npz", "AFLW2000 b grey": "aflw2000_b.npz"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="*")
    p.add_argument("--json")
    p.add_argument("--plot", help="PNG: error per bin of |yaw| on the held-out crop sets, one line per model")
    p.add_argument("--no-photos", action="store_true", help="skip the end-to-end runs on the photos")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="every model with (--flip) or without (--no-flip) mirror averaging; default: as each model "
                        "reads by default (its card: the bundled full model averages, the others do not)")
    a = p.parse_args(argv)
    models = a.models or ["full", "lite", str(PEERS / "seed_head_pose_v2_fp32.tflite"),
                          str(PEERS / "fsa_ssrnet_mt_300wlp.h5")]
    table, curves = {}, {}
    for m in models:
        row = {}
        runner = open_model(m, flip=a.flip)  # opened once for the crop sets and their grey copies
        for name, f in SETS.items():
            pred, true = predict_npz(runner, DATA / f)
            r = mae_table(pred, true)
            row[name] = r["yaw"] if "yaw)" in name else r["mean"]
            err = abs(pred - true)
            if name in PLOTTED:
                label = NAMES.get(Path(m).name, Path(m).name)
                curves.setdefault(label, {})[name] = (true[:, 0], err[:, :1] if "yaw)" in name else err)
        res = evaluate(runner, [DATA / f for f in GREY.values()], quiet=True, grey=True)
        for name, f in GREY.items():
            row[name] = res[str(DATA / f)]["mean"]
        if not a.no_photos:
            for half in ("a", "b"):
                r = evaluate_photos(m, "../shared/data/aflw2000", half=half, quiet=True, flip=a.flip)
                row[f"AFLW2000 {half} end to end"] = r["mean"]
                row[f"AFLW2000 {half} missed %"] = 100 * (r["n"] - r["found"]) / r["n"]
                row[f"AFLW2000 {half} missed by yaw"] = r["missed_by_yaw"]
        table[m] = row
        print(Path(m).name, {k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    cols = [c for c in next(iter(table.values())) if "by yaw" not in c]
    print("\n| model | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for m, row in table.items():
        print(f"| {Path(m).name} | " + " | ".join(f"{row[c]:.2f}" for c in cols) + " |")
    if a.json:
        Path(a.json).write_text(json.dumps(table, indent=2))
    if a.plot:
        plot_models_vs_yaw(curves, Path(a.plot))
        print("wrote", a.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
