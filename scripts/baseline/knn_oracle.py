#!/usr/bin/python3
"""scikit-learn oracle for the Go knn package (docs/ALGORITHM.md, "kNN protocol").

Run with Debian's /usr/bin/python3 and python3-sklearn (apt-get install -y
python3-sklearn); it needs nothing else.

  knn_oracle.py score FIXTURE.json[.gz]
      FIXTURE holds {"dim", "k", "points" (flat, row-major float32 values),
      "labels", "train", "test"}; prints {"accuracy", "predictions",
      "sklearn"} as JSON: KNeighborsClassifier(k) fitted on the train rows,
      scored on the test rows.

  knn_oracle.py make-fixture OUT.json.gz
      writes the committed fixture knn/testdata/sklearn_knn.json.gz:
      Gaussian blobs (2-D and 8-D) with overlapping, unequal classes, a
      StratifiedShuffleSplit test split of n/7, and scikit-learn's
      predictions, accuracy and per-class test counts.

Points are float32 values written as short decimals; both sides read them
the same way (decimal -> float64 -> float32), so Go and scikit-learn see
the same values, and scikit-learn's trees compute in float64 from them, as
the Go code does.
"""
import gzip
import json
import sys

import numpy as np
import sklearn
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.neighbors import KNeighborsClassifier


def open_any(path, mode="rt"):
    return gzip.open(path, mode) if path.endswith(".gz") else open(path, mode)


def score(case):
    dim, k = case["dim"], case["k"]
    x = np.asarray(case["points"], dtype=np.float32).reshape(-1, dim).astype(np.float64)
    y = np.asarray(case["labels"], dtype=np.int64)
    train = np.asarray(case["train"], dtype=np.int64)
    test = np.asarray(case["test"], dtype=np.int64)
    clf = KNeighborsClassifier(n_neighbors=k).fit(x[train], y[train])
    pred = clf.predict(x[test])
    return {
        "accuracy": float(np.mean(pred == y[test])),
        "predictions": [int(p) for p in pred],
        "sklearn": sklearn.__version__,
    }


def blobs(rng, n, dim, sizes, spread):
    """Unequal, overlapping Gaussian classes: accuracy well below 1, so
    votes and ties matter."""
    p = np.asarray(sizes, dtype=np.float64)
    y = rng.choice(len(sizes), size=n, p=p / p.sum())
    centres = rng.normal(0.0, 1.0, size=(len(sizes), dim)) * 4.0
    x = centres[y] + rng.normal(0.0, spread, size=(n, dim))
    return (x * 10.0).astype(np.float32), y


def make_case(name, rng, n, dim, sizes, spread, seed):
    x, y = blobs(rng, n, dim, sizes, spread)
    test_size = min(10000, n // 7)
    split = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train, test = next(split.split(np.zeros(n), y))
    train.sort()
    test.sort()
    case = {
        "name": name,
        "dim": dim,
        "k": 15,
        # The shortest decimal that rounds back to each float32; json
        # prints it unchanged (repr of the nearest float64).
        "points": [float(np.format_float_positional(v, unique=True)) for v in x.ravel()],
        "labels": [int(v) for v in y],
        "train": [int(v) for v in train],
        "test": [int(v) for v in test],
        "test_size": test_size,
    }
    counts = np.bincount(y[test], minlength=len(sizes))
    case["test_counts"] = [int(c) for c in counts]
    case.update(score(case))
    return case


def main(argv):
    if len(argv) == 3 and argv[1] == "score":
        with open_any(argv[2]) as f:
            case = json.load(f)
        json.dump(score(case), sys.stdout)
        sys.stdout.write("\n")
        return 0
    if len(argv) == 3 and argv[1] == "make-fixture":
        rng = np.random.default_rng(20260127)
        cases = [
            make_case("2d-blobs", rng, 7000, 2, [5, 3, 8, 2, 6, 4, 7, 1, 9, 5], 2.0, 1),
            make_case("8d-blobs", rng, 2100, 8, [3, 5, 2, 4], 3.5, 2),
        ]
        with open_any(argv[2], "wt") as f:
            json.dump({"generator": "scripts/baseline/knn_oracle.py make-fixture", "cases": cases}, f)
        for c in cases:
            print(f"{c['name']}: n={len(c['labels'])} test={c['test_size']} accuracy={c['accuracy']:.4f}", file=sys.stderr)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
