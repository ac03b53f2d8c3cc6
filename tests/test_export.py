"""Export: SavedModel and TFLite for apps and devices, parity with Keras, builtin ops only.

Three representative models are trained briefly (a learned head, the hard-coded argmax
comparison, a two-channel network) and exported through the real entry point; every zoo entry
is converted untrained for the op check. The full entry x format matrix is `-m slow`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from pairzoo import export as pz_export
from pairzoo.commands import export as export_command
from pairzoo.data import load_pairs
from pairzoo.errors import PairzooError
from pairzoo.evaluation import score
from pairzoo.export import (
    convert_to_tflite,
    export_model,
    non_builtin_ops,
    signature_names,
    tflite_ops,
)
from pairzoo.interface import BATCH_DIM, reads_less_equal
from pairzoo.references import resolve_model
from pairzoo.registry import create_model, get_preset, list_models
from pairzoo.runs import load_model
from pairzoo.training import save_run, train
from pairzoo.zoo import has_release, release_info

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
REPRESENTATIVE = ("siamese_argmax", "siamese_fullyconv", "two_channel_baseline")
# enough training for test errors of 3-20 %, so that quantization has something to lose
BRIEF = {"train.epochs": 5, "train.n_train": 1000, "train.n_test": 1000}
# the slow matrix trains with each preset's own recipe: a model near chance level (some are,
# after 5 epochs) flips many ~0.5 probabilities under any rounding, which says nothing
FULL_RECIPE = {"train.n_train": 1000, "train.n_test": 1000}
# Its recipe (SGD, lr 1.0) half-diverges with seed 0: 34 % test error (the report's 8.5 %),
# weights up to 3.6e3, batch norms after ReLUs. int8 measured +0.7 points; keeping layers in
# float down to 0.2 quantization steps of error (most of the model) was needed to reach 0.5.
INT8_POINTS = {"siamese_convnet_joint_loss": 1.0}
TOLERANCE = 1e-5  # SavedModel and float TFLite against Keras
ERROR_POINTS = 0.5  # float16 / int8 test error against float, in percentage points


def expected_outputs(name: str) -> list[str]:
    has_digits = get_preset(name).model.has_digit_outputs
    return ["compare", "digit_a", "digit_b"] if has_digits else ["compare"]


def run_tflite(path_or_bytes, pairs: np.ndarray) -> dict[str, np.ndarray]:
    source = ({"model_path": str(path_or_bytes)} if isinstance(path_or_bytes, Path)
              else {"model_content": path_or_bytes})
    return Interpreter(**source).get_signature_runner("serving_default")(pair=pairs)


def run_onnx(path: Path, pairs: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"pair": pairs}), strict=True))


def run_savedmodel(path: Path, pairs: np.ndarray) -> dict[str, np.ndarray]:
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    return {k: v.numpy() for k, v in serve(pair=tf.constant(pairs)).items()}


def max_difference(outputs: dict, reference: dict) -> float:
    assert sorted(outputs) == sorted(reference)
    return max(float(np.abs(np.asarray(outputs[k]) - np.asarray(reference[k])).max())
               for k in reference)


# --- trained runs and their exports, made once per test process ----------------------------


class Trained:
    """One briefly trained zoo model: its run folder, Keras outputs on the test pairs, and its
    exports (made on first use)."""

    def __init__(self, name: str, root: Path, overrides: dict):
        self.name, self.root = name, root
        result = train(name, seed=0, overrides=overrides)
        self.run_dir = save_run(result, root / "runs" / name / "20260101-000000-seed0")
        self.train_pairs, self.test_pairs = load_pairs(1000, 1000, seed=0)
        model = load_model(self.run_dir)
        self.keras_outputs = {k: np.asarray(v) for k, v in
                              model.predict(self.test_pairs.pairs, verbose=0).items()}
        self.keras_error = score(self.keras_outputs, self.test_pairs)["test_error"]
        self._exports = {}

    def export(self, fmt: str, quantize: str = "none"):
        key = (fmt, quantize)
        if key not in self._exports:
            suffix = pz_export.SUFFIXES[fmt]
            out = self.root / "exports" / self.name / f"{fmt}-{quantize}{suffix}"
            self._exports[key] = export_model(self.run_dir, fmt, quantize, out)
        return self._exports[key]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, session_cache):
    """(name, overrides) -> Trained, built lazily; the pairzoo cache is the session's one."""
    models: dict[tuple, Trained] = {}

    def get(name: str, overrides: dict = BRIEF) -> Trained:
        key = (name, tuple(sorted(overrides.items())))
        if key not in models:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("PAIRZOO_CACHE", str(session_cache))
                models[key] = Trained(name, tmp_path_factory.mktemp("export_runs"), overrides)
        return models[key]

    return get


# --- the op check: every zoo entry, float TFLite, builtin ops only --------------------------


@pytest.mark.parametrize("name", [  # ~7 s each: three here, every entry with -m slow
    pytest.param(name, marks=() if name in REPRESENTATIVE else pytest.mark.slow)
    for name in list_models()])
def test_every_entry_converts_to_builtin_ops(name, tiny_pairs):
    keras.utils.set_random_seed(0)
    model = create_model(name)
    flatbuffer, _ = convert_to_tflite(model)
    ops = tflite_ops(flatbuffer)
    assert not non_builtin_ops(flatbuffer), ops
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops
    # it runs under ai-edge-litert, by name, on any batch size (RNNs are traced unrolled)
    pairs = tiny_pairs[1].pairs[:3]
    runner = Interpreter(model_content=flatbuffer).get_signature_runner("serving_default")
    for batch in (pairs[:1], pairs):
        outputs = runner(pair=batch)
        reference = {k: np.asarray(v) for k, v in model(batch, training=False).items()}
        assert max_difference(outputs, reference) <= TOLERANCE


def test_op_check_catches_flex_ops():
    """The check above can fail: `keras.ops.argmax` lowers to BitwiseAnd, which only converts
    as a Select TF (Flex) op."""

    @tf.function(input_signature=[tf.TensorSpec((None, 10), tf.float32)])
    def argmax(x):
        return {"digit": keras.ops.argmax(x, axis=-1)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [argmax.get_concrete_function()], argmax)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    flex = non_builtin_ops(converter.convert())
    assert flex and all(op.startswith("Flex") for op in flex)


# --- SavedModel ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_savedmodel_signature_names(name, trained):
    path = trained(name).export("savedmodel").path
    assert signature_names(path) == (["pair"], expected_outputs(name))
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    assert inputs["pair"].shape.as_list() == [None, 2, 14, 14]
    assert inputs["pair"].dtype == tf.float32


def test_savedmodel_serves_in_inference_mode(tmp_path, tiny_pairs):
    """Random augmentation layers default to training=True; `model.export` calls the model
    without `training`, which served randomly shifted and rotated digits."""
    keras.utils.set_random_seed(0)
    model = create_model("siamese_argmax", augment_shift=2.0, augment_rotation=15.0)
    pairs = tiny_pairs[1].pairs[:8]
    pz_export.write_saved_model(model, tmp_path / "saved_model")
    first, second = (run_savedmodel(tmp_path / "saved_model", pairs) for _ in range(2))
    reference = {k: np.asarray(v) for k, v in model(pairs, training=False).items()}
    assert max_difference(first, second) == 0
    assert max_difference(first, reference) <= TOLERANCE


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_savedmodel_matches_keras(name, trained):
    model = trained(name)
    outputs = run_savedmodel(model.export("savedmodel").path, model.test_pairs.pairs)
    assert max_difference(outputs, model.keras_outputs) <= TOLERANCE


def test_savedmodel_example_runs_without_pairzoo(trained, tmp_path):
    model = trained("siamese_fullyconv")
    lines = run_example("savedmodel_app.py", model.export("savedmodel").path,
                        model.test_pairs.pairs[:20], tmp_path)
    assert lines == expected_lines(model.keras_outputs, 20)


# --- TFLite -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_tflite_float_matches_keras(name, trained):
    model = trained(name)
    result = model.export("tflite")
    outputs = run_tflite(result.path, model.test_pairs.pairs)
    assert max_difference(outputs, model.keras_outputs) <= TOLERANCE
    assert not non_builtin_ops(result.path.read_bytes())


@pytest.mark.parametrize("quantize", ["float16", "int8"])
@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_quantized_error_close_to_float(name, quantize, trained):
    model = trained(name)
    result = model.export("tflite", quantize)
    outputs = run_tflite(result.path, model.test_pairs.pairs)
    error = score(outputs, model.test_pairs)["test_error"]
    assert abs(error - model.keras_error) <= ERROR_POINTS, (error, model.keras_error)
    assert not non_builtin_ops(result.path.read_bytes())
    assert result.size_bytes < model.export("tflite").size_bytes  # it did quantize


def test_int8_keeps_unfoldable_batch_norms_in_float(trained):
    """siamese_fullyconv's batch norms after ReLUs have per-channel scales that one int8 scale
    cannot hold; they are found by measurement and left in float."""
    result = trained("siamese_fullyconv").export("tflite", "int8")
    assert any("bn" in layer for layer in result.float_layers), result.float_layers
    assert not trained("siamese_argmax").export("tflite", "int8").float_layers


def test_tflite_example_runs_without_pairzoo(trained, tmp_path):
    model = trained("siamese_argmax")
    lines = run_example("tflite_device.py", model.export("tflite").path,
                        model.test_pairs.pairs[:20], tmp_path)
    assert lines == expected_lines(model.keras_outputs, 20)


def test_tflite_example_runs_int8(trained, tmp_path):
    model = trained("two_channel_baseline")
    lines = run_example("tflite_device.py", model.export("tflite", "int8").path,
                        model.test_pairs.pairs[:5], tmp_path)
    assert len(lines) == 5 and all(re.match(r"pair \d: first (<=|>) second", s) for s in lines)


# --- ONNX ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_onnx_matches_keras_on_mnist_test_pairs(name, trained, t10k):
    from pairzoo.data import load_test_pairs

    model = trained(name)
    result = model.export("onnx")
    pairs = load_test_pairs(1000, 0, f"idx:{t10k}", whole_split=True).pairs
    reference = {k: np.asarray(v) for k, v in
                 load_model(model.run_dir).predict(pairs, verbose=0).items()}
    outputs = run_onnx(result.path, pairs)
    assert sorted(outputs) == expected_outputs(name)
    assert max_difference(outputs, reference) <= TOLERANCE
    # the file says what it is, in its own metadata and in the sidecar beside it
    import onnxruntime

    meta = onnxruntime.InferenceSession(str(result.path)).get_modelmeta().custom_metadata_map
    facts = json.loads(meta["pairzoo"])
    assert facts == json.loads(result.sidecar.read_text())
    assert facts["input"]["name"] == "pair" and facts["labels"]["digit_a"][3] == "3"


def test_onnx_example_runs_without_pairzoo_or_tensorflow(trained, tmp_path):
    model = trained("siamese_fullyconv")
    lines = run_example("onnx_app.py", model.export("onnx").path,
                        model.test_pairs.pairs[:20], tmp_path, block=("tensorflow", "keras"))
    assert lines == expected_lines(model.keras_outputs, 20)


def test_onnx_export_names_its_batch_dimension_and_says_nothing_else(untrained_run,
                                                                    console_script):
    """tf2onnx called the batch dimension `unk__161` and Keras's shim made NumPy print a
    FutureWarning: the file names it `batch`, and the export prints only its result."""
    import onnx

    done = console_script("export", untrained_run, "--format", "onnx", "--out", "m.onnx")
    assert "Warning" not in done.stderr, done.stderr
    graph = onnx.load("m.onnx").graph
    dims = [value.type.tensor_type.shape.dim[0].dim_param
            for value in [*graph.input, *graph.output]]
    assert dims == [BATCH_DIM] * 4 == ["batch"] * 4
    import onnxruntime

    session = onnxruntime.InferenceSession("m.onnx")
    assert session.get_inputs()[0].shape == ["batch", 2, 14, 14]
    assert session.run(None, {"pair": np.zeros((3, 2, 14, 14), np.float32)})[0].shape == (3, 1)


def test_int8_conversion_and_its_check_print_nothing(tiny_pairs, capfd):
    """The converter's `fully_quantize: 0, ...` (once per conversion, three with the
    debugger) and LiteRT's XNNPACK line were printed on every int8 export."""
    keras.utils.set_random_seed(0)
    model = create_model("siamese_small_cnn")
    capfd.readouterr()
    convert_to_tflite(model, "int8", tiny_pairs[0].pairs)
    err = capfd.readouterr().err
    assert "fully_quantize" not in err and "XNNPACK" not in err, err


def test_the_examples_readme_says_how_to_make_pairs_npy(tmp_path):
    line = next(line for line in (EXAMPLES / "README.md").read_text().splitlines()
                if line.startswith("python -c") and "pairs.npy" in line)
    subprocess.run(shlex.split(line), check=True, cwd=tmp_path, timeout=300)
    pairs = np.load(tmp_path / "pairs.npy")
    assert pairs.shape == (8, 2, 14, 14) and pairs.dtype == np.float32 and pairs.max() > 200


def test_example_docstrings_name_the_paths_export_writes():
    for program in ("savedmodel_app.py", "tflite_device.py", "onnx_app.py"):
        usage = (EXAMPLES / program).read_text().split("\n\n")[1]
        assert "exports/" in usage and "saved_models/" not in usage, program


# --- examples: run as separate programs that cannot import pairzoo --------------------------


def run_example(program: str, model_path: Path, pairs: np.ndarray, tmp_path: Path,
                block: tuple[str, ...] = ()) -> list[str]:
    """Run an example program where `import pairzoo` (and any package in `block`) fails."""
    blockers = tmp_path / "blocker"
    for package in ("pairzoo", *block):
        (blockers / package).mkdir(parents=True)
        (blockers / package / "__init__.py").write_text(
            f"raise ImportError('the example imported {package}')\n")
    np.save(tmp_path / "pairs.npy", pairs)
    # as a user's shell would start it: without the logging settings pytest's process has
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")},
           "PYTHONPATH": str(blockers)}
    out = subprocess.run([sys.executable, str(EXAMPLES / program), str(model_path),
                          str(tmp_path / "pairs.npy")], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    # TensorFlow's C++ start-up lines are not the app's output (LiteRT's one INFO line about
    # its CPU delegate stays: it has no switch). Two banners print while TensorFlow loads,
    # before any log level applies, on CPUs where oneDNN is on by default (AVX-512 ones): no
    # app setting silences them (pairzoo filters them from its own start, pairzoo._startup)
    from pairzoo._startup import BANNERS

    stderr = "\n".join(line for line in out.stderr.splitlines()
                       if not any(banner in line for banner in BANNERS))
    assert not re.search(r"absl|cpu_feature_guard|oneDNN|rebuild TensorFlow", stderr), \
        stderr[-2000:]
    return out.stdout.strip().splitlines()


def expected_lines(outputs: dict, n: int) -> list[str]:
    lines = []
    for i in range(n):
        p = float(outputs["compare"][i, 0])
        sign = "<=" if reads_less_equal(p) else ">"
        a, b = outputs["digit_a"][i].argmax(), outputs["digit_b"][i].argmax()
        lines.append(f"pair {i}: {a} {sign} {b}  (P(first <= second) = {p:.3f})")
    return lines


# --- the export command and its guarantees -------------------------------------------------


@pytest.fixture
def untrained_run(tmp_path):
    """An untrained model saved as a run folder under runs/ (the test's working directory)."""
    keras.utils.set_random_seed(0)
    run_dir = Path("runs/siamese_argmax/20260101-000000-seed0")
    run_dir.mkdir(parents=True)
    create_model("siamese_argmax").save(run_dir / "model.keras")
    return run_dir


def test_export_writes_under_exports_by_default(untrained_run):
    for fmt, expected in [("keras", "20260101-000000-seed0.keras"),
                          ("savedmodel", "20260101-000000-seed0"),
                          ("tflite", "20260101-000000-seed0.tflite")]:
        result = export_model(untrained_run, fmt)
        assert result.path == Path("exports/siamese_argmax") / expected
        assert result.size_bytes > 10_000
        assert result.source.startswith(f"run {untrained_run}")
    reloaded = load_model(Path("exports/siamese_argmax/20260101-000000-seed0.keras"))
    pairs = np.full((2, 2, 14, 14), 128.0, dtype=np.float32)
    original = load_model(untrained_run)
    assert max_difference({k: np.asarray(v) for k, v in reloaded(pairs).items()},
                          {k: np.asarray(v) for k, v in original(pairs).items()}) == 0


def test_a_zoo_name_means_its_release_weights():
    if not has_release("siamese_small_cnn"):
        pytest.skip("no release of siamese_small_cnn here")
    ref = resolve_model("siamese_small_cnn")
    assert ref.kind == "release" and ref.spec.seed == release_info("siamese_small_cnn")["seed"]
    assert "release weights" in ref.describe() and "MNIST test-split" in ref.describe()
    result = export_model("siamese_small_cnn", "savedmodel")
    assert result.path == Path("exports/siamese_small_cnn/release")
    facts = json.loads((result.path / "assets" / "pairzoo.json").read_text())
    assert facts["release"]["seed"] == ref.spec.seed
    assert (result.path / "assets" / "README.md").read_text().startswith("# siamese_small_cnn")
    with pytest.raises(PairzooError, match="unknown model.*siamese_fullyconv"):
        resolve_model("siamese_fullyconf")
    with pytest.raises(PairzooError, match="no model at runs/nothing"):
        resolve_model("runs/nothing")


def test_tf_serving_layout_numbers_versions(untrained_run):
    first = export_model(untrained_run, "savedmodel", serving_version=0)
    second = export_model(untrained_run, "savedmodel", serving_version=0)
    base = Path("exports/serving/siamese_argmax")
    assert (first.path, second.path) == (base / "1", base / "2")
    assert (second.path / "saved_model.pb").is_file()
    assert signature_names(second.path) == (["pair"], ["compare", "digit_a", "digit_b"])
    with pytest.raises(PairzooError, match="already exists"):
        export_model(untrained_run, "savedmodel", serving_version=2)
    with pytest.raises(PairzooError, match="SavedModel layout"):
        export_model(untrained_run, "tflite", serving_version=0)


def test_a_tflite_export_carries_its_labels(untrained_run):
    result = export_model(untrained_run, "tflite", out="model.tflite")
    facts = json.loads(Path("model.tflite.json").read_text())
    assert result.sidecar == Path("model.tflite.json")
    assert facts["model"] == "siamese_argmax" and facts["signature"] == "serving_default"
    assert facts["compare_is_decision"] is True  # an argmax head: a decision, no probability
    assert "decision" in facts["outputs"]["compare"]
    assert facts["input"]["shape"] == [None, 2, 14, 14]


def test_failed_export_leaves_nothing_behind(untrained_run, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(pz_export, "convert_to_tflite", broken)
    with pytest.raises(RuntimeError, match="converter crashed"):
        export_model(untrained_run, "tflite", out="out/model.tflite")
    assert not Path("out").exists()  # not even the folder it made for the export

    def broken_savedmodel(model, path):
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(pz_export, "write_saved_model", broken_savedmodel)
    with pytest.raises(RuntimeError, match="disk full"):
        export_model(untrained_run, "savedmodel", out="out/model")
    assert not Path("out").exists()


def test_a_file_that_does_not_run_is_not_written(untrained_run, monkeypatch):
    """XNNPACK refuses some int8 scales (seen on a half-diverged run): every TFLite export is
    run under ai-edge-litert before it is written."""
    import ai_edge_litert.interpreter as litert

    class RefusingInterpreter(litert.Interpreter):
        def get_signature_runner(self, *args, **kwargs):
            raise RuntimeError("failed to create XNNPACK runtime")

    monkeypatch.setattr(litert, "Interpreter", RefusingInterpreter)
    with pytest.raises(PairzooError, match="does not run under ai-edge-litert.*XNNPACK"):
        export_model(untrained_run, "tflite", "dynamic", out="model.tflite")
    assert not Path("model.tflite").exists()


def test_export_refuses_to_overwrite(untrained_run):
    export_model(untrained_run, "keras", out="model.keras")
    with pytest.raises(PairzooError, match="already exists"):
        export_model(untrained_run, "keras", out="model.keras")


@pytest.mark.parametrize("fmt, quantize, out, phrase", [
    ("savedmodel", "int8", None, "applies to --format tflite only"),
    ("pdf", "none", None, "unknown format"),
    ("tflite", "int4", None, "unknown quantization"),
    ("keras", "none", "model", "needs a name ending in .keras"),
    ("tflite", "none", "model.bin", "needs a name ending in .tflite"),
    ("savedmodel", "none", "model.tflite", "needs a folder name"),
])
def test_bad_export_options(untrained_run, fmt, quantize, out, phrase):
    with pytest.raises(PairzooError, match=phrase):
        export_model(untrained_run, fmt, quantize, out)
    assert not Path("exports").exists() and (out is None or not Path(out).exists())


def test_cli_choices_are_the_library_choices():
    assert export_command.FORMATS == pz_export.FORMATS
    assert export_command.QUANTIZATIONS == pz_export.QUANTIZATIONS


def test_cli_export_and_predict(untrained_run, tiny_pairs, capsys):
    from pairzoo.cli import main

    assert main(["export", str(untrained_run), "--format", "tflite", "--quantize",
                 "dynamic"]) == 0
    path = Path("exports/siamese_argmax/20260101-000000-seed0-dynamic.tflite")
    out = capsys.readouterr()
    assert str(path) in out.out and path.is_file()
    assert f"from run {untrained_run}" in out.out
    np.save("pair.npy", tiny_pairs[1].pairs[0])
    assert main(["predict", str(path), "pair.npy", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["answer"] in ("<=", ">") and 0 <= answer["digit_a"] <= 9
    assert answer["decision"] is True  # the sidecar says: an argmax head


@pytest.mark.parametrize("args, phrase", [
    (["export", "runs/nothing"], "no model at runs/nothing"),
    (["export", "siamese_lenet5x"], "unknown model"),
    (["export", "siamese_argmax", "--format", "savedmodel", "--quantize", "int8"],
     "tflite only"),
    (["export", "siamese_argmax", "--format", "pdf"], "invalid choice"),
])
def test_cli_export_errors_are_one_line(untrained_run, args, phrase, capsys):
    from pairzoo.cli import main

    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0] and "Traceback" not in lines[0], lines


# --- the full matrix: every zoo entry x every format (pytest -m slow) ----------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_every_entry_in_every_format(name, trained):
    model = trained(name, FULL_RECIPE)
    outputs = expected_outputs(name)
    reloaded = load_model(model.export("keras").path)
    keras_again = {k: np.asarray(v) for k, v in
                   reloaded.predict(model.test_pairs.pairs, verbose=0).items()}
    assert max_difference(keras_again, model.keras_outputs) == 0
    saved = model.export("savedmodel").path
    assert signature_names(saved) == (["pair"], outputs)
    assert max_difference(run_savedmodel(saved, model.test_pairs.pairs),
                          model.keras_outputs) <= TOLERANCE
    float_path = model.export("tflite").path
    assert max_difference(run_tflite(float_path, model.test_pairs.pairs),
                          model.keras_outputs) <= TOLERANCE
    assert max_difference(run_onnx(model.export("onnx").path, model.test_pairs.pairs),
                          model.keras_outputs) <= TOLERANCE
    errors = {}
    for quantize in ("dynamic", "float16", "int8"):
        result = model.export("tflite", quantize)
        assert not non_builtin_ops(result.path.read_bytes())
        quantized = run_tflite(result.path, model.test_pairs.pairs)
        assert sorted(quantized) == outputs
        errors[quantize] = score(quantized, model.test_pairs)["test_error"]
    print(f"{name}: test error keras {model.keras_error:.1f} %, " +  # shown by pytest -rP
          ", ".join(f"{q} {e - model.keras_error:+.1f}" for q, e in errors.items()))
    for quantize, error in errors.items():
        allowed = INT8_POINTS.get(name, ERROR_POINTS) if quantize == "int8" else ERROR_POINTS
        assert abs(error - model.keras_error) <= allowed, (quantize, error, model.keras_error)
