"""CNN operator tables generated from layer lists: ResNet (bottleneck), MobileNetV2
(inverted residual), VGG. Batch norm is folded into the convolutions for inference; identical
layers collapse into one row with a count."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from workloads.config import CNNConfig
from workloads.ops import ELEMENTWISE, MATMUL, REDUCTION, Op, OpTable, Pass

__all__ = ["Conv", "layer_list", "param_count", "macs", "infer_pass", "LAYER_SCHEMAS",
           "layer_rules", "size_rules"]

_WIDTH = dict(low=1, high=100_000, unit="channels")
_STRIDE = dict(low=1, high=64)
_ROW = dict(low=1, high=100_000)


@dataclass
class ResNetStem:
    """The stem: a kernel x kernel convolution, then a max-pool."""

    channels: int = field(default=MISSING, metadata=_WIDTH)
    kernel: int = field(default=MISSING, metadata=dict(low=1, high=31))
    stride: int = field(default=MISSING, metadata=_STRIDE)
    pool_stride: int = field(default=2, metadata=_STRIDE)


@dataclass
class ResNetLayers:
    """Schema of a ResNet's ``layers``: stages are rows [blocks, width, stride]."""

    stem: ResNetStem = MISSING
    expansion: int = field(default=MISSING, metadata=dict(low=1, high=64))
    stages: list[list[int]] = field(default=MISSING, metadata=_ROW)


@dataclass
class MobileNetLayers:
    """Schema of a MobileNetV2's ``layers``: blocks are rows [expansion t, channels c,
    repeats n, stride s]."""

    stem: int = field(default=MISSING, metadata=_WIDTH)
    head: int = field(default=MISSING, metadata=_WIDTH)
    blocks: list[list[int]] = field(default=MISSING, metadata=_ROW)


@dataclass
class VGGLayers:
    """Schema of a VGG's ``layers``: conv widths or 'M' (a 2x2 max-pool), then FC widths."""

    convs: list[Any] = field(default=MISSING, metadata=dict(_WIDTH, whole=True, words=("M",)))
    fcs: list[int] = field(default=MISSING, metadata=_WIDTH)


LAYER_SCHEMAS = {"resnet": ResNetLayers, "mobilenetv2": MobileNetLayers, "vgg": VGGLayers}
_ROWS = {"stages": ("blocks", "width", "stride"),
         "blocks": ("expansion t", "channels c", "repeats n", "stride s")}


def layer_rules(layers: Any, where: str) -> None:
    """Each row of a layer list has its fields, in order; there is at least one."""
    if isinstance(layers, VGGLayers) and all(c == "M" for c in layers.convs):
        raise ValueError(f"{where}.convs = {layers.convs}: allowed: at least one conv width")
    for name, columns in _ROWS.items():
        rows = getattr(layers, name, None)
        if rows is None:
            continue
        if not rows:
            raise ValueError(f"{where}.{name} = []: allowed: at least one row "
                             f"[{', '.join(columns)}]")
        for i, row in enumerate(rows):
            if len(row) != len(columns):
                raise ValueError(f"{where}.{name}[{i}] = {row}: allowed: a row of "
                                 f"{len(columns)} whole numbers [{', '.join(columns)}]")


def size_rules(cfg: CNNConfig, where: str) -> None:
    """The input survives every downsampling: each layer sees at least one pixel and
    channel, and some convolution sees more than one pixel (the pooled feature map)."""
    convs = layer_list(cfg)[0]
    if min(min(c.size_in, c.c_in) for c in convs) < 1 or all(c.size_in <= 1 for c in convs):
        raise ValueError(f"{where}.input_size = {cfg.input_size}: too small for the "
                         f"network's downsampling; allowed: a larger image")


@dataclass(frozen=True)
class Conv:
    """A convolution (or, with ``size_in == 1`` and kernel 1, a fully connected layer)."""

    size_in: int  # input height = width
    c_in: int
    c_out: int
    kernel: int
    stride: int = 1
    groups: int = 1
    bias: bool = False  # a bias of its own (VGG, FC); folded-BN convs count BN instead
    bn: bool = True  # followed by batch norm (2 learnable parameters per channel)

    @property
    def size_out(self) -> int:
        return -(-self.size_in // self.stride)  # 'same' padding

    @property
    def weight_elems(self) -> int:
        return self.c_out * (self.c_in // self.groups) * self.kernel**2

    @property
    def params(self) -> int:
        bias = self.c_out if self.bias else 0
        return self.weight_elems + bias + (2 * self.c_out if self.bn else 0)

    @property
    def macs(self) -> int:
        return self.size_out**2 * self.weight_elems


def _resnet(cfg: CNNConfig) -> tuple[list[Conv], list[bool]]:
    """Bottleneck ResNet (He et al. 2016, ResNet v1.5: stride on the 3x3)."""
    spec = cfg.layers
    stem = spec["stem"]
    size = cfg.input_size
    convs = [Conv(size, cfg.in_channels, stem["channels"], stem["kernel"], stem["stride"])]
    size = -(-size // stem["stride"]) // stem.get("pool_stride", 2)
    c_in, expansion = stem["channels"], spec["expansion"]
    ends = [False]
    for blocks, width, stride in spec["stages"]:
        for b in range(blocks):
            s = stride if b == 0 else 1
            c_out = width * expansion
            block = [Conv(size, c_in, width, 1), Conv(size, width, width, 3, s),
                     Conv(-(-size // s), width, c_out, 1)]
            if b == 0:
                block.append(Conv(size, c_in, c_out, 1, s))
            convs += block
            ends += [False] * (len(block) - 1) + [True]  # the block ends in the residual add
            size, c_in = -(-size // s), c_out
    convs.append(Conv(1, c_in, cfg.num_classes, 1, bias=True, bn=False))
    return convs, ends + [False]


def _mobilenetv2(cfg: CNNConfig) -> tuple[list[Conv], list[bool]]:
    """MobileNetV2 (Sandler et al. 2018, Table 2): rows of (t, c, n, s)."""
    spec = cfg.layers
    size = -(-cfg.input_size // 2)
    convs = [Conv(cfg.input_size, cfg.in_channels, spec["stem"], 3, 2)]
    c_in, ends = spec["stem"], [False]
    for t, c, n, s in spec["blocks"]:
        for i in range(n):
            stride, hidden = (s if i == 0 else 1), c_in * t
            if t != 1:
                convs.append(Conv(size, c_in, hidden, 1))
                ends.append(False)
            convs.append(Conv(size, hidden, hidden, 3, stride, groups=hidden))
            size = -(-size // stride)
            convs.append(Conv(size, hidden, c, 1))
            ends += [False, stride == 1 and c_in == c]  # identity shortcut: residual add
            c_in = c
    convs.append(Conv(size, c_in, spec["head"], 1))
    convs.append(Conv(1, spec["head"], cfg.num_classes, 1, bias=True, bn=False))
    return convs, ends + [False, False]


def _vgg(cfg: CNNConfig) -> tuple[list[Conv], list[bool]]:
    """VGG (Simonyan & Zisserman 2015, configuration D = VGG-16): 'M' is a 2x2 max-pool."""
    spec = cfg.layers
    size, c_in, convs = cfg.input_size, cfg.in_channels, []
    for item in spec["convs"]:
        if item == "M":
            size //= 2
            continue
        convs.append(Conv(size, c_in, int(item), 3, bias=True, bn=False))
        c_in = int(item)
    features = c_in * size * size
    for width in [*spec["fcs"], cfg.num_classes]:
        convs.append(Conv(1, features, width, 1, bias=True, bn=False))
        features = width
    return convs, [False] * len(convs)


_BUILDERS = {"resnet": _resnet, "mobilenetv2": _mobilenetv2, "vgg": _vgg}


def layer_list(cfg: CNNConfig) -> tuple[list[Conv], list[bool]]:
    """(convolutions in order, whether a residual add follows each one)."""
    if cfg.arch not in _BUILDERS:
        raise ValueError(
            f"workload.arch: unknown CNN arch {cfg.arch!r}; allowed: {', '.join(_BUILDERS)}"
        )
    return _BUILDERS[cfg.arch](cfg)


def param_count(cfg: CNNConfig) -> float:
    return float(sum(c.params for c in layer_list(cfg)[0]))


def macs(cfg: CNNConfig) -> float:
    """Multiply-accumulates of one image (convolutions and FC layers)."""
    return float(sum(c.macs for c in layer_list(cfg)[0]))


def _conv_op(conv: Conv, count: int, residual: bool) -> Op:
    """A convolution as an im2col matrix product, its epilogue fused as inference compilers
    do (TensorRT developer guide, "Layer Fusion" catalog: convolution + ReLU, convolution +
    scale (folded batch norm), element-wise sum as the convolution's epilogue; docs.nvidia.com/
    deeplearning/tensorrt/latest/performance/fusion-catalog.html): batch norm is folded into
    the weights and bias, the activation is applied before the store, and a residual add
    costs one more input read and the add's FLOP, none a memory round trip of its own."""
    m = conv.size_out**2
    out = m * conv.c_out
    return Op(f"conv{conv.kernel}x{conv.kernel}_{conv.c_in}to{conv.c_out}"
              + (f"_g{conv.groups}" if conv.groups > 1 else "") + f"_s{conv.size_out}"
              + ("_add" if residual else ""),
              MATMUL, count=count, flop=2.0 * conv.macs + (out if residual else 0), m=m,
              k=conv.c_in // conv.groups * conv.kernel**2, n=conv.c_out,
              weight_elems=conv.weight_elems,
              act_in_elems=conv.size_in**2 * conv.c_in + (out if residual else 0),
              act_out_elems=out, sparse=True)


def _unfused_ops(conv: Conv, count: int, residual: bool) -> list[Op]:
    """A convolution with its epilogue as separate kernels (an eager framework): the conv
    stores its output; batch norm (2 FLOP an element: scale, shift), the activation (1) and
    a residual add (1) each read and write it again. Every batch-normed convolution counts
    one activation (ResNet-50: 53 batch norms, 49 ReLUs)."""
    out = conv.size_out**2 * conv.c_out
    name = f"conv{conv.kernel}x{conv.kernel}_{conv.c_in}to{conv.c_out}_s{conv.size_out}"
    ops = [dataclasses.replace(_conv_op(conv, count, False), name=name)]
    if conv.bn:
        ops += [Op(f"{name}_bn", ELEMENTWISE, count=count, flop=2.0 * out, act_in_elems=out,
                   act_out_elems=out),
                Op(f"{name}_act", ELEMENTWISE, count=count, flop=out, act_in_elems=out,
                   act_out_elems=out)]
    if residual:
        ops.append(Op(f"{name}_add", ELEMENTWISE, count=count, flop=out,
                      act_in_elems=2.0 * out, act_out_elems=out))
    return ops


def infer_pass(cfg: CNNConfig) -> Pass:
    """One forward pass of one image; identical layers collapse into counted rows."""
    convs, residual = layer_list(cfg)
    rows = Counter(zip(convs, residual, strict=True)).items()
    if getattr(cfg, "fuse_epilogues", True):
        ops = [_conv_op(conv, n, res) for (conv, res), n in rows]
    else:
        ops = [op for (conv, res), n in rows for op in _unfused_ops(conv, n, res)]
    last = [c for c in convs if c.size_in > 1][-1]
    ops.append(Op("global_pool", REDUCTION, flop=last.size_out**2 * last.c_out,
                  act_in_elems=last.size_out**2 * last.c_out, act_out_elems=last.c_out,
                  reduce_len=last.size_out**2, tp_split=False))
    peak = max(op.act_in_elems + op.act_out_elems for op in ops)
    return Pass("infer", OpTable.from_ops(ops), 1.0, peak, p2p_elems=peak / 2.0)
