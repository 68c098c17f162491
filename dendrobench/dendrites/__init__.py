"""Dendrite engines: convert a model's layers and drive dendrite cycles inside the runner's budget."""

from dendrobench.dendrites.base import DendriteEngine, EngineContext, ValidationDecision

__all__ = ["DendriteEngine", "EngineContext", "ValidationDecision"]
