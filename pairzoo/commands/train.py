"""`pairzoo train` and `pairzoo evaluate`."""

from __future__ import annotations

import argparse

from pairzoo.commands.common import console, metrics_table, positive_float, positive_int, seed_int
from pairzoo.data.sources import SOURCE_HELP


def _overrides(args) -> dict:
    from pairzoo.config import parse_override

    overrides = dict(parse_override(item) for item in args.set or [])
    flags = {"train.epochs": args.epochs, "train.batch_size": args.batch_size,
             "train.learning_rate": args.lr, "share_weights": args.share, "head": args.head,
             "aux_weight": args.aux_weight}
    overrides.update({k: v for k, v in flags.items() if v is not None})
    return overrides


def cmd_train(args) -> int:
    from pairzoo.progress import EpochProgress
    from pairzoo.registry import get_preset
    from pairzoo.training import save_run, train

    preset = get_preset(args.name, **_overrides(args))
    result = train(preset, seed=args.seed, train_data=args.train_data,
                   test_data=args.test_data, device=args.device, engine=args.engine,
                   callbacks=[EpochProgress(preset.name, preset.train.epochs)])
    run_dir = save_run(result, args.out)
    out = console()
    out.print(metrics_table(f"{preset.name} (seed {args.seed})", result.metrics))
    out.print(f"test error {result.metrics['test_error']:.2f} %  ->  {run_dir}", highlight=False)
    return 0


def cmd_evaluate(args) -> int:
    from pairzoo.data import load_pairs
    from pairzoo.evaluation import evaluate
    from pairzoo.runs import load_model, run_config

    config = run_config(args.model)
    seed = args.seed if args.seed is not None else config.get("seed", 0)
    n_test = config.get("train", {}).get("n_test", 1000)
    data = config.get("data", {})
    train_data = data.get("train_data", "embedded")
    test_data = args.test_data or data.get("test_data", train_data)
    _, test_pairs = load_pairs(1, n_test, seed, train_data, test_data)
    model = load_model(args.model)
    metrics = evaluate(model, test_pairs, device=args.device)
    console().print(metrics_table(f"{args.model} on {test_data} (seed {seed})", metrics))
    return 0


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
                   help="any preset field, e.g. tower.dropout=0.2 (repeatable)")
    p.add_argument("--train-data", default="embedded", help=f"{SOURCE_HELP} (embedded)")
    p.add_argument("--test-data", help="as --train-data (default: the same source)")
    p.add_argument("--device", choices=("cpu", "gpu"))
    p.add_argument("--engine", choices=("auto", "fast", "fit"), default="auto",
                   help="fast: traced epochs (TensorFlow); fit: keras fit; auto (default): "
                        "fast where possible")
    p.add_argument("--out", help="run folder (default runs/NAME/TIME-seedS)")
    p.set_defaults(run=cmd_train)

    p = commands.add_parser("evaluate", help="evaluate a run folder or .keras model")
    p.add_argument("model", help="run folder or .keras file")
    p.add_argument("--test-data", help=f"{SOURCE_HELP} (default: the run's)")
    p.add_argument("--seed", type=seed_int, help="test pairs' seed (default: the run's)")
    p.add_argument("--device", choices=("cpu", "gpu"))
    p.set_defaults(run=cmd_evaluate)
