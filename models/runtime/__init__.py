"""Inference runtimes: a verified bundle and an engine, windows in, labels out.

Backends are chosen by name from :data:`BACKENDS`, an explicit registry (a backend
whose engine is missing fails loudly when chosen, never silently at import). Engines
are imported when a backend is built, so importing this package needs neither
onnxruntime nor LiteRT.
"""

from __future__ import annotations

from models.runtime.base import InferenceBackend
from models.runtime.classifier import Decision, ModelRuntime
from models.runtime.config import ModelConfig
from models.runtime.onnx import OnnxBackend
from models.runtime.tflite import TfliteBackend

BACKENDS: dict[str, type[InferenceBackend]] = {"onnx": OnnxBackend, "tflite": TfliteBackend}

__all__ = ["BACKENDS", "Decision", "InferenceBackend", "ModelConfig", "ModelRuntime"]
