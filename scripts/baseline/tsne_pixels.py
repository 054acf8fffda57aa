#!/usr/bin/python3
"""t-SNE of raw pixels, scored with the kNN protocol of docs/ALGORITHM.md.

The baseline that docs/BENCHMARKS.md puts next to t-SimCNE: all 70,000
images of Fashion-MNIST (or MNIST), pixels scaled to [0, 1], PCA to 50
dimensions (as is usual before t-SNE; it keeps the neighbour search
tractable), then scikit-learn's Barnes-Hut TSNE with its
defaults (perplexity 30, PCA initialisation, learning rate "auto"). The 2-D
map is scored with KNeighborsClassifier(15) on a stratified test split of
10,000 (a seventh of the data when smaller) and fitted on the other points.

Runs with Debian's /usr/bin/python3 and python3-sklearn (apt-get install -y
python3-sklearn); the data is Debian's dataset-fashion-mnist package
(/usr/share/datasets/fashion-mnist) or any directory with the four gzip IDX
files (e.g. the GoMNIST module's data directory for MNIST).

  /usr/bin/python3 scripts/baseline/tsne_pixels.py                 # Fashion-MNIST, all 70,000 (about 8 min on 2 cores)
  /usr/bin/python3 scripts/baseline/tsne_pixels.py --n 5000        # a quick check
  /usr/bin/python3 scripts/baseline/tsne_pixels.py --split split.json  # the exact split the Go code draws

--split takes {"test": [indices]} in dataset order (training images, then
the test images), as `go run ./scripts/baseline/knnsplit` writes it, so the
baseline and `embed` score the same 10,000 points. Without it the split is
scikit-learn's StratifiedShuffleSplit with the same size and per-class
allocation, seeded by --seed.

Prints one JSON object: dataset, n, test_size, accuracy, the seconds each
step took, scikit-learn's version and the CPU count; --out saves the map as
a float32 .npy file.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import sklearn
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.neighbors import KNeighborsClassifier

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path):
    """Reads a (possibly gzipped) IDX file of unsigned bytes."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {body.size} bytes for shape {dims}")
    return body.reshape(dims)


def load(directory):
    xs, ys = [], []
    for part in ("train", "test"):
        img, lab = (os.path.join(directory, f) for f in FILES[part])
        if not os.path.exists(img) and os.path.exists(img[:-3]):
            img, lab = img[:-3], lab[:-3]  # uncompressed copies
        x, y = read_idx(img), read_idx(lab)
        if len(x) != len(y):
            raise ValueError(f"{img}: {len(x)} images, {len(y)} labels")
        xs.append(x.reshape(len(x), -1))
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)


def default_test_size(n):
    """10,000, or a seventh of the data when smaller (knn.DefaultTestSize)."""
    return min(10000, n // 7)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="directory with the four IDX files")
    ap.add_argument("--n", type=int, default=0, help="use only the first N images (0: all)")
    ap.add_argument("--seed", type=int, default=0, help="seed of PCA, t-SNE and the split")
    ap.add_argument("--split", help='JSON {"test": [indices]} to score on instead of drawing a split')
    ap.add_argument("--pca", type=int, default=50, help="PCA dimensions before t-SNE (0: none)")
    ap.add_argument("--perplexity", type=float, default=30.0)
    ap.add_argument("--jobs", type=int, default=-1, help="threads for the neighbour search (-1: all cores)")
    ap.add_argument("--out", help="save the 2-D map here (.npy, float32)")
    ap.add_argument("--pixel-knn", action="store_true", help="also score kNN in raw pixel space")
    args = ap.parse_args()

    t0 = time.time()
    x, y = load(args.data)
    if args.n:
        if not 7 <= args.n <= len(x):
            sys.exit(f"--n {args.n}: need 7..{len(x)}")
        x, y = x[: args.n], y[: args.n]
    n = len(x)
    x = x.astype(np.float32) / 255.0
    t_load = time.time() - t0

    if args.split:
        with open(args.split) as f:
            test = np.asarray(json.load(f)["test"], dtype=np.int64)
        if test.size == 0 or test.min() < 0 or test.max() >= n:
            sys.exit(f"{args.split}: test indices outside 0..{n - 1}")
        mask = np.zeros(n, dtype=bool)
        mask[test] = True
        train = np.flatnonzero(~mask)
    else:
        split = StratifiedShuffleSplit(n_splits=1, test_size=default_test_size(n), random_state=args.seed)
        train, test = next(split.split(np.zeros(n), y))

    t0 = time.time()
    z = PCA(n_components=args.pca, random_state=args.seed).fit_transform(x) if args.pca else x
    t_pca = time.time() - t0

    t0 = time.time()
    tsne = TSNE(
        n_components=2,
        perplexity=args.perplexity,
        init="pca",
        learning_rate="auto",
        random_state=args.seed,
        n_jobs=args.jobs,
    )
    emb = tsne.fit_transform(z).astype(np.float32)
    t_tsne = time.time() - t0
    if args.out:
        np.save(args.out, emb)

    def knn_acc(features):
        clf = KNeighborsClassifier(n_neighbors=15).fit(features[train], y[train])
        return float(clf.score(features[test], y[test]))

    t0 = time.time()
    acc = knn_acc(emb)
    t_knn = time.time() - t0

    result = {
        "method": "t-SNE of raw pixels",
        "dataset": os.path.abspath(args.data),
        "n": n,
        "test_size": int(len(test)),
        "split": args.split or f"StratifiedShuffleSplit(random_state={args.seed})",
        "k": 15,
        "accuracy": round(acc, 4),
        "seconds": {
            "load": round(t_load, 1),
            "pca": round(t_pca, 1),
            "tsne": round(t_tsne, 1),
            "knn": round(t_knn, 1),
            "total": round(t_load + t_pca + t_tsne + t_knn, 1),
        },
        "pca_dims": args.pca,
        "perplexity": args.perplexity,
        "kl_divergence": round(float(tsne.kl_divergence_), 4),
        "sklearn": sklearn.__version__,
        "cpus": os.cpu_count(),
    }
    if args.pixel_knn:
        t0 = time.time()
        result["pixel_knn_accuracy"] = round(knn_acc(x), 4)
        result["seconds"]["pixel_knn"] = round(time.time() - t0, 1)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
