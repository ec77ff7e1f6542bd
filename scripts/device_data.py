"""Carry packed training sets to the device machine (a GPU lent to some sessions, reached only through a copy of the
working tree of at most 64 MiB per call) and back into the same ``.npz`` files there.

    python scripts/device_data.py pack devdata runs/data/wild_train.npz runs/data/biwi_train10.npz ...
    python scripts/device_data.py unpack devdata runs/data        # on the device machine

``pack`` stores each set's images as lossless WebP (2-4x smaller than raw pixels on these faces; every image is
decoded and compared before anything is written) with its other arrays as they are, split into parts of at most
``--part-mb`` MB spread over folders ``devdata/c0``, ``devdata/c1``, ... each of at most ``--carry-mb`` MB, so
that each folder travels in one call (``carry``) while the machine stays warm. A set whose images equal an earlier
set's (teacher labels on the same crops) stores only its labels and the other set's name. ``unpack`` rebuilds
every set from all the folders present, checks the image count, and writes each ``.npz`` atomically; the rebuilt
files equal the originals (same arrays, same dtypes).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from headpose.data.npz import save_npz  # noqa: E402
from headpose.io import atomic_path  # noqa: E402


def encode(images: np.ndarray) -> list[bytes]:
    out = []
    for i, im in enumerate(images):
        ok, buf = cv2.imencode(".webp", im, [cv2.IMWRITE_WEBP_QUALITY, 101])  # 101: lossless
        if not ok or not np.array_equal(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED), im):
            raise SystemExit(f"image {i}: lossless WebP round trip failed")
        out.append(buf.tobytes())
    return out


def pack(out: Path, sets: list[Path], part_mb: float, carry_mb: float) -> None:
    parts = []  # (file name, arrays)
    seen: dict[str, np.ndarray] = {}
    for path in sets:
        with np.load(path) as d:
            arrays = {k: d[k] for k in d.files}
        images = arrays.pop("image")
        same = next((name for name, im in seen.items() if im.shape == images.shape and np.array_equal(im, images)),
                    None)
        meta = {"set": path.stem, "n": len(images), "shape": list(images.shape), "same_images_as": same}
        if same is not None:
            parts.append((f"{path.stem}.p0.npz", {"meta": np.array(json.dumps(meta)), **arrays}))
            print(f"{path.name}: {len(images)} images as {same}'s, labels only")
            continue
        seen[path.stem] = images
        blobs = encode(images)
        print(f"{path.name}: {len(images)} images, {images.nbytes / 1e6:.0f} MB raw -> "
              f"{sum(map(len, blobs)) / 1e6:.0f} MB WebP")
        start, k = 0, 0
        while start < len(blobs):
            end, size = start, 0
            while end < len(blobs) and (end == start or size + len(blobs[end]) <= part_mb * 1e6):
                size += len(blobs[end])
                end += 1
            lens = np.array([len(b) for b in blobs[start:end]], np.int64)
            part = {"meta": np.array(json.dumps({**meta, "start": start})),
                    "blob": np.frombuffer(b"".join(blobs[start:end]), np.uint8), "lengths": lens}
            if k == 0:
                part.update(arrays)
            parts.append((f"{path.stem}.p{k}.npz", part))
            start, k = end, k + 1
    bins: list[float] = []  # first fit, largest part first: each folder at most carry_mb
    for name, arrays in sorted(parts, key=lambda p: -sum(a.nbytes for a in p[1].values())):
        size = sum(a.nbytes for a in arrays.values()) / 1e6
        folder = next((i for i, used in enumerate(bins) if used + size <= carry_mb), len(bins))
        if folder == len(bins):
            bins.append(0.0)
        bins[folder] += size
        dest = out / f"c{folder}" / name
        with atomic_path(dest) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    for c in sorted(out.glob("c*")):
        print(f"{c}: {sum(f.stat().st_size for f in c.iterdir()) / 2**20:.1f} MiB")


def unpack(src: Path, out: Path, only: list[str] | None = None) -> None:
    parts: dict[str, list[dict]] = {}
    for f in sorted(src.glob("c*/*.npz")):
        with np.load(f) as d:
            arrays = {k: d[k] for k in d.files}
        meta = json.loads(str(arrays.pop("meta")))
        if only is None or meta["set"] in only:
            parts.setdefault(meta["set"], []).append({"meta": meta, **arrays})
    images: dict[str, np.ndarray] = {}
    for name, ps in sorted(parts.items(), key=lambda kv: kv[1][0]["meta"]["same_images_as"] is not None):
        meta = ps[0]["meta"]
        if meta["same_images_as"] is not None:
            if meta["same_images_as"] not in images:
                raise SystemExit(f"{name}: the images of {meta['same_images_as']}, which it shares, are not here")
            im = images[meta["same_images_as"]]
            extra = {k: v for k, v in ps[0].items() if k != "meta"}
        else:
            ps.sort(key=lambda p: p["meta"]["start"])
            im = np.empty(meta["shape"], np.uint8)
            extra = {}
            got = 0
            for p in ps:
                off = np.concatenate([[0], np.cumsum(p["lengths"])])
                for j in range(len(p["lengths"])):
                    im[p["meta"]["start"] + j] = cv2.imdecode(p["blob"][off[j]:off[j + 1]], cv2.IMREAD_UNCHANGED)
                got += len(p["lengths"])
                extra.update({k: v for k, v in p.items() if k not in ("meta", "blob", "lengths")})
            if got != meta["n"]:
                raise SystemExit(f"{name}: {got} of {meta['n']} images present (a carry folder missing?)")
            images[name] = im
        dest = out / f"{name}.npz"
        extra.pop("img_size", None)
        save_npz(dest, im, extra.pop("pose"), **extra)
        print(f"{dest}: {len(im)} images")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("out", type=Path)
    a.add_argument("sets", nargs="+", type=Path)
    a.add_argument("--part-mb", type=float, default=20.0)
    a.add_argument("--carry-mb", type=float, default=52.0)
    b = sub.add_parser("unpack")
    b.add_argument("src", type=Path)
    b.add_argument("out", type=Path)
    b.add_argument("--sets", nargs="*", help="only these sets (names without .npz)")
    args = p.parse_args(argv)
    if args.cmd == "pack":
        pack(args.out, args.sets, args.part_mb, args.carry_mb)
    else:
        unpack(args.src, args.out, args.sets)


if __name__ == "__main__":
    main()
