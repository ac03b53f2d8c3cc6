"""`pairzoo export` and `pairzoo predict`."""

from __future__ import annotations

import argparse
import json
import sys

from pairzoo.commands.common import console
from pairzoo.interface import UNTRAINED_NOTE

# the choices of pairzoo.export, repeated (a test keeps them equal): building the parser
# must not import the library
FORMATS = ("keras", "savedmodel", "tflite", "onnx")
QUANTIZATIONS = ("none", "dynamic", "float16", "int8")


def cmd_export(args) -> int:
    from pairzoo.commands.train import loading_tensorflow
    from pairzoo.export import export_destination
    from pairzoo.references import resolve_model

    # a wrong name or path, and a destination that exists or cannot be written, fail before
    # TensorFlow loads (seconds) and the model with it
    out = export_destination(resolve_model(args.source), args.format, args.quantize, args.out,
                             args.serving)
    with loading_tensorflow(console(stderr=True)):
        from pairzoo.export import export_model
    result = export_model(args.source, args.format, args.quantize, out)
    what = args.format if args.quantize == "none" else f"{args.format} ({args.quantize})"
    print(f"{what}: {result.path}  ({result.size_bytes / 1024:,.0f} kB)")
    print(f"from {result.source}")
    if result.sidecar:
        print(f"labels and metrics: {result.sidecar}")
    if result.float_layers:
        print(f"{len(result.float_layers)} layers kept in float: their int8 error on the "
              "calibration pairs was too large")
    return 0


def cmd_predict(args) -> int:
    from pairzoo.errors import PairzooError

    if args.pairs is not None:
        if args.image_a is not None:
            raise PairzooError("give either --pairs PATH or two digit images, not both")
        return _predict_many(args)
    if args.image_a is None:
        raise PairzooError("give two digit images, one .npy pair, or --pairs PATH")
    from pairzoo.predict import predict_files

    answer = predict_files(args.model, args.image_a, args.image_b, invert=args.invert)
    if args.json:
        print(json.dumps(answer.to_dict()))
        return 0
    print(f"model: {answer.model}", file=sys.stderr)
    sign = "≤" if answer.answer == "<=" else ">"
    if answer.decision:
        lines = [f"first {sign} second  (a decision: this model compares the two predicted "
                 "digits)"]
    else:
        lines = [f"first {sign} second  (probability {answer.probability:.3f})"]
    if answer.digit_a is not None:
        lines.append(f"digits: {answer.digit_a} ({answer.digit_a_probability:.3f}) and "
                     f"{answer.digit_b} ({answer.digit_b_probability:.3f})")
    elif not answer.digits_trained:
        lines.append(f"digits: not read (this model's digit outputs are {UNTRAINED_NOTE})")
    else:
        lines.append("digits: not predicted (a two-channel model has no digit outputs)")
    print("\n".join(lines))
    return 0


def _predict_many(args) -> int:
    """One line per pair: its name (index, or image files), the answer and P(first <= second);
    --json: a JSON list of the answers."""
    from pairzoo.batch import predict_pairs, read_pairs

    pairs, names = read_pairs(args.pairs, invert=args.invert)
    answers = predict_pairs(args.model, pairs)
    if args.json:
        print(json.dumps([{"pair": name, **answer.to_dict()}
                          for name, answer in zip(names, answers, strict=True)]))
        return 0
    print(f"model: {answers[0].model}", file=sys.stderr)
    for name, answer in zip(names, answers, strict=True):
        sign = "≤" if answer.answer == "<=" else ">"
        print(f"{name}: first {sign} second  (P(first ≤ second) = {answer.p_less_equal:.3f})")
    return 0


def serving_version(text: str) -> int:
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a version number (1, 2, ...), got {text!r}")


def add_parsers(commands) -> None:
    p = commands.add_parser("export", help="export a model: .keras, SavedModel, TFLite, ONNX")
    p.add_argument("source", metavar="NAME_OR_RUN",
                   help="zoo name (its release weights), run folder, or .keras file")
    p.add_argument("--format", choices=FORMATS, default="savedmodel",
                   help="keras | savedmodel (TensorFlow apps, TF Serving) | tflite (devices) | "
                        "onnx (onnxruntime; pip install 'pairzoo[onnx]')")
    p.add_argument("--quantize", choices=QUANTIZATIONS, default="none",
                   help="TFLite only: none | dynamic (int8 weights) | float16 | int8 "
                        "(calibrated on the run's training pairs)")
    p.add_argument("--serving", type=serving_version, nargs="?", const=0, metavar="VERSION",
                   help="SavedModel in TF Serving's layout: OUT/VERSION/ (default: one more "
                        "than the highest there); OUT defaults to exports/serving/NAME")
    p.add_argument("--out", help="destination (default exports/NAME/RELEASE_OR_RUN"
                                 "[-QUANTIZE][.keras|.tflite|.onnx])")
    p.set_defaults(run=cmd_export)

    p = commands.add_parser("predict", help="compare two digit images with a model")
    p.add_argument("model", help="zoo name (its release weights), .keras file or run folder, "
                   "SavedModel folder, .tflite or .onnx file")
    p.add_argument("image_a", metavar="IMAGE_A", nargs="?",
                   help="first digit (PNG/JPEG), or one .npy pair")
    p.add_argument("image_b", metavar="IMAGE_B", nargs="?",
                   help="second digit (PNG/JPEG); omit with a .npy pair")
    p.add_argument("--invert", action="store_true",
                   help="the images are dark digits on a light background (MNIST is white on "
                        "black)")
    p.add_argument("--pairs", metavar="PATH",
                   help="many pairs at once: an .npy batch (N, 2, 14, 14), a .csv with columns "
                        "first,second (image paths), or a folder of images paired in name "
                        "order")
    p.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    p.set_defaults(run=cmd_predict)
