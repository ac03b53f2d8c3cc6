"""`pairzoo export` and `pairzoo predict`."""

from __future__ import annotations

import argparse
import json
import sys

from pairzoo.commands.common import console

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
    else:
        lines.append("digits: not predicted (a two-channel model has no digit outputs)")
    print("\n".join(lines))
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
    p.add_argument("image_a", metavar="IMAGE_A", help="first digit (PNG/JPEG), or one .npy pair")
    p.add_argument("image_b", metavar="IMAGE_B", nargs="?",
                   help="second digit (PNG/JPEG); omit with a .npy pair")
    p.add_argument("--invert", action="store_true",
                   help="the images are dark digits on a light background (MNIST is white on "
                        "black)")
    p.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    p.set_defaults(run=cmd_predict)
