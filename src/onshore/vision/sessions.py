"""The onnxruntime session every detector model runs in: CPU only, quiet, its threads set by the caller."""

from __future__ import annotations

from typing import Any


def cpu_session(model: bytes, threads: int) -> Any:
    """An onnxruntime ``InferenceSession`` of the serialised ONNX ``model`` on ``threads`` intra-op threads.

    One operator at a time (``ORT_SEQUENTIAL``, one inter-op thread): the frame pool runs one detector per
    core, so a session must not spread over the others. Only errors are logged.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
