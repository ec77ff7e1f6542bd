"""Greedy model soup (Wortsman et al., 2022) on the selection data only: start from the first model, try adding
each candidate in turn (in the order given) and keep it if the uniform average's selection MAE drops. Prints
every step; writes the best soup to ``--out``. The reported sets are never read.

    python scripts/experiments/greedy_soup.py runs/wild_v2/best.keras runs/wild_b2/best.keras ... --out S.keras
    python scripts/experiments/greedy_soup.py --flip ...     # score each soup mirror-averaged (the full model)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from compare_selection import SELECTION, errors, score  # noqa: E402

from headpose.train import average_weights  # noqa: E402


def soup_score(paths: list[str], flip: bool, tmp: Path) -> float:
    if len(paths) == 1:
        return score(errors(paths[0], SELECTION, flip)[0])
    out = average_weights(paths, tmp / "candidate.keras")  # each candidate soup replaces the previous one
    return score(errors(str(out), SELECTION, flip)[0])


def main(models: list[str], out: str, flip: bool) -> None:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        chosen = [models[0]]
        best = soup_score(chosen, flip, tmp)
        print(f"start {models[0]}: {best:.3f}", flush=True)
        for m in models[1:]:
            s = soup_score(chosen + [m], flip, tmp)
            keep = s < best
            print(f"+ {m}: {s:.3f} {'kept' if keep else 'dropped'}", flush=True)
            if keep:
                chosen, best = chosen + [m], s
        print(f"soup of {len(chosen)}: {best:.3f} = {' '.join(chosen)}")
        if len(chosen) > 1:
            average_weights(chosen, out)
        else:
            print(f"no candidate improved on {models[0]} alone: nothing written to {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--flip", action="store_true")
    a = ap.parse_args()
    main(a.models, a.out, a.flip)
