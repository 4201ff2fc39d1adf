"""Carbon labels: ``carbon_label.json`` (Henderson et al. 2020 style) and a model card.

The label of an exported trial states the hardware, the meter and whether its figures were
measured or estimated, the energy and kgCO2e of the whole search, of the trial's own
training (train, eval and any fine-tune phases) and of 1,000 inferences (measured), the
carbon intensity and its source, software versions, the data set and the accuracies.
``README.md`` carries the training emissions in Hugging Face's ``co2_eq_emissions`` front
matter, in **grams** (the trial's kgCO2e x 1000).
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna

from nas.record import Final, Inference, Provenance, StudyAttrs, TrialAttrs, TrialRecord, finite
from nas.text import json_text, markdown_cell, one_line, plural

SCHEMA = "econas.carbon_label/1"
RUNTIME_NAMES = {"pytorch": "PyTorch", "onnxruntime_cpu": "ONNX Runtime, CPU"}


def software_versions() -> dict[str, str | None]:
    from nas.hardware import software_versions as versions

    return versions()


def _num(value: Any) -> float | None:
    return finite(value)


def _study_config(study: optuna.Study) -> dict[str, Any]:
    try:
        cfg = json.loads(study.user_attrs.get(StudyAttrs.config) or "{}")
    except (TypeError, ValueError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def build_carbon_label(
    study: optuna.Study,
    trial: optuna.trial.FrozenTrial,
    *,
    model_format: str | None = None,
    onnx_inference: dict[str, Any] | None = None,
    weights: str = "proxy",
    projection: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The label of ``trial`` (from the storage alone, plus ONNX Runtime figures if given).

    ``weights``: which weights the label travels with (``final``: the full-budget training of
    ``econas train``; ``proxy``: the search's). ``final_training`` is the measured (or
    estimated) full-budget training when the trial has one, else ``projection`` (kind
    ``projected``); ``proxy_training`` is what the search trained; ``search_share`` the
    search's cost charged to this model.
    """
    from nas.report import search_cost

    rec = TrialRecord.of(trial, study)
    a = rec
    g = rec.num(TrialAttrs.intensity_g_per_kwh)
    search = search_cost(study.get_trials(deepcopy=False), study_attrs=study.user_attrs)
    per_1k_kwh = rec.num(Inference.energy_kwh_per_1k)
    inference: dict[str, Any] = {
        "pytorch": {
            "energy_kwh": per_1k_kwh,
            "kgco2e": per_1k_kwh * g / 1000 if per_1k_kwh is not None and g is not None else None,
            "latency_ms": rec.num(Inference.latency_ms),
            "runtime": a.get(Inference.runtime),
            "device": a.get(Inference.device),
            "batch_size": a.get(Inference.batch_size),
            # measured in the trial's process: its torch threads (older records: provenance)
            "threads": a.get(Inference.threads) or a.get(Provenance.threads),
            "meter": a.get(Inference.energy_source),
            "kind": a.get(Inference.energy_kind),
        }
    }
    if onnx_inference:
        o = {k.removeprefix("onnxruntime_cpu_"): v for k, v in onnx_inference.items()}
        inference["onnxruntime_cpu"] = {
            "energy_kwh": o.get("energy_kwh_per_1k"),
            "kgco2e": o.get("kgco2e_per_1k"),
            "latency_ms": o.get("latency_ms"),
            "runtime": "onnxruntime",
            "device": "cpu",
            "batch_size": o.get("batch_size"),
            "threads": o.get("threads"),
            "meter": o.get("energy_source"),
            "kind": o.get("energy_kind"),
        }
    data = _study_config(study).get("data", {})
    return {
        "schema": SCHEMA,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "study": study.study_name,
            "trial": trial.number,
            "family": a.get(TrialAttrs.family),
            "arch": a.get(TrialAttrs.arch),
            "params": a.get(TrialAttrs.params),
            "flops": a.get(TrialAttrs.flops),
            "format": model_format,
            "reused_from_trial": rec.reused_from[1] if rec.reused_from else None,
        },
        "dataset": {
            k: data.get(k) for k in ("dataset", "train_size", "val_size", "test_size", "resolution")
        },
        "accuracy": rec.accuracy,
        "test_accuracy": rec.num(TrialAttrs.test_accuracy),
        "chance_accuracy": rec.chance_accuracy,  # 1 / classes: guessing
        "at_or_below_chance": rec.at_or_below_chance,
        "hardware": a.get(TrialAttrs.hardware),
        "meter": {"source": a.get(TrialAttrs.energy_source), "kind": a.get(TrialAttrs.energy_kind)},
        "provenance": _provenance(rec),
        "carbon_intensity": {
            "g_per_kwh": g,
            "source": a.get(TrialAttrs.intensity_source),
            "region": a.get(TrialAttrs.carbon_region) or None,
        },
        "search": {
            "energy_kwh": search.energy_kwh,
            "kgco2e": search.kgco2e,
            "trials_by_state": search.trials_by_state,
            "meters": search.meters,
            "intensities": search.intensities,
        },
        "weights": weights,
        "proxy_training": {
            "energy_kwh": rec.energy_kwh,
            "kgco2e": rec.kgco2e,
            "kind": a.get(TrialAttrs.energy_kind),
            "phases": {p.name: p.energy_kwh for p in rec.phases},
            "duration_s": rec.num(TrialAttrs.duration_s),
            "epochs": a.get(TrialAttrs.epochs),
            "search_energy_kwh": rec.search_energy_kwh,
            "metered_fraction": rec.metered_fraction,
        },
        "final_training": _final_training(rec, projection),
        "search_share": _search_share(study, search.kgco2e, search.kinds),
        "inference_per_1k": inference,
        "software": software_versions(),
    }


def _final_training(rec: TrialRecord, projection: dict[str, Any] | None) -> dict[str, Any]:
    """The full-budget training: measured/estimated when run, else projected, else unknown."""
    f = rec.final
    if rec.has_final:
        return {
            "kind": f.get(Final.energy_kind),
            "energy_kwh": f.get(Final.energy_kwh),
            "kgco2e": f.get(Final.kgco2e),
            "epochs": f.get(Final.epochs),
            "train_size": f.get(Final.train_size),
            "test_accuracy": f.get(Final.test_accuracy),
            "lost_energy_kwh": f.get(Final.lost_energy_kwh),
            "projected_energy_kwh": f.get(Final.projected_energy_kwh),
            "projection_error_pct": f.get(Final.projection_error_pct),
            "intensity_g_per_kwh": f.get(Final.intensity_g_per_kwh),
        }
    if projection is not None:
        return {
            "kind": "projected",
            "energy_kwh": projection.get("energy_kwh"),
            "kgco2e": projection.get("kgco2e"),
            "epochs": projection.get("inputs", {}).get("epochs"),
            "train_size": projection.get("inputs", {}).get("train_size"),
            "method": projection.get("method"),
        }
    return {"kind": "unknown", "energy_kwh": None, "kgco2e": None}


def _search_share(study: optuna.Study, search_kg: float, kinds: set[str]) -> dict[str, Any]:
    """The search's kgCO2e charged to one model: the whole search / lifecycle.models_deployed."""
    life = _study_config(study).get("lifecycle", {})
    models = int(life.get("models_deployed") or 1)
    kind = "estimated" if "estimated" in kinds or not kinds else "measured"
    return {"kgco2e": search_kg / models, "models_deployed": models, "kind": kind}


def _provenance(rec: TrialRecord) -> dict[str, Any]:
    """What decides the figures: instruction sets, GPU, threads, versions, the estimate's
    constants with their sources."""
    out: dict[str, Any] = {
        "cpu_isa": rec.get(Provenance.cpu_isa),
        "torch_cpu_capability": rec.get(Provenance.torch_cpu_capability),
        "cuda_device": rec.get(Provenance.cuda_device),
        "cuda_capability": rec.get(Provenance.cuda_capability),
        "threads": rec.get(Provenance.threads),
        "meter_scope": rec.get(Provenance.energy_scope),  # process, system or device
        "meter_share": rec.num(Provenance.energy_share),  # of a machine-wide meter, charged
        "torch_version": rec.get(Provenance.torch_version),
        "econas_version": rec.get(Provenance.econas_version),
        "estimate": {
            "cpu_time_s": rec.num(Provenance.cpu_time_s),
            "watts_per_core": rec.num(Provenance.watts_per_core),
            "watts_per_core_source": rec.get(Provenance.watts_per_core_source),
            "dram_w_per_gb": rec.num(Provenance.dram_w_per_gb),
            "dram_w_per_gb_source": rec.get(Provenance.dram_w_per_gb_source),
        },
    }
    details = rec.json(Provenance.provenance)
    if isinstance(details, dict):
        out["details"] = details
    return out


def _yaml_str(value: Any) -> str:
    """A YAML double-quoted scalar of ``value`` that decodes to plain text: one line, no
    control character (not even as a ``\\u001b`` escape that YAML would decode), markup
    escaped as HTML entities (a card renderer shows it as text)."""
    text = html.escape(one_line("" if value is None else value), quote=False)
    return json.dumps(text, ensure_ascii=True)  # a JSON string is YAML too


def _g(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def _cell(value: Any) -> str:
    return markdown_cell(value)  # one line, pipes and Markdown/HTML specials escaped


def model_card(label: dict[str, Any]) -> str:
    """README.md text: YAML front matter (``co2_eq_emissions`` in grams) and a summary."""
    m, ci = label["model"], label["carbon_intensity"]
    final, proxy = label["final_training"], label["proxy_training"]
    shipped = final if label.get("weights") == "final" else proxy  # the weights' own training
    kg = finite(shipped["kgco2e"])
    grams = kg * 1000.0 if kg is not None else None  # unknown stays unknown, never 0
    kind = label["meter"]["kind"] or "unknown"
    source = f"econas {label['software'].get('econas')}: {label['meter']['source']} meter ({kind}); intensity {ci['g_per_kwh']} gCO2e/kWh from {ci['source']}"
    dataset = label["dataset"].get("dataset")
    front = [
        "---",
        "library_name: pytorch",
        "tags:",
        "- econas",
        "- neural-architecture-search",
        "- image-classification",
        *([f"datasets:\n- {_yaml_str(dataset)}"] if dataset else []),
        "metrics:",
        "- accuracy",
        *(
            [
                "co2_eq_emissions:",
                f"  emissions: {grams:.16e}",  # always a YAML float (dot + signed exponent)
                f"  source: {_yaml_str(source)}",
                '  training_type: "pre-training"',
                f"  geographical_location: {_yaml_str(ci['region'] or 'unknown')}",
                f"  hardware_used: {_yaml_str(label['hardware'])}",
            ]
            if grams is not None
            else []  # no figure: Hugging Face's field holds a number or nothing
        ),
        "---",
    ]
    share = label.get("search_share") or {}
    weights = label.get("weights", "proxy")
    val = label["accuracy"]
    if label.get("at_or_below_chance") and label.get("chance_accuracy"):
        chance = label["chance_accuracy"]
        val = f"{val} (at or below chance, 1/{round(1 / chance)}: the proxy learnt nothing)"
    rows = [
        ("architecture", m["arch"]),
        ("weights", "full-budget training" if weights == "final" else "search proxy"),
        ("validation accuracy (proxy)", val),
        ("test accuracy (proxy)", label["test_accuracy"]),
        ("test accuracy (full budget)", final.get("test_accuracy") or "-"),
        (
            "training of these weights",
            f"{_g(shipped['energy_kwh'])} kWh, {_g(shipped['kgco2e'])} kgCO2e "
            f"({_g(grams)} g; {shipped.get('kind')})"
            + ("" if grams is not None else "; unknown: the trial recorded no figure"),
        ),
        (
            "full-budget training",
            f"{_g(final.get('energy_kwh'))} kWh, {_g(final.get('kgco2e'))} kgCO2e "
            f"({final.get('kind')})",
        ),
        (
            "proxy training",
            f"{_g(proxy['energy_kwh'])} kWh, {_g(proxy['kgco2e'])} kgCO2e ({proxy.get('kind')})",
        ),
        (
            "search share",
            f"{_g(share.get('kgco2e'))} kgCO2e (the whole search / "
            f"{plural(share.get('models_deployed', 1), 'deployed model')}; {share.get('kind')})",
        ),
        (
            "the whole search",
            f"{_g(label['search']['energy_kwh'])} kWh, {_g(label['search']['kgco2e'])} kgCO2e",
        ),
    ]
    for name, inf in label["inference_per_1k"].items():
        runtime = RUNTIME_NAMES.get(name, name)
        rows.append(
            (
                f"1,000 inferences ({runtime})",
                f"{_g(inf['energy_kwh'])} kWh, {_g(inf['kgco2e'])} kgCO2e ({inf['kind']})",
            )
        )
        threads = inf.get("threads")
        rows.append(
            (
                f"latency ({runtime})",
                f"{_g(inf['latency_ms'])} ms per batch of {inf.get('batch_size') or '?'} "
                f"(median, {inf.get('device') or '?'}, "
                f"{plural(threads, 'thread') if threads else 'threads not recorded'})",
            )
        )
    prov = label.get("provenance") or {}
    est = prov.get("estimate") or {}
    rows += [
        ("energy meter", f"{label['meter']['source']} ({kind})"),
        ("hardware", label["hardware"]),
        ("CPU instruction sets", prov.get("cpu_isa") or "-"),
        ("threads", prov.get("threads") or "-"),
    ]
    if est.get("watts_per_core") is not None:
        rows.append(
            (
                "estimate constants",
                f"{_g(est['watts_per_core'])} W per busy core ({est.get('watts_per_core_source')}); "
                f"{_g(est.get('dram_w_per_gb'))} W/GB DRAM ({est.get('dram_w_per_gb_source')})",
            )
        )
    rows += [
        ("carbon intensity", f"{ci['g_per_kwh']} gCO2e/kWh ({ci['source']})"),
    ]
    body = [
        "",
        f"# {markdown_cell(m['study'])} trial {markdown_cell(m['trial'])}",
        "",
        f"Found by econas's energy-aware architecture search (study {markdown_cell(m['study'])}). "
        f"Energy figures are **{markdown_cell(kind)}**; see `carbon_label.json` for every figure.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {_cell(v)} |" for k, v in rows),
        "",
    ]
    return "\n".join(front + body)


def write_carbon_label(out_dir: str | Path, label: dict[str, Any]) -> dict[str, Path]:
    """Write ``carbon_label.json`` and ``README.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "carbon_label.json").write_text(json_text(label) + "\n")
    (out / "README.md").write_text(model_card(label), encoding="utf-8")
    return {"carbon_label": out / "carbon_label.json", "model_card": out / "README.md"}
