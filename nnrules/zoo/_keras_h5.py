"""Read a Keras HDF5 weight file (``model.save(...h5)``) into PyTorch layers, with ``h5py`` only.

Keras stores ``Conv2D`` kernels as ``(kh, kw, in, out)`` and ``Dense`` kernels as ``(in, out)``;
PyTorch wants ``(out, in, kh, kw)`` and ``(out, in)``. ``BatchNormalization`` keeps
``gamma, beta, moving_mean, moving_variance``. No TensorFlow is needed.
"""
from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn


class KerasH5:
    """The weights and layer configs of a Keras HDF5 model file, by layer name."""

    def __init__(self, path) -> None:
        import h5py

        with h5py.File(path, "r") as f:
            weights = f["model_weights"] if "model_weights" in f else f
            self.weights = {name: {key.split(":")[0].split("/")[-1]: np.asarray(ds)
                                   for key, ds in _datasets(weights[name])}
                            for name in weights.attrs.get("layer_names", list(weights.keys()))
                            for name in [name.decode() if isinstance(name, bytes) else name]}
            config = f.attrs.get("model_config")
        config = json.loads(config.decode() if isinstance(config, bytes) else config) if config else {}
        self.layers = [(l["class_name"], l["config"]) for l in config.get("config", {}).get("layers", [])]

    def _get(self, name: str, key: str) -> torch.Tensor:
        try:
            return torch.from_numpy(np.ascontiguousarray(self.weights[name][key]))
        except KeyError:
            raise KeyError(f"Keras file has no weight {name}/{key}; layers: {list(self.weights)}") from None

    @torch.no_grad()
    def load_conv(self, name: str, conv: nn.Conv2d) -> None:
        conv.weight.copy_(self._get(name, "kernel").permute(3, 2, 0, 1))
        _need(conv.bias).copy_(self._get(name, "bias"))

    @torch.no_grad()
    def load_dense(self, name: str, linear: nn.Linear) -> None:
        linear.weight.copy_(self._get(name, "kernel").T)
        _need(linear.bias).copy_(self._get(name, "bias"))

    @torch.no_grad()
    def load_batchnorm(self, name: str, bn: nn.BatchNorm2d) -> None:
        bn.weight.copy_(self._get(name, "gamma"))
        bn.bias.copy_(self._get(name, "beta"))
        _need(bn.running_mean).copy_(self._get(name, "moving_mean"))
        _need(bn.running_var).copy_(self._get(name, "moving_variance"))


def _datasets(group):
    import h5py

    out = []
    group.visititems(lambda key, obj: out.append((key, obj)) if isinstance(obj, h5py.Dataset) else None)
    return out


def _need(t: torch.Tensor | None) -> torch.Tensor:
    """A module's optional tensor that the zoo's architectures always have (bias, running statistics)."""
    if t is None:
        raise ValueError("the zoo architecture lacks a tensor the Keras file has (bias or running statistics)")
    return t
