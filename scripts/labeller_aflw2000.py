"""Measure the aflw_wild labeller (pitch and roll from AFLW's 21 landmarks at a known yaw) on AFLW2000-3D.

AFLW2000's ``.mat`` files carry the same 21 points (``pt2d``) as ``aflw_wild/labels.csv`` and the 3D-fit pose
(``Pose_Para``): the labeller is given each photo's points and its true yaw, and its pitch and roll are compared
with ``Pose_Para``'s, per fixed half (a: even photos in name order, the half the labeller's choices were made on;
b: odd). Photos beyond ±99° (the protocol's filter) and the two whose ``pt2d`` is not 21 points are left out.

    python scripts/labeller_aflw2000.py [../shared/data/aflw2000]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from headpose.data.landmark_pose import MAX_LABEL_YAW, label
from headpose.data.mat import read_mat


def main(src: str = "../shared/data/aflw2000") -> None:
    true, pred = [], []
    for mat in sorted(Path(src).glob("*.mat")):
        pose, pt2d = read_mat(str(mat))
        pts = pt2d.T if pt2d.shape[0] == 2 else pt2d
        if np.abs(pose).max() > 99 or pts.shape[0] != 21:
            continue
        true.append(pose)
        pred.append(label(pts, float(pose[0])))
    true, pred = np.array(true), np.array(pred)
    print(f"labeller on {src}: pitch and roll from the 21 points at the true yaw, against Pose_Para "
          f"(labels only within ±{MAX_LABEL_YAW:g}° of yaw)")
    print("half  photos  labelled  pitch MAE  roll MAE  pitch median  roll median  pitch bias  roll bias")
    for name, k in (("a", 0), ("b", 1)):
        t, p = true[k::2], pred[k::2]
        ok = ~np.isnan(p[:, 1])
        d = p[ok, 1:] - t[ok, 1:]
        e = np.abs(d)
        print(f"{name:>4}  {len(t):6d}  {ok.sum():8d}  {e[:, 0].mean():9.2f}  {e[:, 1].mean():8.2f}  "
              f"{np.median(e[:, 0]):12.2f}  {np.median(e[:, 1]):11.2f}  {d[:, 0].mean():+10.2f}  "
              f"{d[:, 1].mean():+9.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
