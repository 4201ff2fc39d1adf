"""Export: a trained model to ONNX, ``torch.export`` .pt2 or a state_dict, checked against
PyTorch (:mod:`nas.export._model`); and a study's trial with its ArchSpec, preprocessing,
figures and carbon label (:func:`export_trial`, which ``econas export`` and
``nas.export_trial`` both call)::

    from nas.export import export_trial

    result = export_trial(study, 3, out="model/", fmt="onnx")
    result.written["model"], result.weights, result.max_abs_diff_vs_pytorch
"""

from __future__ import annotations

from nas.export._files import check_out_dir, publish, staging_dir
from nas.export._model import (
    EXPORT_FORMATS,
    ONNX_OPSET,
    PRECISIONS,
    SUPPORTED_FORMATS,
    ExportCheckError,
    check_onnx,
    check_pt2,
    export_model,
    model_precision,
    quantize_model,
)
from nas.export._trial import WEIGHTS, TrialExport, check_export, export_trial

__all__ = [
    "EXPORT_FORMATS",
    "ONNX_OPSET",
    "PRECISIONS",
    "SUPPORTED_FORMATS",
    "WEIGHTS",
    "ExportCheckError",
    "TrialExport",
    "check_export",
    "check_onnx",
    "check_out_dir",
    "check_pt2",
    "export_model",
    "export_trial",
    "model_precision",
    "publish",
    "quantize_model",
    "staging_dir",
]
