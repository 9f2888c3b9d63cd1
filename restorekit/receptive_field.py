"""How far a backbone looks: the receptive radius that tiled restoration must overlap by.

An output pixel of a convolutional backbone depends only on the input pixels within some
distance ``r`` (its *receptive radius*, in the Chebyshev sense: a square of side ``2r + 1``).
Restoring an image tile by tile is then exact when every tile is read with a margin of at
least ``r`` pixels around the part of it that is kept: the kept pixels never see the tile's
edge (see :mod:`restorekit.inference`).

The radius is **measured**, not declared, so that it is right for every registered backbone,
third-party plugins included, and for every configuration of one (PReNet's ``stages``,
HAgg's ``num_blocks``, DDN's guided-filter radius). The measurement:

1. copies the backbone and gives the copy small random *positive* weights (about a tenth of
   ``1 / fan_in``) and biases near 1 (BatchNorm statistics reset), so that no ReLU is off, no tanh or sigmoid saturates and no two paths cancel by accident: a
   dependency that exists in the architecture shows as a non-zero gradient. The trained
   weights are not used: a ReLU that happens to be off for the probe input would hide a
   dependency that another input switches on. Kernel taps on the edge rows (or columns) of
   each kernel get most of the weight, so the gradient spreads outwards rather than
   staying near the centre and the far end of the field stays well above rounding noise.
2. feeds it a random positive *strip*, ``length`` pixels long and ``width`` wide, in float64
   (deep networks multiply many small factors: in float32 the far end of the field can
   underflow to exactly zero);
3. takes the gradient of the strip's centre output pixel with respect to the input and finds
   the furthest input pixel along the strip that it depends on.

For an ordinary convolutional network the gradient is exactly zero beyond the field. Some
layers are local only up to rounding: DDN's guided filter takes box means as differences of
cumulative sums, so every pixel "depends" on every other at the 1e-16 level. When the
gradient never reaches zero, its tail is checked to be flat rounding noise (below ``1e-12``
of the peak and within a factor of 100 of itself), and the field ends where the gradient
rises a thousandfold above that noise; past that point a tile edge changes the output by
less than float32 can represent anyway.

A vertical and a horizontal strip give the two radii (a convolution's straight path through
its centre column or row reaches as far as any path does); strips keep the memory of the
probe small, which matters for JORDER-E's 64-channel stages. If the dependency reaches the
end of the strip, the strip is doubled, up to ``max_length``; a backbone that looks further
than that (global pooling, attention) is reported as non-local and cannot be tiled exactly.

The result depends only on the architecture, so it is cached per backbone class and
configuration (the module's printed structure and its plain attributes).
"""

from __future__ import annotations

import copy
import threading

import torch
from torch import nn

from .models.contract import run_backbone

__all__ = ["receptive_radius", "NonLocalBackboneError", "architecture_key"]

#: Probe strips are this narrow (cheap), or multiples of ``_ALIGN`` when a backbone refuses
#: that (one that downsamples needs sizes it can divide).
_NARROW = 8
_ALIGN = 32
_cache: dict[str, int] = {}
_lock = threading.Lock()


class NonLocalBackboneError(ValueError):
    """The backbone's output depends on input pixels further away than the probe can see."""


def _plain_attributes(module: nn.Module) -> list[tuple[str, object]]:
    """Public scalar attributes of a module (``stages``, ``block_repeats``, ``radius``...)."""
    out = []
    for key, value in sorted(vars(module).items()):
        if key.startswith("_") or key == "training":
            continue
        if isinstance(value, (bool, int, float, str)) or (
            isinstance(value, tuple) and all(isinstance(v, (bool, int, float, str)) for v in value)
        ):
            out.append((key, value))
    return out


def architecture_key(backbone: nn.Module) -> str:
    """A string that is equal for two backbones exactly when their architecture is.

    The printed module tree gives layer types, channels, kernels and dilations; the plain
    attributes of every submodule add what the tree does not print (loop counts, filter radii).
    """
    cls = type(backbone)
    parts = [f"{cls.__module__}.{cls.__qualname__}", repr(backbone)]
    for name, module in backbone.named_modules():
        parts.append(f"{name}:{_plain_attributes(module)}")
    return "\n".join(parts)


def _probe_copy(backbone: nn.Module, axis: int) -> nn.Module:
    """A float64 copy with positive weights that favour the kernel taps furthest along ``axis`` (-2 or -1)."""
    probe = copy.deepcopy(backbone).to(device="cpu", dtype=torch.float64, memory_format=torch.contiguous_format)
    probe.eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in probe.modules():
            reset = getattr(module, "reset_running_stats", None)
            if callable(reset):  # BatchNorm: trained means could push activations below zero
                reset()
        for param in probe.parameters():
            weights = torch.rand(param.shape, generator=generator, dtype=param.dtype).add_(0.5)
            if param.dim() > 1:
                if param.dim() == 4 and param.shape[axis] > 1:  # a 2-D kernel: favour its edge rows/columns
                    inner = [slice(None)] * 4
                    inner[axis] = slice(1, param.shape[axis] - 1)
                    weights[tuple(inner)] *= 1e-3
                weights.mul_(0.1 / weights[0].sum())
            # Vectors (biases, BatchNorm scales and shifts) stay near 1: a bias of 1 against weights
            # that average a tenth of the input keeps every ReLU on, even after zero-mean layers
            # such as DDN's detail layer ``x - guided_filter(x)``.
            param.copy_(weights)
            param.requires_grad_(False)
    return probe


#: Below this fraction of its peak, a gradient that never reaches zero counts as rounding noise.
_NOISE = 1e-12


def _reach(probe: nn.Module, shape: tuple[int, int], axis: int, in_channels: int) -> tuple[int, bool]:
    """How far along ``axis`` the centre output depends on the input, and whether that is the strip's end."""
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(1, in_channels, *shape, generator=generator, dtype=torch.float64).mul_(0.5).add_(0.25)
    x.requires_grad_(True)
    cy, cx = shape[0] // 2, shape[1] // 2
    restored = run_backbone(probe, x).restored
    restored[0, :, cy, cx].sum().backward()
    grad = x.grad[0].abs().sum(0)  # type: ignore[union-attr]
    profile = grad.amax(dim=1 if axis == -2 else 0)  # strongest dependency at each position along the strip
    centre = cy if axis == -2 else cx
    peak = float(profile.max())
    reach = 0
    # Each side of the centre separately: a cumulative sum leaks rounding noise to one side only.
    for side in (profile[:centre].flip(0), profile[centre + 1 :]):
        tail = side[-max(1, len(side) // 4) :]  # the quarter of this side furthest from the centre
        if side[-4:].max() == 0:
            support = side > 0  # exactly local: the field ends where the gradient becomes zero
        elif tail.min() > 0 and tail.max() <= 100 * tail.min() and tail.max() <= _NOISE * peak:
            support = side > 1e3 * tail.max()  # a flat floor of rounding noise, not a decaying field
        else:
            return len(side), True  # the field may go on past the strip's end: try a longer strip
        where = torch.nonzero(support).flatten()
        if where.numel():
            reach = max(reach, int(where.max()) + 1)
    return reach, False


def _measure(backbone: nn.Module, in_channels: int, max_length: int) -> int:
    radius = 0
    for axis in (-2, -1):
        probe = _probe_copy(backbone, axis)
        length, width = 2 * _ALIGN, _NARROW
        while True:
            shape = (length, width) if axis == -2 else (width, length)
            try:
                reach, at_end = _reach(probe, shape, axis, in_channels)
            except RuntimeError:
                if width == _ALIGN:
                    raise
                width = _ALIGN  # e.g. a backbone that downsamples needs a wider strip
                continue
            if not at_end:
                radius = max(radius, reach)
                break
            if length >= max_length:
                raise NonLocalBackboneError(
                    f"{type(backbone).__name__}: an output pixel depends on input pixels at least {reach} pixels "
                    f"away (a {max_length}-pixel probe could not contain its receptive field); it cannot be "
                    "restored tile by tile exactly: restore whole images (no tile option)"
                )
            length *= 2
        del probe
    return radius


def receptive_radius(backbone: nn.Module, *, in_channels: int = 3, max_length: int = 4096) -> int:
    """Receptive radius of ``backbone`` in pixels, measured once per architecture and cached.

    Args:
        backbone: any backbone meeting :mod:`restorekit.models.contract` (it is not modified).
        in_channels: image channels (3: RGB).
        max_length: longest probe strip before the backbone is declared non-local.

    Returns:
        ``r`` such that an output pixel depends only on inputs within ``r`` pixels of it.

    Raises:
        NonLocalBackboneError: the dependency reaches beyond ``max_length // 2`` pixels, or the
            backbone says why tiles cannot be exact (its ``not_tileable`` attribute).
    """
    declared = getattr(backbone, "receptive_radius", None)
    if isinstance(declared, int):  # a backbone may state it (e.g. one too large to probe)
        return declared
    reason = getattr(backbone, "not_tileable", None)
    if reason:  # a field the probe cannot see: a whole-row scan, or pooling on a grid fixed to the corner
        raise NonLocalBackboneError(
            f"{type(backbone).__name__}: {reason}; it cannot be restored tile by tile exactly: "
            "restore whole images (no tile option)"
        )
    key = f"{architecture_key(backbone)}|channels={in_channels}"
    with _lock:
        if key in _cache:
            return _cache[key]
    # The probe differentiates: it must work even when called under inference mode or autocast.
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast("cpu", enabled=False):
        radius = _measure(backbone, in_channels, max_length)
    with _lock:
        _cache[key] = radius
    return radius

