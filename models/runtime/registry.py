"""The inference backends by name: an explicit ``{key: class}`` registry.

A bundle or a unit's config names its backend (``onnx``, ``tflite``); the runtime looks
it up here. Nothing is discovered: a backend whose engine is missing is still listed
and fails loudly when chosen, never silently at import. The engines themselves are
imported when a backend is built, so importing this module needs neither onnxruntime
nor LiteRT.
"""

from __future__ import annotations

from models.runtime.base import InferenceBackend
from models.runtime.onnx import OnnxBackend
from models.runtime.tflite import TfliteBackend

BACKENDS: dict[str, type[InferenceBackend]] = {"onnx": OnnxBackend, "tflite": TfliteBackend}
"""Every backend a bundle may name, by its key."""
