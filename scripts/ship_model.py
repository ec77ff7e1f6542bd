"""Put a trained model into the package: .keras, float/int8 .tflite, .onnx and the model card (.json).

    python scripts/ship_model.py RUN/best.keras --val runs/data/biwi_test.npz --margin 0.2 \
        --also runs/data/aflw2000.npz runs/data/biwi_frames.npz --note "..."

Every file is written by the project's own export (parity-checked against Keras) and evaluated with the
project's own evaluate; the card records the numbers and how the model was made.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from headpose.evaluate import evaluate
from headpose.export import export
from headpose.runtime import INT8_SUFFIX

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "headpose" / "weights"

def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--val", required=True, help="BIWI held-out sequences .npz (the card's 'validation' row)")
    p.add_argument("--sequences", default="04,11,17,22")
    p.add_argument("--calib", help="int8 calibration .npz (default: --val)")
    p.add_argument("--selection", default="", help="what checkpoints and recipes were chosen on")
    p.add_argument("--margin", type=float, required=True,
                   help="detector-crop margin the model reads best at (the card's crop_margin)")
    p.add_argument("--also", nargs="*", default=[], help="more test sets to report")
    p.add_argument("--data", nargs="*", default=[], help="training data description")
    p.add_argument("--commands", nargs="*", default=[])
    p.add_argument("--flip", action="store_true", help="the model reads each crop with its mirror image by default "
                                                        "(the card's flip; its numbers are measured so)")
    p.add_argument("--note", default="")
    p.add_argument("--name", default="headpose_ssrnet_mt",
                   help="file stem in the package: headpose_ssrnet_mt (full) or headpose_ssrnet_mt_lite")
    a = p.parse_args(argv)
    NAME = a.name
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    from headpose.model import load_model, model_width

    model = load_model(a.model)
    width = model_width(model)
    model.save(WEIGHTS / f"{NAME}.keras")  # weights and architecture, no optimizer state
    exports = {}
    files = (("tflite", f"{NAME}.tflite"), ("tflite-int8", f"{NAME}{INT8_SUFFIX}.tflite"), ("onnx", f"{NAME}.onnx"))
    for fmt, fname in files:
        exports[fmt] = export(WEIGHTS / f"{NAME}.keras", fmt, WEIGHTS / fname, calib=a.calib or a.val)
    val = evaluate(WEIGHTS / f"{NAME}.tflite", [a.val], quiet=True, flip=a.flip)[a.val]
    also = evaluate(WEIGHTS / f"{NAME}.tflite", a.also, quiet=True, flip=a.flip) if a.also else {}
    card = {
        "model": "SSR-Net-MT (stage_num [3,3,3], lambda_d 1, V 99), input 64x64x3 BGR 0..255, "
                 "output [yaw, pitch, roll]" + ("" if width == 1 else f", width {width:g} (channels x {width:g})"),
        "width": width,
        "parameters": int(model.count_params()),
        "crop_margin": a.margin,
        "flip": a.flip,
        "training_data": a.data,
        "commands": a.commands,
        "selection": a.selection,
        "validation": {"sequences": a.sequences.split(","), "n": val["n"],
                       "mae": {k: round(val[k], 3) for k in ("yaw", "pitch", "roll", "mean")}},
        "other_tests": {Path(k).name: {kk: (round(v, 3) if isinstance(v, float) else v) for kk, v in r.items()}
                        for k, r in also.items()},
        "exports": {k: {"file": Path(v["path"]).name, "bytes": v["bytes"], "max_diff_vs_keras": round(v["max_diff"], 5),
                        "mean_diff_vs_keras": round(v["mean_diff"], 5)} for k, v in exports.items()},
        "licence": "trained on research-only data (AFLW, BIWI; renders of UTKFace and AFLW photos): non-commercial "
                   "research use",
        "note": a.note,
    }
    (WEIGHTS / f"{NAME}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
