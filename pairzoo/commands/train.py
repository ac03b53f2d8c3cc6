"""`pairzoo train` and `pairzoo evaluate`.

Everything that can be checked without TensorFlow is checked first (the model name and
options, the data, where the run will be written), so a mistake is reported in a second, not
after TensorFlow's start-up; then a status line shows while TensorFlow loads.
"""

from __future__ import annotations

import argparse

from pairzoo.commands.common import (
    console,
    metrics_table,
    positive_float,
    positive_int,
    seed_int,
)
from pairzoo.data.sources import DEFAULT_SOURCE, SOURCE_HELP


def _overrides(args) -> dict:
    from pairzoo.config import parse_override

    overrides = dict(parse_override(item) for item in args.set or [])
    flags = {"train.epochs": args.epochs, "train.batch_size": args.batch_size,
             "train.learning_rate": args.lr, "share_weights": args.share, "head": args.head,
             "aux_weight": args.aux_weight}
    overrides.update({k: v for k, v in flags.items() if v is not None})
    return overrides


def loading_tensorflow(out):
    """A transient status line on a terminal while Keras and TensorFlow import (seconds)."""
    import contextlib

    if not out.is_terminal:
        return contextlib.nullcontext()
    return out.status("loading TensorFlow ...", spinner="dots")


def cmd_train(args) -> int:
    from pairzoo.registry import get_preset
    from pairzoo.runs import RunSpec, check_run_dir, default_run_dir

    spec = RunSpec(get_preset(args.name, **_overrides(args)), args.seed, args.train_data,
                   args.test_data, init_from=args.init_from)
    pairs = spec.pairs()  # data errors now, before TensorFlow
    if args.init_from not in (None, "zoo"):
        from pairzoo.runs import model_path

        model_path(args.init_from)
    check_run_dir(args.out if args.out is not None else default_run_dir(spec),
                  must_be_free=args.out is not None)
    err = console(stderr=True)
    with loading_tensorflow(err):
        from pairzoo.progress import EpochProgress
        from pairzoo.training import save_run, train
    callbacks = [EpochProgress(spec.name, spec.preset.train.epochs)]
    if args.tensorboard:
        callbacks.append(_tensorboard(args.tensorboard))
    result = train(spec, pairs=pairs, device=args.device, callbacks=callbacks, loop=args.loop)
    run_dir = save_run(result, args.out)
    out = console()
    out.print(metrics_table(f"{spec.name} (seed {spec.seed})", result.metrics))
    out.print(f"test error {result.metrics['test_error']:g} %  ->  {run_dir}", highlight=False)
    return 0


def _tensorboard(log_dir: str):
    import importlib.util

    from pairzoo.errors import PairzooError

    if importlib.util.find_spec("tensorboard") is None:
        raise PairzooError("--tensorboard needs TensorBoard: pip install 'pairzoo[tensorboard]'")
    import keras

    return keras.callbacks.TensorBoard(log_dir)


def cmd_evaluate(args) -> int:
    from pairzoo.interface import digit_outputs_trained
    from pairzoo.references import resolve_model

    ref = resolve_model(args.model)  # a run folder, a .keras file, or a zoo name (its release)
    seed, pairs_option = args.seed, args.pairs
    if ref.kind == "release" and args.test_data is not None:
        from pairzoo.zoo import CARD_SEED

        # another source means the card's protocol: every pair of its test split, seed 0
        seed = CARD_SEED if seed is None else seed
        pairs_option = pairs_option or "all"
    whole = pairs_option == "all"
    n = None if whole else (int(pairs_option) if pairs_option else -1)
    if ref.spec is not None:
        pairs = ref.spec.test_pairs(n, test_data=args.test_data, seed=seed, whole_split=whole)
        seed = ref.spec.seed if seed is None else seed
        where = args.test_data or ref.spec.test_source
    else:  # a bare model file: no run to take the pairs from
        from pairzoo.data import DEFAULT_SOURCE, load_test_pairs

        seed, where = seed or 0, args.test_data or DEFAULT_SOURCE
        pairs = load_test_pairs(None if whole else (1000 if n == -1 else n), seed, where,
                                whole_split=whole)
    with loading_tensorflow(console(stderr=True)):
        from pairzoo.evaluation import evaluate
    metrics = evaluate(ref.load(), pairs, device=args.device)
    config = ref.spec.preset.model if ref.spec else None
    if config and "digit_accuracy" in metrics and not digit_outputs_trained(config.head,
                                                                           config.aux_weight):
        # chance level by construction: say so where the number appears
        metrics["digit_accuracy (outputs untrained)"] = metrics.pop("digit_accuracy")
    out = console()
    # two figures of two pair sets: say which is the recorded one and which is measured now
    out.print(f"model: {ref.describe()} (recorded)", highlight=False)
    out.print(metrics_table(f"measured now: {ref.name} on {len(pairs):,} pairs of {where} "
                            f"(seed {seed})", metrics))
    return 0


def pairs_count(text: str) -> str:
    if text == "all" or (text.isdigit() and int(text) > 0):
        return text
    raise argparse.ArgumentTypeError(f"expected a positive number of pairs or 'all', got "
                                     f"{text!r}")


def add_parsers(commands) -> None:
    p = commands.add_parser("train", help="train a zoo model and write a run folder")
    p.add_argument("name", help="zoo model name (see `pairzoo list`)")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=positive_float, help="learning rate")
    p.add_argument("--seed", type=seed_int, default=0, help="pairs, initialisation and order (0)")
    p.add_argument("--share", action=argparse.BooleanOptionalAction, default=None,
                   help="weight sharing between the two towers")
    p.add_argument("--head", choices=("mlp", "argmax", "probabilistic"))
    p.add_argument("--aux-weight", type=float, help="weight of each digit loss (0 = off)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="any preset field, e.g. tower.dropout=0.2 (repeatable; see "
                        "`pairzoo show NAME`)")
    p.add_argument("--train-data", default=DEFAULT_SOURCE,
                   help=f"{SOURCE_HELP} ({DEFAULT_SOURCE})")
    p.add_argument("--test-data", help="as --train-data (default: the same source)")
    p.add_argument("--init-from", metavar="RUN_DIR|zoo",
                   help="fine-tune: start from a run folder's (or .keras file's) weights, or "
                        "from the entry's release weights ('zoo')")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="write TensorBoard logs here (pip install 'pairzoo[tensorboard]')")
    p.add_argument("--device", choices=("cpu", "gpu"))
    p.add_argument("--loop", choices=("auto", "fast", "fit"), default="auto",
                   help="training loop: fast (traced epochs, TensorFlow), fit (keras "
                        "model.fit), auto (default: fast where it can honour the callbacks)")
    p.add_argument("--out", help="run folder (default runs/NAME/TIME-seedS)")
    p.set_defaults(run=cmd_train)

    p = commands.add_parser("evaluate", help="evaluate a zoo entry's release, a run folder or "
                            "a .keras model")
    p.add_argument("model", help="zoo name (its release weights), run folder or .keras file")
    p.add_argument("--test-data", help=f"{SOURCE_HELP} (default: the run's; for a zoo "
                   "entry another source is read as its card does: --pairs all --seed 0)")
    p.add_argument("--seed", type=seed_int, help="test pairs' seed (default: the run's)")
    p.add_argument("--pairs", type=pairs_count,
                   help="number of test pairs (default: the run's), or 'all': every digit of "
                        "the source's test split (all of t10k in an idx folder of it)")
    p.add_argument("--device", choices=("cpu", "gpu"))
    p.set_defaults(run=cmd_evaluate)
