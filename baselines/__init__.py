"""The reference models (installed as ``dendrobench.baselines``) and the published numbers.

Base (no-dendrite) networks shared by tasks: GIN, small ResNet, MONAI 3D UNet, MLP, causal
transformer. ``reference.yaml`` holds published figures with their sources, shown beside what we
measure; ``claims/*.yaml`` holds each published dendrite claim as data (its protocol runner is
``dendrobench.evidence.claims``).
"""
