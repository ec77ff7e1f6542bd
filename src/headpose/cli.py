"""Command line: parsing and dispatch only. Every verb calls one function of the Python API.

    headpose train / evaluate / export / predict / prepare / data show / synth render / synth mesh / demo / bench

Errors the user can fix (``HeadposeError``) print one line and exit with code 2, no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from headpose.errors import HeadposeError

BUNDLED_HELP = "full, lite (half width, about 2x faster), full-int8, lite-int8"
DEFAULT_FULL = " (default: full)"


def _positive_int(text: str) -> int:
    """An integer ≥ 1 (threads, workers, batch sizes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _score(text: str) -> float:
    """A detector score threshold, 0..1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1 (a sigmoid score), got {value}")
    return value


def _yaw_range(text: str) -> tuple[float, float]:
    """``LO,HI``: a range of |yaw| in degrees, 0 <= LO <= HI."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI (two numbers, e.g. 30,99), got {text!r}") from None
    if not 0 <= lo <= hi:
        raise argparse.ArgumentTypeError(f"expected 0 <= LO <= HI (degrees of |yaw|), got {text!r}")
    return lo, hi


#: Modules of the [train] extra: a verb that needs one says how to install it instead of a traceback.
TRAIN_EXTRA = ("keras", "tensorflow", "tf2onnx", "onnx", "numba")


def _csv_or_range(text: str) -> list[float]:
    """``start:stop:step`` (stop inclusive) or a comma list, for --yaw/--pitch/--roll."""
    from headpose.synth.grid import parse_angles

    try:
        return parse_angles(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _flip_flag(p: argparse.ArgumentParser, default: bool | None = None) -> None:
    """``--flip`` / ``--no-flip``, the same on every verb: read each crop with its mirror image and average."""
    when = "default: as the model's card says (on for the bundled full model, off for lite)" if default is None \
        else f"default: {'on' if default else 'off'}"
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=default,
                   help=f"average each crop's reading with its mirror image's: twice the pose compute, about 0.4° "
                        f"more accurate ({when})")


def _add_settings(p: argparse.ArgumentParser, module: str, name: str) -> None:
    """One flag per field of the settings dataclass ``module.name``: ``--`` and the field's name with dashes, the
    type from its annotation (a list: one or more values; a fixed-length tuple: that many; a boolean: ``--x`` /
    ``--no-x``), help, choices and metavar from its metadata, default None (not given: the TOML file's value or
    the dataclass default stays). Fields with the same ``exclusive`` metadata are mutually exclusive flags."""
    import dataclasses
    import importlib
    import types
    import typing

    cls = getattr(importlib.import_module(module), name)
    hints = typing.get_type_hints(cls)
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        meta = dict(f.metadata)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        shown = default is not None and default != [] and "default" not in meta["help"]
        help_text = meta.pop("help") + (f" (default: {_shown(default)})" if shown else "")
        kw: dict = {"dest": f.name, "default": None, "help": help_text.strip()}
        if tp is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif origin in (list, tuple):
            kw["type"] = args[0]
            kw["nargs"] = "+" if origin is list or args[-1] is Ellipsis else len(args)
        else:
            kw["type"] = tp
        exclusive = meta.pop("exclusive", None)
        kw.update(meta)
        target = p
        if exclusive:
            if exclusive not in groups:
                groups[exclusive] = p.add_mutually_exclusive_group()
            target = groups[exclusive]
        target.add_argument("--" + f.name.replace("_", "-"), **kw)


def _shown(value) -> str:
    return (" ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)).replace("%", "%%")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="headpose", description="Head pose (yaw, pitch, roll) with SSR-Net-MT.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__import__('headpose').__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # --- train ---------------------------------------------------------------------------------------------
    t = sub.add_parser("train", help="train SSR-Net-MT on .npz datasets",
                       description="Every setting is a flag and a key of the --config TOML file (the key is the "
                                   "flag's name with underscores: --batch-size -> batch_size); flags given on the "
                                   "command line win.")
    t.add_argument("--config", help="TOML file with any of the settings below (flags given on the command line win)")
    t.add_argument("--resume", metavar="RUN", help="continue a killed run from its last checkpoint, with its own "
                                                   "settings (--epochs may raise the total)")
    _add_settings(t, "headpose.train", "TrainConfig")

    # --- evaluate ------------------------------------------------------------------------------------------
    e = sub.add_parser("evaluate", help="MAE per angle of a model on .npz test sets")
    e.add_argument("--model", nargs="+", required=True, help=".keras, .h5, .tflite or .onnx, or a bundled model: "
                   + BUNDLED_HELP + "; several to compare them (one table each, one plot with a line each)")
    e.add_argument("--data", nargs="+", help="test .npz files")
    e.add_argument("--photos", help="end to end: a folder of photos with .mat labels (AFLW2000 layout), through the "
                                    "face detector as predict runs it; reports faces missed per yaw bin")
    e.add_argument("--half", choices=("a", "b"), help="with --photos: the even (a) or odd (b) photos in name order")
    e.add_argument("--margin", type=float, help="with --photos: crop margin (default: the model card's)")
    _flip_flag(e)
    e.add_argument("--grey", action="store_true", help="with --data: score grey copies of the crops (a grey or "
                                                        "near-infrared camera's view)")
    e.add_argument("--json", help="write the results as JSON")
    e.add_argument("--plot", help="PNG: absolute error against true yaw (several models: side by side, per bin of "
                                  "|yaw|)")
    e.add_argument("--batch-size", type=_positive_int, default=64, help="crops per model call (default: 64)")

    # --- export --------------------------------------------------------------------------------------------
    so = sub.add_parser("soup", help="average the weights of runs fine-tuned from one model (a model soup)")
    so.add_argument("--model", nargs="+", required=True, help=".keras checkpoints of the same network (or the "
                                                               "bundled full / lite)")
    so.add_argument("--out", required=True, help="the averaged model (.keras)")

    x = sub.add_parser("export", help="convert a .keras model to TFLite (float/int8) or ONNX")
    x.add_argument("--model", required=True, help=".keras, legacy .h5 weights, or a bundled model: full, lite")
    x.add_argument("--format", required=True, choices=("tflite", "tflite-int8", "onnx"))
    x.add_argument("--out", required=True, help="the file: .tflite (tflite, tflite-int8) or .onnx")
    x.add_argument("--calib", help=".npz with representative crops (int8 calibration and the parity check; labels "
                                   "not needed)")

    # --- predict -------------------------------------------------------------------------------------------
    r = sub.add_parser("predict", help="pose of every face in an image, folder, video or webcam")
    r.add_argument("source", nargs="+", help="image, folder (recursive), video file, or webcam index (0, 1, ...); "
                                             "with --engine ray: several images, folders and videos")
    r.add_argument("--model", help="pose model file, or a bundled model: " + BUNDLED_HELP + DEFAULT_FULL)
    r.add_argument("--out", help="folder for annotated images / video")
    r.add_argument("--json", help="write one JSON object per face (JSON Lines)")
    r.add_argument("--show", action="store_true", help="live window (video, webcam)")
    r.add_argument("--threads", type=_positive_int, default=None,
                   help="CPU threads: workers that detect and crop for folders and videos, and the pose model's "
                        "(default: up to 2)")
    _flip_flag(r)
    r.add_argument("--smooth", action="store_true", help="steadier angles in videos: One-Euro filter per tracked "
                                                         "face and angle (off by default)")
    r.add_argument("--draw", choices=("axis", "cube"), default="axis",
                   help="what --out and --show draw on each face: the head axes (default) or the pose cube")
    r.add_argument("--min-score", type=_score, default=0.5, help="face detector score threshold, 0..1 (default: 0.5)")
    r.add_argument("--detector", choices=("full", "short"), default="full",
                   help="BlazeFace full range (default; faces up to a few metres) or short range (close-ups, faster)")
    r.add_argument("--fallback", action=argparse.BooleanOptionalAction, default=None,
                   help="when the full-range detector finds no face, look again with the short-range one and on the "
                        "image zoomed out: finds turned-away close-ups, and more false faces in empty frames "
                        "(default: on with --detector full)")
    r.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (default: this machine) or ray (a Ray Data pipeline: a local Ray instance with this "
                        "machine's cores, or the cluster at --address; needs the [ray] extra)")
    r.add_argument("--address", help="with --engine ray: a running Ray cluster (ray start --head prints it; auto: "
                                     "the one on this node)")
    r.add_argument("--parquet", metavar="DIR", help="with --engine ray: write one row per face as Parquet files in "
                                                    "DIR; sources already there are skipped on a re-run")

    # --- demo ----------------------------------------------------------------------------------------------
    d = sub.add_parser("demo", help="predict on a bundled sample photo; needs no download")
    d.add_argument("--out", default="headpose-demo", help="folder for the annotated image and JSON")
    d.add_argument("--model", help="pose model file, or a bundled model: " + BUNDLED_HELP + DEFAULT_FULL)

    # --- bench ---------------------------------------------------------------------------------------------
    b = sub.add_parser("bench", help="speed: pose crops/s per runtime, end-to-end frames/s, training samples/s")
    b.add_argument("--json", help="write the results as JSON")
    b.add_argument("--peer", help="another .tflite to time in the same run (e.g. the seed's)")
    b.add_argument("--model", help="pose model to time, or a bundled model: " + BUNDLED_HELP + DEFAULT_FULL)
    b.add_argument("--quick", action="store_true", help="fewer repetitions")

    # --- prepare -------------------------------------------------------------------------------------------
    q = sub.add_parser("prepare", help="pack a dataset in its original layout into .npz")
    q.add_argument("format", choices=("300wlp", "aflw2000", "aflw-wild", "biwi", "folder", "faces"),
                   help="faces: unlabelled photos, packed with unknown (NaN) pose for `data label`")
    q.add_argument("--src", required=True)
    q.add_argument("--out", required=True, help="OUT.npz (with --split: OUT_train.npz and OUT_test.npz)")
    q.add_argument("--size", type=int, default=64)
    q.add_argument("--margin", type=float, default=None, help="crop margin (default: 0.6 for 300W-LP/AFLW, 0.4 else)")
    q.add_argument("--fill", default=None, help="aflw-wild: what fills the crop box beyond each crop: blur (the "
                                                "default: mirrored, defocused), reflect or black")
    q.add_argument("--workers", type=_positive_int, default=None)
    q.add_argument("--split", type=float, default=None, help="train fraction, split by sequence / identity")
    q.add_argument("--holdout", type=lambda t: [g for g in t.split(",") if g], default=None, metavar="G1,G2",
                   help="name the held-out sequences / identities instead of drawing them (writes _train/_test)")
    q.add_argument("--groups", type=lambda t: [g for g in t.split(",") if g], default=None, metavar="G1,G2",
                   help="pack only these sequences / identities / parts (e.g. BIWI 02,14)")
    q.add_argument("--seed", type=int, default=0)

    # --- data show -----------------------------------------------------------------------------------------
    ds = sub.add_parser("data", help="inspect packed datasets").add_subparsers(dest="data_command", required=True)
    s = ds.add_parser("show", help="contact sheet of crops with pose axes")
    s.add_argument("npz")
    s.add_argument("--out", required=True, help="PNG")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    h = ds.add_parser("halves", help="split a set into two fixed halves (even / odd rows): select on one, "
                                      "report both")
    h.add_argument("npz")
    h.add_argument("--out", nargs=2, metavar=("A.npz", "B.npz"), help="default: NAME_a.npz NAME_b.npz beside it")
    su = ds.add_parser("subset", help="rows of a set by |yaw| range and/or an evenly spaced sample; or sets joined")
    su.add_argument("npz", nargs="+", help="one set (several are joined in order)")
    su.add_argument("--out", required=True)
    su.add_argument("--yaw", type=_yaw_range, default=None, metavar="LO,HI",
                    help="keep rows with LO <= |yaw| <= HI (degrees)")
    su.add_argument("--n", type=int, default=None, help="keep N rows, evenly spaced")
    lb = ds.add_parser("label", help="pseudo-labels from one of our models (distillation, unknown angles)")
    lb.add_argument("npz")
    lb.add_argument("--model", required=True, help="our model file, or a bundled model: " + BUNDLED_HELP)
    lb.add_argument("--out", required=True)
    _flip_flag(lb, default=True)
    lb.add_argument("--missing", action="store_true", help="fill only the unknown (NaN) angles")

    # --- synth ---------------------------------------------------------------------------------------------
    sy = sub.add_parser("synth", help="synthetic data").add_subparsers(dest="synth_command", required=True)
    sr = sy.add_parser("render", help="render textured meshes at known angles")
    sr.add_argument("--image_dir", "--image-dir", dest="image_dir", required=True, help="textures NAME.png")
    sr.add_argument("--obj_dir", "--obj-dir", dest="obj_dir", required=True, help="meshes NAME.obj")
    sr.add_argument("--out", "--output_directory", dest="out", required=True)
    sr.add_argument("--size", type=int, default=256)
    sr.add_argument("--yaw", type=_csv_or_range, default=None, help="start:stop:step or a,b,c (default -90:90:10)")
    sr.add_argument("--pitch", type=_csv_or_range, default=None, help="default -45,-30,0,30,45")
    sr.add_argument("--roll", type=_csv_or_range, default=None, help="default -45,-30,0,30,45")
    sr.add_argument("--random", type=_positive_int, default=None, metavar="K",
                    help="K random poses per mesh instead")
    sr.add_argument("--background", choices=("black", "blur", "photo"), default="black")
    sr.add_argument("--lighting", type=float, default=0.0, metavar="S",
                    help="random directional light and colour cast per render, strength 0..1 (default 0: "
                         "texture as it is)")
    sr.add_argument("--colour-cast", type=float, default=None, metavar="S",
                    help="strength of the colour cast alone (default: as --lighting; 0: light without a cast)")
    sr.add_argument("--workers", type=_positive_int, default=None)
    sr.add_argument("--seed", type=int, default=0)
    sm = sy.add_parser("mesh", help="build textured face meshes from photos")
    sm.add_argument("--images", required=True)
    sm.add_argument("--out", required=True)
    sm.add_argument("--workers", type=_positive_int, default=None)
    return p


def dispatch(a: argparse.Namespace) -> int:
    cmd = a.command
    if cmd == "train":
        from dataclasses import fields

        from headpose.train import TrainConfig, train_from_settings

        train_from_settings({f.name: getattr(a, f.name) for f in fields(TrainConfig)}, config=a.config,
                            resume=a.resume)
    elif cmd == "evaluate":
        from headpose.evaluate import evaluate, evaluate_models

        if not a.data and not a.photos:
            raise HeadposeError("give test sets (--data A.npz ...) and/or labelled photos (--photos DIR)")
        if not a.photos and (a.half or a.margin is not None):
            raise HeadposeError("--half and --margin go with --photos (end to end on labelled photos)")
        if a.photos and len(a.model) > 1:
            raise HeadposeError("--photos takes one --model at a time")
        if a.data and len(a.model) > 1:
            evaluate_models(a.model, a.data, json_out=a.json, plot=a.plot, batch_size=a.batch_size, grey=a.grey,
                            flip=a.flip)
        elif a.data:
            evaluate(a.model[0], a.data, json_out=a.json, plot=a.plot, batch_size=a.batch_size, grey=a.grey,
                     flip=a.flip)
        if a.photos:
            from headpose.evaluate import evaluate_photos

            evaluate_photos(a.model[0], a.photos, half=a.half, margin=a.margin, flip=a.flip,
                            json_out=None if a.data else a.json)
    elif cmd == "soup":
        from headpose.train import average_weights

        average_weights(a.model, a.out)
    elif cmd == "export":
        from headpose.export import export

        export(a.model, a.format, a.out, calib=a.calib)
    elif cmd == "predict" and a.engine == "ray":
        from headpose.engine_ray import predict_ray

        if a.out or a.show:
            raise HeadposeError("--engine ray writes rows only (--json, --parquet): no --out or --show")
        predict_ray(a.source, model=a.model, json_out=a.json, parquet=a.parquet, address=a.address,
                    min_score=a.min_score, detector=a.detector, flip=a.flip, smooth=a.smooth, fallback=a.fallback)
    elif cmd == "predict":
        from headpose.predict import predict_source

        if a.address or a.parquet:
            raise HeadposeError("--address and --parquet go with --engine ray")
        if len(a.source) > 1:
            raise HeadposeError("the local engine takes one source (an image, a folder, a video or a webcam): "
                                "put the files in a folder, or use --engine ray")
        predict_source(a.source[0], model=a.model, out=a.out, json_out=a.json, show=a.show, threads=a.threads,
                       min_score=a.min_score, detector=a.detector, flip=a.flip, smooth=a.smooth,
                       fallback=a.fallback)
    elif cmd == "demo":
        from headpose.demo import demo

        demo(out=a.out, model=a.model)
    elif cmd == "bench":
        from headpose.bench import bench

        bench(json_out=a.json, peer=a.peer, model=a.model, quick=a.quick)
    elif cmd == "prepare":
        from headpose.data.prepare import prepare

        return 0 if prepare(a.format, a.src, a.out, size=a.size, margin=a.margin, workers=a.workers,
                            split=a.split, seed=a.seed, test_groups=a.holdout, groups=a.groups, fill=a.fill) else 1
    elif cmd == "data" and a.data_command == "halves":
        from headpose.data.npz import halves

        halves(a.npz, *(a.out or ()))
    elif cmd == "data" and a.data_command == "subset":
        from headpose.data.npz import concat, subset

        if len(a.npz) > 1:
            if a.yaw is not None or a.n is not None:
                raise HeadposeError("data subset: join several sets, or select rows of one, not both")
            concat(a.npz, a.out)
        else:
            subset(a.npz[0], a.out, yaw=a.yaw, n=a.n)
    elif cmd == "data" and a.data_command == "label":
        from headpose.data.pseudo import pseudo_label

        pseudo_label(a.npz, a.model, a.out, flip=a.flip, missing=a.missing)
    elif cmd == "data":
        from headpose.data.show import show

        show(a.npz, a.out, n=a.n, seed=a.seed)
    elif cmd == "synth" and a.synth_command == "render":
        from headpose.synth.render import render_dir

        summary = render_dir(a.image_dir, a.obj_dir, a.out, size=a.size, yaw=a.yaw, pitch=a.pitch, roll=a.roll,
                             random=a.random, background=a.background, workers=a.workers, seed=a.seed,
                             lighting=a.lighting, colour_cast=a.colour_cast)
        return 0 if summary["images"] else 1  # as prepare: nothing made is a failure
    elif cmd == "synth" and a.synth_command == "mesh":
        from headpose.synth.mesh import mesh_dir

        return 0 if mesh_dir(a.images, a.out, workers=a.workers)["meshes"] else 1
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    a = build_parser().parse_args(argv)
    try:
        return dispatch(a)
    except HeadposeError as e:
        print(f"headpose: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in TRAIN_EXTRA:
            raise
        print(f"headpose: error: {a.command} needs {e.name}, which the core install leaves out (.keras and .h5 "
              "models, training, export): pip install 'headpose-ssr[train]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("headpose: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
