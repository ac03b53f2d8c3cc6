"""The digits a zoo entry still misreads, on all 10,000 digits of the MNIST test split.

    python results/frontier/misreads.py siamese_vgg_distilled --data ../shared/mnist_t10k

Writes, beside this file, misreads_NAME.md (digit error, the confusion matrix of true against
read digits, the most frequent confusions) and misreads_NAME.png (every misread digit at 14x14,
as the model saw it, titled "true→read (probability)"). The model is the entry's release
(its card's weights); the digits are prepared as for training: the 2x2 mean of 28x28 pixels.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent


def read_digits(model, images: np.ndarray) -> np.ndarray:
    """Each 14x14 digit as the first of a pair (itself twice): (N, 10) probabilities."""
    pairs = np.stack([images, images], axis=1).astype("float32")
    return np.asarray(model.predict(pairs, batch_size=1000, verbose=0)["digit_a"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="zoo entry (its release weights are read)")
    parser.add_argument("--data", default="../shared/mnist_t10k",
                        help="folder of the MNIST test-split idx files")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)

    from matplotlib.figure import Figure

    from pairzoo.data.pairs import downsample
    from pairzoo.data.sources import load_idx
    from pairzoo.zoo import load_release_model

    pools = load_idx(args.data)  # a t10k-only folder: its two halves, every digit once
    images = np.concatenate([pools.train.images, pools.test.images])
    labels = np.concatenate([pools.train.labels, pools.test.labels])
    probs = read_digits(load_release_model(args.name), downsample(images))
    read = probs.argmax(axis=1)
    wrong = np.flatnonzero(read != labels)

    matrix = pd.crosstab(pd.Series(labels, name="true"), pd.Series(read, name="read"))
    confusions = (pd.DataFrame({"true": labels[wrong], "read": read[wrong]})
                  .value_counts().rename("count").reset_index().head(10))
    error = 100 * len(wrong) / len(labels)
    page = [f"# {args.name}: the digits it misreads",
            "",
            f"Release weights, all {len(labels):,} MNIST test-split digits (14x14, 2x2 mean): "
            f"**{len(wrong)} misread, digit error {error:.2f} %**. Made by "
            f"`python results/frontier/misreads.py {args.name}`.",
            "", "## Confusion matrix (rows: true digit, columns: digit read)", "",
            matrix.to_markdown(), "", "## Most frequent confusions", "",
            confusions.to_markdown(index=False), "",
            f"![every misread digit](misreads_{args.name}.png)", ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"misreads_{args.name}.md").write_text("\n".join(page))

    columns = 16
    rows = max(1, math.ceil(len(wrong) / columns))
    figure = Figure(figsize=(columns * 0.8, rows * 0.95))
    small = downsample(images[wrong])
    for i, index in enumerate(wrong):
        axis = figure.add_subplot(rows, columns, i + 1)
        axis.imshow(small[i], cmap="gray", vmin=0, vmax=255)
        axis.set_title(f"{labels[index]}→{read[index]} ({probs[index].max():.2f})", fontsize=7)
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(args.out / f"misreads_{args.name}.png", dpi=100)
    print(f"{args.name}: {len(wrong)} of {len(labels):,} digits misread ({error:.2f} %); "
          f"{args.out}/misreads_{args.name}.md")


if __name__ == "__main__":
    main()
