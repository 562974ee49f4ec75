"""Inference runtimes: a verified bundle and an engine, windows in, labels out.

Backends are chosen by name from :data:`~models.runtime.registry.BACKENDS`, an explicit
registry in its own module (a backend whose engine is missing fails loudly when chosen,
never silently at import). Engines are imported when a backend is built, so importing
this package needs neither onnxruntime nor LiteRT.
"""

from __future__ import annotations

from models.runtime.base import InferenceBackend
from models.runtime.classifier import Decision, ModelRuntime
from models.runtime.config import ModelConfig
from models.runtime.registry import BACKENDS

__all__ = ["BACKENDS", "Decision", "InferenceBackend", "ModelConfig", "ModelRuntime"]
