"""Dendrite engines: convert a model's layers and drive dendrite cycles inside the runner's budget.

``none`` (the baseline), ``gd`` (joint-gradient dendrites), ``cc`` (correlation-trained, in the
style of Perforated Backpropagation), ``pai`` (adapter to the real ``perforatedai`` package), the
dendrite layers they add (``modules``, ``lowrank``) and ``convert`` (finding the layers to convert).
The interface they implement is ``dendrobench.contract.engine``; they register through the
``dendrobench.engines`` and ``dendrobench.dendrites`` entry points.
"""

from dendrobench.contract.engine import DendriteEngine, EngineContext, ValidationDecision

__all__ = ["DendriteEngine", "EngineContext", "ValidationDecision"]
