"""DnCNN, the denoising convolutional network of Zhang et al. ("Beyond a Gaussian denoiser:
residual learning of deep CNN for image denoising", IEEE TIP 2017), "dncnn".

A plain stack of 3×3 convolutions that predicts the **noise** (residual learning), so the
denoised image is ``x - f(x)``, which is restorekit's backbone contract as it stands::

    h = ReLU(conv(x))                        # image channels -> 64, with bias
    (depth - 2) x:  h = ReLU(BN(conv(h)))    # 64 -> 64, no bias (BatchNorm's shift is the bias)
    residual = conv(h)                       # 64 -> image channels, no bias, no activation

Variants in the paper (§IV-A): DnCNN-S, depth 17, trained for one known noise level; DnCNN-B,
depth 20, one blind model for σ in [0, 55]; CDnCNN-B, the colour version of DnCNN-B (3 image
channels). ``dncnn_s`` and ``cdncnn_b`` build them for colour images (restorekit's images
are RGB; the paper's DnCNN-S is grey, ``in_channels=1`` builds that one).

Parameter count (``param_convention = "trainable"``: weights, biases and BatchNorm's scale and
shift; the running means and variances are not parameters and are not counted). Biases: the
first convolution has one, the BatchNorm-followed ones do not (BatchNorm's shift takes its
place) and neither has the last, as the authors' PyTorch training code builds the network.
With ``c`` image channels, 64 features and depth ``d``::

    first   3·3·c·64 + 64
    middle  (d - 2) · (3·3·64·64 + 2·64)
    last    3·3·64·c

which gives 556,096 for the grey DnCNN-S (d = 17, c = 1), 558,400 for its colour version and
669,376 for CDnCNN-B (d = 20, c = 3). Counting the BatchNorm running statistics too adds
``(d - 2) · 2 · 64``.

Initialisation is He's (the paper's §III-C), BatchNorm scale 1 and shift 0. ``head_init``
``zero`` starts the residual at exactly 0 (the network returns its input), which short CPU
runs may prefer; ``kaiming`` (the paper's) starts it at the noise-like output of a random net.

BatchNorm in the ``dt`` method: the network is applied twice per step in training mode, to the
noisy batch and to the hard batch ``C + g(R)``; each pass is normalised by its own batch's
statistics and both update the running statistics, which ``eval()`` then uses (see
:mod:`restorekit.models.ddn`, whose notes apply here unchanged). ``batch_norm=False`` drops
BatchNorm altogether (the middle convolutions then get biases).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from ..registries import BACKBONES
from .contract import check_sizes

__all__ = ["DnCNN", "dncnn_s", "cdncnn_b", "dncnn_parameters"]


def dncnn_parameters(depth: int, image_channels: int = 3, features: int = 64, *, bn_stats: bool = False) -> int:
    """The parameter count of the layer list above (the published network's, by formula)."""
    first = 9 * image_channels * features + features
    middle = (depth - 2) * (9 * features * features + 2 * features)
    last = 9 * features * image_channels
    stats = (depth - 2) * 2 * features if bn_stats else 0
    return first + middle + last + stats


@BACKBONES.register("dncnn")
class DnCNN(nn.Module):
    """DnCNN: ``depth`` 3×3 convolutions predicting the noise residual (``restored = x - residual``).

    Args:
        in_channels: image channels (3 for RGB, 1 for the paper's grey models).
        features: feature width (64 in the paper).
        depth: number of convolutions (17 for DnCNN-S, 20 for DnCNN-B and CDnCNN-B).
        batch_norm: BatchNorm after every middle convolution (the paper's); without it the
            middle convolutions carry biases.
        bn_momentum: PyTorch BatchNorm momentum of the running statistics.
        head_init: ``"kaiming"`` (the paper's He initialisation everywhere) or ``"zero"``:
            the last convolution starts at 0, so the residual does too.
    """

    default_loss = "mse"  # the paper's: the mean squared error of the residual, i.e. of the restored image
    param_convention = "trainable"

    def __init__(
        self,
        in_channels: int = 3,
        features: int = 64,
        depth: int = 17,
        batch_norm: bool = True,
        bn_momentum: float = 0.1,
        head_init: Literal["kaiming", "zero"] = "kaiming",
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"dncnn depth must be >= 2 (a first and a last convolution), got {depth}")
        check_sizes("dncnn", in_channels=in_channels, features=features)
        if head_init not in ("kaiming", "zero"):
            raise ValueError(f"dncnn head_init must be 'kaiming' or 'zero', got {head_init!r}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, features, 3, padding=1, bias=True), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(features, features, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(features, momentum=bn_momentum))
            layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(features, in_channels, 3, padding=1, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if head_init == "zero":
            nn.init.zeros_(self.head.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


@BACKBONES.register("dncnn_s")
def dncnn_s(in_channels: int = 3, features: int = 64, depth: int = 17, **kwargs: object) -> DnCNN:
    """DnCNN-S: 17 layers, one model per known noise level (558,400 parameters in colour, 556,096 grey)."""
    return DnCNN(in_channels, features, depth, **kwargs)  # type: ignore[arg-type]


@BACKBONES.register("cdncnn_b")
def cdncnn_b(in_channels: int = 3, features: int = 64, depth: int = 20, **kwargs: object) -> DnCNN:
    """CDnCNN-B: 20 layers, colour, one blind model for every noise level (669,376 parameters)."""
    return DnCNN(in_channels, features, depth, **kwargs)  # type: ignore[arg-type]
