"""The names of everything a trial (and a study) stores, with their units, types and meaning.

Each name is a :class:`Field`: a ``str`` (so ``attrs[TrialAttrs.accuracy]`` works everywhere a key
does) that also carries ``unit``, ``kind`` (the JSON type stored) and ``doc``. Names are
grouped by the part of econas that writes them. Families of names built from a variable part
(phases, energy domains, rungs, proxies) are made by the functions at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

RECORD_VERSION = 2  # 1: releases before the trial record (no record_version attr)


class Field(str):
    """An attribute name that knows its unit, stored JSON type and meaning."""

    unit: str
    kind: type | tuple[type, ...]
    doc: str

    def __new__(cls, name: str, kind: Any = float, unit: str = "", doc: str = "") -> Field:
        obj = super().__new__(cls, name)
        obj.unit, obj.kind, obj.doc = unit, kind, doc
        return obj

    def __reduce__(self) -> tuple[Any, ...]:  # pickles/copies as a plain string
        return (str, (str(self),))


_NUM = (int, float)


def _f(name: str, kind: Any = _NUM, unit: str = "", doc: str = "") -> Field:
    return Field(name, kind, unit, doc)


class TrialAttrs:
    """What every trial stores about itself and its result."""

    record_version = _f("record_version", int, "", "schema version of this trial's attrs")
    family = _f("family", str, "", "search-space family (cnn, vit)")
    arch = _f("arch", str, "", "compact architecture string")
    arch_spec = _f("arch_spec", str, "", "ArchSpec JSON: the trial can be rebuilt from it")
    device = _f("device", str, "", "torch device the trial trained on")
    params = _f("params", int, "count", "parameters of the deployed model")
    flops = _f("flops", int, "FLOPs", "one multiply-add = one FLOP, batch of one")
    cost_of = _f("cost_of", str, "", "trained_model or deployed_model: what params/flops count")
    accuracy = _f("accuracy", _NUM, "fraction", "validation accuracy (an objective)")
    test_accuracy = _f("test_accuracy", _NUM, "fraction", "test accuracy (reporting only)")
    train_loss = _f("train_loss", _NUM, "", "mean loss of the last training epoch")
    epochs = _f("epochs", int, "epochs", "training epochs completed")
    train_samples = _f("train_samples", int, "samples", "samples processed in training")
    epoch_energy_kwh = _f("epoch_energy_kwh", str, "kWh", "JSON: each epoch's training energy")
    epoch_duration_s = _f("epoch_duration_s", str, "s", "JSON: each epoch's training time")
    model_build_s = _f(
        "model_build_s", _NUM, "s", "of the build phase, constructing the model alone"
    )
    energy_kwh = _f("energy_kwh", _NUM, "kWh", "producing the model: the model-cost phases")
    energy_j = _f("energy_j", _NUM, "J", "energy_kwh in joules")
    kgco2e = _f("kgco2e", _NUM, "kgCO2e", "energy_kwh at the trial's carbon intensity")
    energy_source = _f("energy_source", str, "", "meter: nvml, rapl, estimate, composites")
    energy_kind = _f("energy_kind", str, "", "measured, or estimated if any phase is")
    hardware = _f("hardware", str, "", "what the meter measured")
    intensity_g_per_kwh = _f("intensity_g_per_kwh", _NUM, "gCO2e/kWh", "over the trial's run")
    intensity_source = _f("intensity_source", str, "", "where the intensity comes from")
    carbon_region = _f("carbon_region", str, "", "region of the intensity, if any")
    intensity_forecast_share = _f(
        "intensity_forecast_share",
        _NUM,
        "fraction",
        "live source: share of the trial's interval charged from the provider's forecast "
        "(no final actual yet); the rest from actuals",
    )
    intensity_fallback_reason = _f(
        "intensity_fallback_reason",
        str,
        "",
        "live source could not answer: why; the intensity is then the country's yearly average",
    )
    phases = _f("phases", str, "", "comma-separated phase names, in the order they ran")
    search_energy_kwh = _f("search_energy_kwh", _NUM, "kWh", "the sum of every phase's energy")
    search_kgco2e = _f("search_kgco2e", _NUM, "kgCO2e", "search_energy_kwh x intensity")
    wall_s = _f("wall_s", _NUM, "s", "from the trial's start to its last phase, waits excluded")
    metered_fraction = _f("metered_fraction", _NUM, "fraction", "summed phase time / wall_s")
    duration_s = _f("duration_s", _NUM, "s", "wall_s (kept for studies of earlier releases)")
    started_at = _f("started_at", str, "ISO 8601 UTC", "when the trial's work started")
    finished_at = _f("finished_at", str, "ISO 8601 UTC", "when its last phase ended")
    weights_artifact_id = _f("weights_artifact_id", str, "", "deployed weights in the store")
    fail_reason = _f("fail_reason", str, "", "invalid_arch, nan_loss, out_of_memory, error:...")
    fail_message = _f("fail_message", str, "", "first 500 characters of the failure")
    stop_reason = _f("stop_reason", str, "", "why a PRUNED trial stopped")
    baseline = _f("baseline", str, "", "the reference design it trains (search.baselines)")
    predicted_train_energy_kwh = _f(
        "predicted_train_energy_kwh",
        _NUM,
        "kWh",
        "training energy predicted before training (train_energy_kwh: the measurement)",
    )
    predicted_train_energy_basis = _f(
        "predicted_train_energy_basis", str, "", "what the prediction rests on"
    )
    predicted_train_energy_static_kwh = _f(
        "predicted_train_energy_static_kwh",
        _NUM,
        "kWh",
        "the prediction from static features alone (FLOPs, activations, calls; the sampler's)",
    )
    cost_probe_kwh = _f(
        "cost_probe_kwh",
        _NUM,
        "kWh",
        "one probed training step's metered kWh x the trial's steps, before the study's scale",
    )
    cost_probe_energy_kwh = _f(
        "cost_probe_energy_kwh", _NUM, "kWh", "what the probe itself drew (phase screen)"
    )
    training_work = _f(
        "training_work", str, "", "JSON: FLOPs, params, activations, samples, steps predicted on"
    )
    benchmark_arch = _f("benchmark_arch", str, "", "tabular benchmark: the table's architecture id")
    benchmark_repeat = _f("benchmark_repeat", int, "", "tabular benchmark: the repeat looked up")
    benchmark_epochs = _f(
        "benchmark_epochs", int, "epochs", "tabular benchmark: the recorded epoch trained to"
    )


class Provenance:
    """What decides a trial's figures: hardware features, software, threads, estimate constants."""

    cpu_isa = _f("cpu_isa", str, "", "CPU instruction-set features, e.g. avx2+fma+f16c")
    torch_cpu_capability = _f("torch_cpu_capability", str, "", "torch's CPU kernel level")
    cuda_device = _f("cuda_device", str, "", "GPU name, when trained on CUDA")
    cuda_capability = _f("cuda_capability", str, "", "CUDA compute capability, e.g. 9.0")
    threads = _f("threads", int, "threads", "torch intra-op threads")
    torch_version = _f("torch_version", str, "", "")
    econas_version = _f("econas_version", str, "", "")
    provenance = _f("provenance", str, "", "JSON: everything above and more (nas.hardware)")
    cpu_time_s = _f("cpu_time_s", _NUM, "s", "process CPU time over the phases (estimate)")
    watts_per_core = _f("estimate_watts_per_core", _NUM, "W", "estimate: per busy core")
    watts_per_core_source = _f("estimate_watts_per_core_source", str, "", "")
    dram_w_per_gb = _f("estimate_dram_w_per_gb", _NUM, "W/GB", "estimate: per GB resident")
    dram_w_per_gb_source = _f("estimate_dram_w_per_gb_source", str, "", "")
    energy_scope = _f("energy_scope", str, "", "process, system or device: what a meter sees")
    energy_share = _f("energy_share", _NUM, "fraction", "share of a machine-wide meter charged")


class Inference:
    """The trial's own inference measurement (phase ``inference``)."""

    runtime = _f("inference_runtime", str)
    device = _f("inference_device", str)
    batch_size = _f("inference_batch_size", int, "samples")
    threads = _f("inference_threads", int, "threads", "intra-op CPU threads of the runtime")
    samples = _f("inference_samples", int, "samples", "predicted inside the window")
    latency_ms = _f("inference_latency_ms", _NUM, "ms", "median per batch")
    latency_p90_ms = _f("inference_latency_p90_ms", _NUM, "ms")
    throughput_per_s = _f("inference_throughput_per_s", _NUM, "samples/s")
    energy_j_per_sample = _f("inference_energy_j_per_sample", _NUM, "J")
    energy_kwh_per_1k = _f("inference_energy_kwh_per_1k", _NUM, "kWh", "1,000 predictions")
    window_duration_s = _f("inference_window_duration_s", _NUM, "s", "the measured window")
    window_energy_j = _f("inference_window_energy_j", _NUM, "J")
    energy_source = _f("inference_energy_source", str)
    energy_kind = _f("inference_energy_kind", str)
    energy_hardware = _f("inference_energy_hardware", str)
    energy_kwh_window = _f("inference_energy_kwh_window", _NUM, "kWh", "record version 1 only")


class Compression:
    """What a trial sampled from ``[compression]`` and what it cost."""

    prune_ratio = _f("prune_ratio", _NUM, "fraction")
    prune_criterion = _f("prune_criterion", str)
    quantization = _f("quantization", str, "", "the deployed model's")
    precision = _f("precision", str, "", "training precision")
    precision_switch_epoch = _f("precision_switch_epoch", int, "epoch")
    distill = _f("distill", bool)
    kd_temperature = _f("kd_temperature", _NUM)
    kd_alpha = _f("kd_alpha", _NUM)
    distill_skipped = _f("distill_skipped", str, "", "why no teacher was used")
    teacher = _f("teacher", str, "", "trial:N or an export directory")
    teacher_energy_kwh = _f("teacher_energy_kwh", _NUM, "kWh", "teacher passes, inside train")
    teacher_duration_s = _f("teacher_duration_s", _NUM, "s")
    teacher_batches = _f("teacher_batches", int, "batches")
    teacher_training_kwh = _f(
        "teacher_training_kwh", _NUM, "kWh", "the teacher's own recorded training energy"
    )
    teacher_amortised_over = _f(
        "teacher_amortised_over", int, "students", "students the teacher's training is shared by"
    )
    teacher_training_share_kwh = _f(
        "teacher_training_share_kwh", _NUM, "kWh", "teacher_training_kwh / teacher_amortised_over"
    )
    teacher_training_source = _f("teacher_training_source", str, "", "where the figure is from")
    pruned_structure = _f("pruned_structure", str, "", "JSON: widths left after pruning")
    params_unpruned = _f("params_unpruned", int, "count")
    flops_unpruned = _f("flops_unpruned", int, "FLOPs")


class Efficiency:
    """Reuse, screening and early stopping (``[efficiency]``)."""

    fingerprint = _f("fingerprint", str, "", "hash of what decides the trained proxy")
    reuse_metrics = _f("reuse_metrics", str, "", "JSON: objective values a duplicate reuses")
    reused = _f("reused", bool, "", "the result is another trial's")
    reused_from_trial = _f("reused_from_trial", int)
    reused_from_study = _f("reused_from_study", str)
    early_stopped_at_rung = _f("early_stopped_at_rung", int, "epoch")
    screen_choice = _f("screen_choice", str, "", 'screen = "auto": the proxy used, or none')
    screen_rhos = _f("screen_rhos", str, "", "JSON: each proxy's Spearman rho in the family")


class Schedule:
    """Green-window scheduling of the trial (``[schedule]`` with a trace)."""

    policy = _f("schedule_policy", str)
    forecast = _f("schedule_forecast", str)
    clock = _f("schedule_clock", str)
    trace = _f("schedule_trace", str)
    wait_s = _f("schedule_wait_s", _NUM, "s", "waited for a green slot (not metered)")
    ready_at = _f("schedule_ready_at", str, "ISO 8601 UTC")
    slot_start = _f("schedule_slot_start", str, "ISO 8601 UTC")
    expected_s = _f("schedule_expected_s", _NUM, "s")
    region = _f("schedule_region", str, "", "spatial (--regions): the region the trial ran in")
    expected_g_per_kwh = _f(
        "schedule_expected_g_per_kwh", _NUM, "gCO2e/kWh", "forecast mean over the chosen slot"
    )
    now_g_per_kwh = _f(
        "schedule_now_g_per_kwh", _NUM, "gCO2e/kWh", "forecast mean had it started when ready"
    )
    forecast_issued_at = _f("schedule_forecast_issued_at", str, "ISO 8601 UTC", "provider's")
    replans = _f("schedule_replans", int, "count", "decisions made while waiting (one a slot)")


class Lifecycle:
    """The projected lifecycle carbon (``[lifecycle]``)."""

    kgco2e = _f("lifecycle_kgco2e", _NUM, "kgCO2e", "search share + training + inference")
    search_share_kgco2e = _f("lifecycle_search_share_kgco2e", _NUM, "kgCO2e")
    training_kgco2e = _f("lifecycle_training_kgco2e", _NUM, "kgCO2e", "the deployed model's")
    training_energy_kwh = _f("lifecycle_training_energy_kwh", _NUM, "kWh", "full budget, projected")
    training_basis = _f("lifecycle_training_basis", str, "", "projected (method) or measured")
    retrainings = _f("lifecycle_retrainings", int)
    retraining_kgco2e = _f("lifecycle_retraining_kgco2e", _NUM, "kgCO2e")
    inferences = _f("lifecycle_inferences", _NUM, "predictions")
    inference_energy_kwh = _f("lifecycle_inference_energy_kwh", _NUM, "kWh")
    inference_kgco2e = _f("lifecycle_inference_kgco2e", _NUM, "kgCO2e")
    intensity_g_per_kwh = _f("lifecycle_intensity_g_per_kwh", _NUM, "gCO2e/kWh")
    intensity_source = _f("lifecycle_intensity_source", str)
    target_device = _f("lifecycle_target_device", str)
    batch_size = _f("lifecycle_batch_size", int, "samples")
    search_share = _f("lifecycle_search_share", str)
    per_sample_kwh = _f("lifecycle_inference_energy_kwh_per_sample", _NUM, "kWh")
    inference_basis = _f("lifecycle_inference_basis", str)
    inference_energy_source = _f("lifecycle_inference_energy_source", str)
    inference_energy_kind = _f("lifecycle_inference_energy_kind", str)
    inference_latency_ms = _f("lifecycle_inference_latency_ms", _NUM, "ms")


class Federated:
    """Federated training of the trial (``[federated]``)."""

    strategy = _f("federated_strategy", str)
    split = _f("federated_split", str)
    label_skew = _f("federated_label_skew", _NUM)
    dirichlet_alpha = _f("federated_dirichlet_alpha", _NUM)
    clients = _f("federated_clients", int)
    clients_per_round = _f("federated_clients_per_round", int)
    client_fraction = _f("federated_client_fraction", _NUM, "fraction")
    local_epochs = _f("federated_local_epochs", int, "epochs")
    rounds = _f("federated_rounds", int)
    rounds_completed = _f("federated_rounds_completed", int)
    prox_mu = _f("federated_prox_mu", _NUM)
    epochs_mapping = _f("federated_epochs_mapping", str)
    model_bytes = _f("federated_model_bytes", int, "bytes")
    comm_bytes_up = _f("federated_comm_bytes_up", int, "bytes")
    comm_bytes_down = _f("federated_comm_bytes_down", int, "bytes")
    comm_energy_kwh = _f("federated_comm_energy_kwh", _NUM, "kWh", "estimated, phase comm")
    comm_in_energy_total = _f("federated_comm_in_energy_total", bool)
    comm_note = _f("federated_comm_note", str)
    client_energy_kwh = _f("federated_client_energy_kwh", _NUM, "kWh", "inside train")
    client_energy_kwh_max = _f("federated_client_energy_kwh_max", _NUM, "kWh")
    client_energy_kwh_by_client = _f("federated_client_energy_kwh_by_client", str, "kWh")
    client_duration_s = _f("federated_client_duration_s", _NUM, "s")
    client_samples = _f("federated_client_samples", str, "samples", "JSON list")
    client_rounds = _f("federated_client_rounds", str, "", "JSON list")
    server_energy_kwh = _f("federated_server_energy_kwh", _NUM, "kWh", "inside train")
    server_duration_s = _f("federated_server_duration_s", _NUM, "s")
    energy_source = _f("federated_energy_source", str)
    energy_kind = _f("federated_energy_kind", str)
    client_drift_l2_mean = _f("federated_client_drift_l2_mean", _NUM)
    round_losses = _f("federated_round_losses", str, "", "JSON list")
    network_kwh_per_gb = _f("network_kwh_per_gb", _NUM, "kWh/GB")
    network_kwh_per_gb_source = _f("network_kwh_per_gb_source", str)


class Final:
    """A trial's training at full budget (``econas train``). Optuna refuses changes to a finished
    trial, so these live in one study attr per trial (:func:`final_key`), which
    :class:`~nas.record.TrialRecord` merges into the trial's record."""

    status = _f("final_status", str, "", "complete, or why it stopped (budget, interrupted)")
    epochs = _f("final_epochs", int, "epochs", "epochs completed")
    epochs_planned = _f("final_epochs_planned", int, "epochs")
    train_size = _f("final_train_size", int, "images")
    test_size = _f("final_test_size", int, "images")
    data_seed = _f(
        "final_data_seed", int, "", "the seed the train/val/test subsets were drawn with"
    )
    test_indices_sha256 = _f(
        "final_test_indices_sha256",
        str,
        "",
        "of the test subset's positions (nas.data.indices_digest)",
    )
    batch_size = _f("final_batch_size", int, "samples")
    lr = _f("final_lr", _NUM)
    val_accuracy = _f("final_val_accuracy", _NUM, "fraction", "on the study's validation set")
    test_accuracy = _f("final_test_accuracy", _NUM, "fraction", "evaluated once, at the end")
    energy_kwh = _f("final_energy_kwh", _NUM, "kWh", "every phase, every resumed run, lost work")
    kgco2e = _f("final_kgco2e", _NUM, "kgCO2e")
    lost_energy_kwh = _f("final_lost_energy_kwh", _NUM, "kWh", "epochs interrupted and redone")
    energy_kind = _f("final_energy_kind", str)
    energy_source = _f("final_energy_source", str)
    hardware = _f("final_hardware", str)
    intensity_g_per_kwh = _f("final_intensity_g_per_kwh", _NUM, "gCO2e/kWh")
    intensity_source = _f("final_intensity_source", str)
    phases = _f("final_phases", str, "", "JSON: kWh per phase")
    duration_s = _f("final_duration_s", _NUM, "s", "metered time over every run")
    projected_energy_kwh = _f("final_projected_energy_kwh", _NUM, "kWh", "before training")
    projected_kgco2e = _f("final_projected_kgco2e", _NUM, "kgCO2e")
    projection_method = _f("final_projection_method", str)
    projected_energy_kwh_low = _f(
        "final_projected_energy_kwh_low", _NUM, "kWh", "benchmarks/projection.py's spread"
    )
    projected_energy_kwh_high = _f("final_projected_energy_kwh_high", _NUM, "kWh")
    projection_range_basis = _f(
        "final_projection_range_basis", str, "", "from N runs of benchmarks/projection.py on ..."
    )
    projected_phases = _f("final_projected_phases", str, "", "JSON: projected kWh per phase")
    projection_error_pct = _f(
        "final_projection_error_pct", _NUM, "%", "(measured-projected)/projected"
    )
    resumed_from_epoch = _f("final_resumed_from_epoch", int, "epoch", "0 when fresh")
    weights_artifact_id = _f("final_weights_artifact_id", str)
    mean = _f("final_mean", str, "", "JSON: per-channel mean of the training images, [0, 1] units")
    std = _f("final_std", str, "", "JSON: per-channel std")
    provenance = _f("final_provenance", str, "", "JSON (nas.hardware)")
    finished_at = _f("final_finished_at", str, "ISO 8601 UTC")
    record_version = _f("final_record_version", int)


class StudyAttrs:
    """Study-level user attrs."""

    config = _f("econas_config", str, "", "JSON of the config, credentials removed")
    fingerprint = _f("econas_config_fingerprint", str)
    artifact_dir = _f("econas_artifact_dir", str)
    budget_kgco2e = _f("carbon_budget_kgco2e", _NUM, "kgCO2e")
    budget_used_kgco2e = _f("carbon_budget_used_kgco2e", _NUM, "kgCO2e")
    budget_breakdown = _f("carbon_budget_breakdown", str, "", "JSON")
    budget_stop_reason = _f("carbon_budget_stop_reason", str)
    stop_reason = _f("stop_reason", str)
    schedule_clock = _f("schedule_clock", str, "ISO 8601 UTC", "simulated clock position")
    calibration = _f(
        "econas_calibration", str, "", "JSON: per-candidate energy ratios vs fp32, exclusions"
    )
    calibration_energy_kwh = _f(
        "calibration_energy_kwh", _NUM, "kWh", "the calibration's energy, counted once per study"
    )
    calibration_kgco2e = _f("calibration_kgco2e", _NUM, "kgCO2e", "the calibration's emissions")
    calibration_excluded = _f(
        "calibration_excluded", str, "", "JSON list: why each excluded candidate is not sampled"
    )
    baselines = _f(
        "econas_baselines", str, "", "JSON: the baselines enqueued when the study was new"
    )


TRIAL_GROUPS: tuple[type, ...] = (
    TrialAttrs,
    Provenance,
    Inference,
    Compression,
    Efficiency,
    Schedule,
    Lifecycle,
    Federated,
)


def fields(group: type) -> Iterator[Field]:
    """The fields a group declares, in declaration order."""
    for value in vars(group).values():
        if isinstance(value, Field):
            yield value


# -- names with a variable part ------------------------------------------------------------
PHASE_SUFFIXES = (
    "energy_kwh",
    "energy_j",
    "duration_s",
    "energy_kind",
    "energy_source",
    "hardware",
)


def phase_key(phase: str, what: str) -> str:
    """``train_energy_kwh``: one figure of one phase (``what`` from PHASE_SUFFIXES)."""
    return f"{phase}_{what}"


def domain_key(phase: str, domain: str) -> str:
    """``train_energy_j_cpu``: a phase's joules in one meter domain (sanitised name)."""
    return f"{phase}_energy_j_{domain}"


def final_key(trial_number: int) -> str:
    """``econas_final_7``: the study attr holding trial 7's final training (JSON)."""
    return f"econas_final_{trial_number}"


def rung_key(rung: int, what: str) -> str:
    """``rung_0_accuracy``, ``rung_0_energy_kwh``: early stopping's partial learning curve."""
    return f"rung_{rung}_{what}"


def proxy_key(proxy: str) -> str:
    """``proxy_synflow``: a zero-cost proxy's score."""
    return f"proxy_{proxy}"


def is_proxy_key(key: str) -> bool:
    return key.startswith("proxy_")
