"""Misbehaving task plugins for fault injection (issue 13), run by import path as a user's plugin
would be: ``task=badtasks:Name`` with ``tests/`` on ``PYTHONPATH``. Each is the toy spirals task
with one fault."""

from __future__ import annotations

import ctypes
import socket
import sys
import time

from torch.utils.data import TensorDataset
from toy_task import SpiralTask

from dendrobench.contract.task import Budget, TaskData

TINY = {name: Budget(epochs=2, batch_size=32, lr=0.02, steps_per_epoch=3) for name in ("smoke", "quick", "standard", "full")}


class Tiny(SpiralTask):
    budgets = TINY


class CallsSysExit(Tiny):
    """Library code that parses sys.argv and exits (argparse does this)."""

    def build_model(self, data, width=1.0):
        sys.exit(3)


class RaisesKeyboardInterrupt(Tiny):
    def build_model(self, data, width=1.0):
        raise KeyboardInterrupt("not a real Ctrl-C")


class LoopsForever(Tiny):
    """Stuck in Python code."""

    def build_model(self, data, width=1.0):
        while True:
            pass


class SleepsInC(Tiny):
    """Stuck in a C call that no Python exception can interrupt (libc sleep through ctypes)."""

    def build_model(self, data, width=1.0):
        ctypes.CDLL(None).sleep(3600)


class SlowOnlyForDendrites(Tiny):
    """Stuck in C for the dendrites arm only: the other arms must still run."""

    def build_model(self, data, width=1.0):
        if width != 1.0 or not getattr(self, "_built_once", False):
            self._built_once = True
            return super().build_model(data, width)
        ctypes.CDLL(None).sleep(3600)


class PhonesHome(Tiny):
    """Offline data that is really fetched from a remote host."""

    def load_data(self, source, seed, root=None):
        socket.create_connection(("192.0.2.1", 80), timeout=1)  # TEST-NET-1: never routed
        return super().load_data(source, seed, root)


class PhonesHomeQuietly(Tiny):
    """Tries the network while training, catches the error and goes on."""

    def loss(self, output, batch):
        try:
            socket.getaddrinfo("example.com", 443)
        except OSError:
            pass
        return super().loss(output, batch)


class EmptyVal(Tiny):
    def load_data(self, source, seed, root=None):
        data = super().load_data(source, seed, root)
        data.val = TensorDataset(data.val.tensors[0][:0], data.val.tensors[1][:0])
        return data


class DataFails(Tiny):
    def load_data(self, source, seed, root=None):
        raise RuntimeError("the data file is corrupt")


class IgnoresSource(Tiny):
    """Returns its offline data whatever ``source`` says."""

    datasets = {"offline": "generated spirals", "online": "the real spirals"}
    single_source = False  # it claims two different datasets

    def load_data(self, source, seed, root=None):
        return TaskData(train=super().load_data("offline", seed).train, val=super().load_data("offline", seed).val,
                        test=super().load_data("offline", seed).test, dataset="spirals", source=source,
                        meta={"in": 2, "classes": 2})


class SingleSource(IgnoresSource):
    single_source = True


class NamedSpirals(Tiny):
    """Named like toy_task.SpiralTask ("spirals")."""


class Slow(Tiny):
    def loss(self, output, batch):
        time.sleep(0.01)
        return super().loss(output, batch)
