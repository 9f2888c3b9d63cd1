"""DID-MDN, the density-aware multi-stream dense network of Zhang and Patel ("Density-aware
Single Image De-raining using a Multi-stream Dense Network", CVPR 2018), "didmdn".

Three densely connected encoder-decoder streams with 3×3, 5×5 and 7×7 kernels see the rainy
image at different scales; their features, the image and a map of the rain-density label
(0 heavy, 1 medium, 2 light) are fused, a pyramid of average poolings adds context, and the
network estimates the rain; a small refinement of ``image - rain`` is the clean image::

    s_k = Stream_k(O)              k = 3, 5, 7     # 12 channels each, full resolution
    F = LReLU(conv3x3(concat[s_3, O, s_5, s_7, label x 8]))          # 47 -> 47
    P = concat[up(LReLU(conv1x1(avgpool_p(F)))) for p = 32, 16, 8, 4]   # 2 channels each
    R = tanh(conv3x3(concat[P, F]))                                  # 55 -> 3: the rain
    y = tanh(conv3x3(LReLU(conv7x7(O - R))))                         # 3 -> 8 -> 3

A stream is six dense bottleneck blocks (BN-ReLU-conv1×1 to 4g, BN-ReLU-conv k×k to g,
concatenated to the input), each followed by a transition (BN-ReLU-conv1×1, then average
pooling, nearest upsampling or neither), with U-Net-like concatenations, and ends with its
output, five copies of one upsampled side map (the authors apply the same convolution five
times) and the image. The authors work on images in [-1, 1] (``2x - 1``); so does this
module, which maps its input there and its output back to [0, 1].

The density label is an input of the authors' network: in their training it is the true
label of each training image; at test time a separate rain-density classifier (a VGG-19 layer
and a 65M-parameter linear layer on the residual of another network, for 512×512 inputs only)
provides it. Unpaired training (``dt``) has no density labels, so here the classifier is part
of the network: a small head on the three streams' features (conv3×3 36→24, LeakyReLU, global
mean, Linear 24→3; 7,875 parameters) predicts the class, and its most likely class is the
label map, in training as at test. The ``didmdn`` loss trains the head with a cross-entropy
against the class of the known rain of each hard (or supervised) pair: its coverage, the
fraction of pixels with rain. ``density_classifier=False`` feeds a fixed label instead.

Sizes: the deraining network has 365,236 parameters; the authors' module has 372,839, of
which 7,603 sit in layers it builds but never calls (see docs/networks.md). The Rain O'er Me
paper's Table IV gives 135,800, which no part of the authors' code adds up to. Inputs are
padded (replicating the border) to a multiple of 8 and the output cropped; the pooling
pyramid averages windows fixed to the image's corner, so the network is not shift-equivariant
and cannot be restored tile by tile exactly.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registries import BACKBONES

__all__ = ["DIDMDN", "DenseBottleneck", "Transition", "DenseStream", "STREAMS"]

#: The authors' three streams, by kernel size, each six (growth, transition channels, resampling).
STREAMS: dict[int, tuple[tuple[int, int, str], ...]] = {
    3: ((5, 4, "down"), (8, 12, "same"), (4, 12, "same"), (4, 12, "same"), (8, 4, "same"), (8, 4, "up")),
    5: ((13, 8, "down"), (16, 16, "down"), (16, 16, "same"), (16, 16, "same"), (8, 8, "up"), (8, 4, "up")),
    7: ((13, 8, "down"), (16, 16, "down"), (16, 16, "down"), (16, 16, "up"), (8, 8, "up"), (8, 4, "up")),
}
POOLS = (32, 16, 8, 4)
#: Side maps per stream (five copies of one map, as in the authors' code).
SIDE_COPIES = 5


def lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


class DenseBottleneck(nn.Module):
    """``concat[x, conv_kxk(ReLU(BN(conv1x1(ReLU(BN(x))))))]``: adds ``growth`` channels, no biases."""

    def __init__(self, in_ch: int, growth: int, kernel: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            nn.ReLU(),
            nn.Conv2d(in_ch, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth),
            nn.ReLU(),
            nn.Conv2d(4 * growth, growth, kernel, padding=kernel // 2, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.layers(x)], dim=1)


class Transition(nn.Module):
    """``conv1x1(ReLU(BN(x)))`` (no bias), then halve, double or keep the resolution."""

    def __init__(self, in_ch: int, out_ch: int, resample: Literal["down", "up", "same"]) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU(), nn.Conv2d(in_ch, out_ch, 1, bias=False))
        self.resample = resample

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(x)
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x


class DenseStream(nn.Module):
    """One stream: six dense blocks and transitions with two skip concatenations; 12 channels out."""

    def __init__(self, kernel: int, in_ch: int = 3) -> None:
        super().__init__()
        spec = STREAMS[kernel]
        blocks, transitions, channels, outs = [], [], in_ch, []
        for k, (growth, out_ch, resample) in enumerate(spec):
            if k == 4:  # block 5 sees concat[x4, x2], block 6 concat[x5, x1]
                channels += outs[1]
            elif k == 5:
                channels += outs[0]
            blocks.append(DenseBottleneck(channels, growth, kernel))
            transitions.append(Transition(channels + growth, out_ch, resample))  # type: ignore[arg-type]
            channels = out_ch
            outs.append(out_ch)
        self.blocks, self.transitions = nn.ModuleList(blocks), nn.ModuleList(transitions)
        self.side = nn.Conv2d(outs[0], 1, 3, padding=1)
        self.out_channels = outs[-1] + SIDE_COPIES + in_ch

    def forward(self, x: Tensor) -> Tensor:
        f = [x]
        for k, (block, transition) in enumerate(zip(self.blocks, self.transitions)):
            inp = f[-1]
            if k == 4:
                inp = torch.cat([inp, f[2]], dim=1)
            elif k == 5:
                inp = torch.cat([inp, f[1]], dim=1)
            f.append(transition(block(inp)))
        side = F.interpolate(lrelu(self.side(f[1])), size=x.shape[-2:], mode="nearest")
        return torch.cat([f[-1], side.expand(-1, SIDE_COPIES, -1, -1), x], dim=1)


@BACKBONES.register("didmdn")
class DIDMDN(nn.Module):
    """DID-MDN; returns ``{"restored": clean image, "rain": R in [0, 1] units, "density_logits": N×3}``.

    Args:
        in_channels: image channels (3 for RGB).
        density_classifier: predict the density label with the built-in head (True) or feed
            ``density`` to every image (False; no ``density_logits`` output).
        density: the fixed label when there is no classifier: 0 heavy, 1 medium, 2 light.
    """

    default_loss = "didmdn"
    param_convention = "trainable"
    not_tileable = "its pooling pyramid averages 32-pixel windows fixed to the image's corner"

    #: Label-map channels, as in the authors' fusion layer.
    LABEL_CHANNELS = 8
    #: Inputs are padded to a multiple of this (the 7×7 stream halves the resolution three times).
    MULTIPLE = 8

    def __init__(self, in_channels: int = 3, density_classifier: bool = True, density: int = 1) -> None:
        super().__init__()
        if density not in (0, 1, 2):
            raise ValueError(f"didmdn density must be 0 (heavy), 1 (medium) or 2 (light), got {density!r}")
        self.density = density
        self.streams = nn.ModuleList(DenseStream(k, in_channels) for k in STREAMS)
        stream_ch = sum(s.out_channels for s in self.streams)
        fused = stream_ch + in_channels + self.LABEL_CHANNELS
        self.fuse = nn.Conv2d(fused, fused, 3, padding=1)
        self.pools = nn.ModuleList(nn.Conv2d(fused, 2, 1) for _ in POOLS)
        self.rain_head = nn.Conv2d(fused + 2 * len(POOLS), in_channels, 3, padding=1)
        self.refine = nn.Sequential(
            nn.Conv2d(in_channels, 8, 7, padding=3), nn.LeakyReLU(0.2), nn.Conv2d(8, in_channels, 3, padding=1)
        )
        self.classifier = (
            nn.Sequential(nn.Conv2d(stream_ch, 24, 3, padding=1), nn.LeakyReLU(0.2)) if density_classifier else None
        )
        self.classifier_fc = nn.Linear(24, 3) if density_classifier else None

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        h, w = x.shape[-2:]
        image = F.pad(2 * x - 1, (0, -w % self.MULTIPLE, 0, -h % self.MULTIPLE), mode="replicate")
        s3, s5, s7 = (stream(image) for stream in self.streams)
        logits = None
        if self.classifier is not None and self.classifier_fc is not None:
            logits = self.classifier_fc(self.classifier(torch.cat([s3, s5, s7], dim=1)).mean(dim=(2, 3)))
            label = logits.argmax(dim=1).to(image.dtype)  # a hard class, as the authors' network sees
        else:
            label = image.new_full((image.shape[0],), float(self.density))
        label_map = label[:, None, None, None].expand(-1, self.LABEL_CHANNELS, *image.shape[-2:])
        fused = lrelu(self.fuse(torch.cat([s3, image, s5, s7, label_map], dim=1)))
        rows, cols = fused.shape[-2:]
        # Each pixel gets the mean of its own p×p window (windows at the far border are partial).
        pyramid = [
            F.interpolate(lrelu(conv(F.avg_pool2d(fused, p, ceil_mode=True))), scale_factor=float(p))[..., :rows, :cols]
            for p, conv in zip(POOLS, self.pools)
        ]
        rain = torch.tanh(self.rain_head(torch.cat([*pyramid, fused], dim=1)))
        clean = torch.tanh(self.refine(image - rain))
        out = {"restored": (clean[..., :h, :w] + 1) / 2, "rain": rain[..., :h, :w] / 2}
        if logits is not None:
            out["density_logits"] = logits
        return out
