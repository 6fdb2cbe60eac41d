"""ONNX export of the slak operators as standard nodes: each branch is a depthwise Conv (group = C, pads kh//2, kw//2)
of the masked weight (Mul(w, mask), which constant folding turns into one initializer), the branches summed with Add.
Any ONNX runtime runs the result; it never contains a custom domain or a constant in place of the computation."""
from torch.onnx import register_custom_op_symbolic
from torch.onnx import symbolic_helper as sym

_OPSET = 9  # Conv, Mul and Add as used here exist from opset 1; registered for 9 and later.


def _branch(g, x, w, m):
    sizes = sym._get_tensor_sizes(w)
    if sizes is None or len(sizes) != 4 or any(s is None for s in sizes):
        raise RuntimeError("slak ONNX export: the weight's shape must be known (C, 1, kh, kw) when exporting, got "
                           f"{sizes}")
    c, _, kh, kw = sizes
    if not sym._is_none(m):
        w = g.op("Mul", w, m)
    return g.op("Conv", x, w, group_i=c, kernel_shape_i=[kh, kw], pads_i=[kh // 2, kw // 2, kh // 2, kw // 2],
                strides_i=[1, 1], dilations_i=[1, 1])


def _decomposed(g, x, w_long, w_wide, w_small, m_long, m_wide, m_small, masked_grad=None):
    out = None
    for w, m in ((w_long, m_long), (w_wide, m_wide), (w_small, m_small)):
        if sym._is_none(w):
            continue
        y = _branch(g, x, w, m)
        out = y if out is None else g.op("Add", out, y)
    return out


def _single(g, x, w, mask, masked_grad=None):
    return _branch(g, x, w, mask)


register_custom_op_symbolic("slak::decomposed_dwconv2d", _decomposed, _OPSET)
register_custom_op_symbolic("slak::dwconv2d", _single, _OPSET)
