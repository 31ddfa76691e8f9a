"""sdr_core: Masked Spatial Propagation Network (MSPN) for sparsity-adaptive depth refinement.

Implements Jun, Lee and Kim, "Masked Spatial Propagation Network for Sparsity-Adaptive Depth
Refinement" (CVPR 2024): a monocular depth estimate is refined by two MSPN layers that grow a
confidence mask outward from sparse depth measurements.
"""

from __future__ import annotations

from .mspn import MSPN, MSPNConfig, MSPNLayer, PropagationState, iteration_count
from .pipeline import (
    PipelineConfig,
    RefineResult,
    RefineState,
    SDRPipeline,
    build_untrained_pipeline,
    load_pipeline,
)

__all__ = [
    "MSPN",
    "MSPNConfig",
    "MSPNLayer",
    "PipelineConfig",
    "PropagationState",
    "RefineResult",
    "RefineState",
    "SDRPipeline",
    "build_untrained_pipeline",
    "iteration_count",
    "load_pipeline",
]
__version__ = "0.1.0"
