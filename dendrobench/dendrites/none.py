"""``dendrites=none``: the base model untouched (only the baseline and wide arms make sense)."""

from dendrobench.contract.engine import DendriteEngine


class NoDendrites(DendriteEngine):
    name = "none"
    description = "no dendrites: the dendritic arms are skipped"
