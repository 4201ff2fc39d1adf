"""What an export and a full-budget training tell their user (issue 25, items 2-4, 10, 11).

One tiny study on an npz (one trial), trained at full budget through ``nas.train_trial``
and exported twice (its full-budget weights, then its proxy's): ``figures.json``'s top level
is the shipped weights', ``test_indices.json`` lets numpy and onnxruntime alone (no torch
in that process) score the ONNX model to the exported ``test_accuracy``, the export's
directory has the umask's mode, the training's lines say estimated and count in words that
agree ("1 epoch"), and every option of every verb has help.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nas
from nas.cli import build_parser, main
from nas.export import publish, staging_dir
from tests import configs
from tests.tiny_npz import write_npz

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

FINAL_TEST_SIZE = 150  # of the npz's 300 test images; the proxy scores 100 others


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The study, its trained trial (typed result, training's stderr), two exports."""
    root = tmp_path_factory.mktemp("shipped")
    write_npz(root / "tiny.npz", n_test=300)
    cfg = configs.tiny_toml(
        root,
        "shipped",
        study={
            "trials": 1,
            "storage": f"sqlite:///{root / 'study.db'}",
            "artifacts": str(root / "artifacts"),
        },
        data={"dataset": f"npz:{root / 'tiny.npz'}"},
        final={"epochs": 1, "train_size": 200, "test_size": FINAL_TEST_SIZE},
    )
    old = os.getcwd()
    os.chdir(root)
    search_err, train_err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(search_err):
            assert main(["search", str(cfg)]) == 0
        with contextlib.redirect_stderr(train_err):
            result = nas.train_trial(cfg, trial=0)
        exports = {}
        old_mask = os.umask(0o027)
        try:
            for weights in ("final", "proxy"):
                out = root / f"model-{weights}"
                argv = ["export", str(cfg), "--trial", "0", "--weights", weights]
                argv += ["--out", str(out), "--inference-min-duration-s", "0.05"]
                with contextlib.redirect_stdout(io.StringIO()):
                    assert main(argv) == 0
                exports[weights] = out
        finally:
            os.umask(old_mask)
    finally:
        os.chdir(old)
    study = nas.load_study(cfg)
    return {
        "root": root,
        "study": study,
        "record": nas.trial_records(study)[0],
        "result": result,
        "search_err": search_err.getvalue(),
        "train_err": train_err.getvalue(),
        "exports": exports,
    }


def _figures(trained: dict[str, Any], weights: str) -> dict[str, Any]:
    return json.loads((trained["exports"][weights] / "figures.json").read_text())


# -- item 10: the library's result is typed ---------------------------------------------------
def test_train_trial_returns_the_typed_figures_it_stored(trained: dict[str, Any]) -> None:
    result, rec = trained["result"], trained["record"]
    assert isinstance(result, nas.TrainedTrial) and result.trained and not result.dry_run
    assert result.trial == 0 and result.epochs == 1 and result.train_size == 200
    assert result.test_accuracy == pytest.approx(rec.final["final_test_accuracy"])
    assert result.kgco2e == pytest.approx(rec.final["final_kgco2e"]) and result.kgco2e > 0
    assert result.energy_kind == "estimated" and result.energy_source == "estimate"
    assert result.proxy_accuracy == pytest.approx(rec.accuracy)
    assert isinstance(result.phases_kwh, dict) and "train" in result.phases_kwh
    assert result.weights_artifact_id == rec.final["final_weights_artifact_id"]
    as_json = result.to_dict()  # what `econas train --json` prints
    assert as_json["test_accuracy"] == result.test_accuracy and as_json["dry_run"] is False
    with pytest.raises(AttributeError):
        result.kgco2e = 0.0  # type: ignore[misc]  # frozen: a result, not a scratch dict


# -- item 2: figures.json describes what was shipped ---------------------------------------------
def test_figures_top_level_are_the_shipped_full_budget_weights(trained: dict[str, Any]) -> None:
    rec, figures = trained["record"], _figures(trained, "final")
    f = rec.final
    assert figures["weights"] == "final" and "full-budget" in figures["figures_of"]
    assert figures["test_accuracy"] == pytest.approx(f["final_test_accuracy"])
    assert figures["accuracy"] == pytest.approx(f["final_val_accuracy"])
    assert figures["kgco2e"] == pytest.approx(f["final_kgco2e"])
    assert figures["energy_kwh"] == pytest.approx(f["final_energy_kwh"])
    assert figures["epochs"] == 1 and figures["train_size"] == 200
    assert figures["test_size"] == FINAL_TEST_SIZE
    proxy = figures["proxy"]  # the search's proxy, clearly apart
    assert proxy["test_accuracy"] == pytest.approx(rec.test_accuracy)
    assert proxy["accuracy"] == pytest.approx(rec.accuracy)
    assert proxy["kgco2e"] == pytest.approx(rec.kgco2e) and proxy["train_size"] == 200
    assert "search_energy_kwh" in proxy and "search_energy_kwh" not in figures
    assert figures["params"] == rec.get("params")  # the architecture's, at the top
    assert "final" not in figures


def test_figures_of_proxy_weights_keep_the_unshipped_training_apart(
    trained: dict[str, Any],
) -> None:
    rec, figures = trained["record"], _figures(trained, "proxy")
    assert figures["weights"] == "proxy" and "'final'" in figures["figures_of"]
    assert figures["test_accuracy"] == pytest.approx(rec.test_accuracy)
    assert figures["kgco2e"] == pytest.approx(rec.kgco2e)
    assert figures["final"]["test_accuracy"] == pytest.approx(rec.final["final_test_accuracy"])
    assert "proxy" not in figures


# -- item 3: the exported files alone reproduce test_accuracy -----------------------------------
SCORE = """
import json, sys
from pathlib import Path
import numpy as np
import onnxruntime as ort

out, data = Path(sys.argv[1]), np.load(sys.argv[2])
prep = json.loads((out / "preprocessing.json").read_text())
tested = json.loads((out / "test_indices.json").read_text())
i = np.asarray(tested["indices"])
x = data["x_test"][i].astype(np.float32)[:, None] * np.float32(prep["scale"])  # NHW: add C
mean = np.asarray(prep["mean"], np.float32).reshape(1, -1, 1, 1)
std = np.asarray(prep["std"], np.float32).reshape(1, -1, 1, 1)
session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
logits = session.run(None, {session.get_inputs()[0].name: (x - mean) / std})[0]
hits = int((logits.argmax(axis=1) == data["y_test"][i]).sum())
print(json.dumps({"hits": hits, "n": len(i), "torch": "torch" in sys.modules}))
"""


@pytest.mark.parametrize("weights", ["final", "proxy"])
def test_onnxruntime_alone_scores_the_export_to_its_test_accuracy(
    trained: dict[str, Any], weights: str
) -> None:
    out, figures = trained["exports"][weights], _figures(trained, weights)
    tested = json.loads((out / "test_indices.json").read_text())
    size = FINAL_TEST_SIZE if weights == "final" else 100
    assert figures["test_indices"] == "test_indices.json"
    assert tested["images"] == len(tested["indices"]) == size and tested["split_size"] == 300
    assert tested["indices"] == sorted(set(tested["indices"]))  # positions, no repeats
    proc = subprocess.run(
        [sys.executable, "-c", SCORE, str(out), str(trained["root"] / "tiny.npz")],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    scored = json.loads(proc.stdout)
    assert scored["torch"] is False and scored["n"] == size
    assert scored["hits"] / size == pytest.approx(figures["test_accuracy"], abs=1e-12)
    assert tested["test_accuracy"] == figures["test_accuracy"]


def test_the_two_exports_name_different_test_subsets(trained: dict[str, Any]) -> None:
    """Proxy and final weights were scored on different images: each export names its own."""
    final, proxy = (
        json.loads((trained["exports"][w] / "test_indices.json").read_text())["indices"]
        for w in ("final", "proxy")
    )
    assert len(final) == FINAL_TEST_SIZE and len(proxy) == 100 and final[:100] != proxy


# -- item 11: the export directory's mode, help text, plurals ------------------------------------
def test_export_directory_has_the_umasks_mode(trained: dict[str, Any]) -> None:
    for out in trained["exports"].values():  # exported under umask 027
        assert out.stat().st_mode & 0o777 == 0o750


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_staging_dir_is_published_with_the_umasks_mode(tmp_path: Path, umask: int) -> None:
    out = tmp_path / f"out-{umask:o}"
    old = os.umask(umask)
    try:
        with staging_dir(out) as tmp:
            (tmp / "a.json").write_text("{}")
            publish(tmp, out)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (out / "a.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no staging dir left


def test_every_option_of_every_verb_has_help() -> None:
    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif action.option_strings and not action.help:
                missing.append(f"{path} {action.option_strings[-1]}")

    walk(build_parser(), "econas")
    assert missing == []


def test_counts_agree_with_their_nouns(trained: dict[str, Any]) -> None:
    from nas.commands.train import result_line

    line = result_line(trained["result"])
    assert " after 1 epoch on 200 images " in line
    assert "(1 trial, data" in trained["search_err"]
    text = trained["search_err"] + trained["train_err"] + line
    for wrong in ("1 epochs", "1 trials", "1 threads", "1 runs", "1 images", " 1 samples"):
        assert wrong not in text, wrong


# -- item 4: the training says its energy is estimated ----------------------------------------
def test_training_lines_say_the_energy_is_estimated(trained: dict[str, Any]) -> None:
    lines = trained["train_err"].splitlines()
    projected = [line for line in lines if ": projected " in line]
    epochs = [line for line in lines if " epoch 1/1 " in line]
    assert len(projected) == 1 and "(projected from the proxy's estimated energy:" in projected[0]
    assert len(epochs) == 1 and "kgCO2e so far (estimated)" in epochs[0]


def test_a_reader_that_leaves_the_pipe_gets_no_traceback() -> None:
    """`econas studies | head -1`: the pipe closes before econas writes; it stops quietly."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", "studies"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    proc.stdout.close()  # before the interpreter has started: its first write breaks the pipe
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and err.decode() == ""
