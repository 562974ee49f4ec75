"""How a unit runs its model: backend, threads, where bundles live, whose signature counts.

Part of the unit's TOML config (the ``[model]`` section); the same pydantic habits as
the rest of it: every key has a default and a description, unknown keys are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelConfig(BaseModel):
    """The ``[model]`` section of a unit config."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    backend: Literal["onnx", "tflite"] = Field(
        "onnx", description="Inference backend: onnx (onnxruntime) | tflite (LiteRT)."
    )
    threads: int = Field(1, ge=1, le=16, description="Intra-op threads for inference.")
    bundle_dir: Path = Field(
        Path("./var/models/current"), description="Folder of the bundle in use."
    )
    trusted_key: Path | None = Field(
        None, description="PEM Ed25519 public key bundles must be signed with."
    )
    batch_size: int = Field(1, ge=1, le=256, description="Windows classified per call.")
