"""One rewrite per ViT part: which of our ops replace a matched op sequence, with
which precomputed integer parameters, and the NumPy reference that the op's output
in the interpreter must equal bit for bit.

Every builder takes the model (model_editor objects) and returns NewOps; each NewOp
is anchored at the last original op it stands for, so inserting it there keeps the
operator list in dependency order. A builder that cannot map what it sees raises
Unmappable with the reason (the converter then leaves those ops as they are)."""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tflm_vit.converters import model_io as mio
from tflm_vit.twins import attention as att
from tflm_vit.twins.fixed_point import dequantize, quantize, quantize_multipliers
from tflm_vit.twins import gelu as gl
from tflm_vit.twins import layernorm as ln
from tflm_vit.twins import linear as lin
from tflm_vit.twins import mlp as mlp_ops
from tflm_vit.twins import options
from tflm_vit.twins import patch_embed as pe

CUSTOM = schema.BuiltinOperator.CUSTOM


class Unmappable(Exception):
    """A matched sequence the converter cannot express with our ops (the reason)."""


@dataclasses.dataclass
class NewOp:
    custom_code: str
    inputs: list  # me.Tensor or None (absent optional input)
    output: me.Tensor
    options: bytes
    anchor: int  # index of the last original op this op stands for
    # Activation inputs (int8, as the interpreter holds them) -> expected output.
    reference: Callable[..., np.ndarray]
    activations: tuple[int, ...] = (0,)  # which inputs are activations, for reference
    stock_output: int | None = None  # the output's tensor index in the original model
    # The activation inputs' tensor indices in the original model, when all are stock
    # tensors: the verification feeds the op the stock model's values there.
    stock_inputs: tuple[int, ...] | None = None
    # Activation inputs -> float-then-quantise output, for ops with a float definition
    # to hold them to (LayerNorm, GELU): the fidelity measurements use it.
    float_reference: Callable[..., np.ndarray] | None = None
    # What the rewrite read off the stock graph (LayerNorm: gamma, beta, eps), so it can
    # be checked against the model's source weights: the float reference reuses these,
    # so a wrong extraction would otherwise cancel out.
    extracted: dict | None = None

    def operator(self) -> me.Operator:
        op = me.Operator(opcode=CUSTOM, custom_code=self.custom_code, inputs=self.inputs,
                         outputs=[self.output])
        mio.set_custom_options(op, self.options)
        return op


@dataclasses.dataclass(frozen=True)
class Settings:
    fuse_mlp: bool = True
    gelu: str = "table"  # "table" (exact) or "shift" (MCUFormer-style approximation)
    sqrt_iterations: int = ln.DEFAULT_SQRT_ITERATIONS
    # The patch embedding may write its tokens over the image (TFLM's input tensor is
    # then consumed by inference); False keeps the image intact.
    overwrite_image: bool = True


class Rewriter:
    def __init__(self, model: me.Model, settings: Settings):
        self.model = model
        self.sg = model.subgraphs[0]
        self.ops = self.sg.operators
        self.settings = settings

    # -- helpers ---------------------------------------------------------------
    def t(self, op_index: int, slot: int, output=False) -> me.Tensor:
        op = self.ops[op_index]
        return (op.outputs if output else op.inputs)[slot]

    def _fc_stage(self, i: int, what: str) -> tuple[lin.Stage, me.Tensor, me.Tensor | None]:
        op = self.ops[i]
        if op.opcode != schema.BuiltinOperator.FULLY_CONNECTED:
            raise Unmappable(f"op {i} is {op.opcode_name}, expected FULLY_CONNECTED")
        opts = mio.builtin_options(op)
        if opts is not None and opts.fusedActivationFunction != 0:
            raise Unmappable(f"FULLY_CONNECTED op {i} has a fused activation")
        x, w = op.inputs[0], op.inputs[1]
        b = op.inputs[2] if len(op.inputs) > 2 else None
        if w.dtype != mio.INT8 or x.dtype != mio.INT8 or (b is not None and b.dtype != mio.INT32):
            raise Unmappable(f"FULLY_CONNECTED op {i} is not int8 with int32 bias")
        if not mio.is_constant(w) or (b is not None and not mio.is_constant(b)):
            raise Unmappable(f"FULLY_CONNECTED op {i} has non-constant weights")
        wq = mio.const(w)
        sx, zx = mio.quant(x, what)
        sy, zy = mio.quant(op.outputs[0], what)
        stage = lin.make_stage(wq, mio.const(b), sx, zx, mio.channel_scales(w, wq.shape[0]), sy, zy)
        return stage, w, b

    def _float_stage(self, i: int):
        """(W, b) of FULLY_CONNECTED op i in real units."""
        op = self.ops[i]
        w = op.inputs[1]
        b = op.inputs[2] if len(op.inputs) > 2 else None
        wf = mio.dequantized_const(w)
        sx = mio.quant(op.inputs[0], "linear")[0]
        bf = None if b is None else \
            mio.const(b) * sx * mio.channel_scales(w, wf.shape[0])
        return wf, bf

    def _requant(self, name: str, stage_or_table) -> me.Tensor:
        table = stage_or_table.requant_table() if hasattr(stage_or_table, "requant_table") \
            else stage_or_table
        return mio.new_const(name, table)

    @staticmethod
    def _tokens(t: me.Tensor, features: int) -> int:
        n = int(np.prod(t.shape))
        if features <= 0 or n % features:
            raise Unmappable(f"tensor '{mio.tensor_name(t)}' does not split into rows of {features}")
        return n // features

    # -- linear ----------------------------------------------------------------
    def linear(self, i: int, name: str) -> NewOp:
        stage, w, b = self._fc_stage(i, f"linear op {i}")
        x, y = self.t(i, 0), self.t(i, 0, output=True)
        tokens = self._tokens(x, stage.in_features)
        blob = options.pack("TV_LINEAR", dict(
            tokens=tokens, in_features=stage.in_features, out_features=stage.out_features,
            input_offset=stage.input_offset, output_offset=stage.output_offset))
        (sx, zx), (sy, zy) = mio.quant(x, "linear"), mio.quant(y, "linear")
        wf, bf = self._float_stage(i)
        return NewOp("TV_LINEAR", [x, w, self._requant(f"{name}/requant", stage), b], y, blob, i,
                     lambda a: lin.linear_ref(a.reshape(tokens, -1), stage),
                     float_reference=lambda a: quantize(lin.linear_float(
                         dequantize(a.reshape(tokens, -1), sx, zx), wf, bf), sy, zy))

    def low_rank_linear(self, i: int, j: int, name: str) -> NewOp:
        u, wu, bu = self._fc_stage(i, f"low-rank linear op {i}")
        v, wv, bv = self._fc_stage(j, f"low-rank linear op {j}")
        x, y = self.t(i, 0), self.t(j, 0, output=True)
        tokens = self._tokens(x, u.in_features)
        blob = options.pack("TV_LOW_RANK_LINEAR", dict(
            tokens=tokens, in_features=u.in_features, rank=u.out_features,
            out_features=v.out_features, input_offset=u.input_offset,
            mid_zero_point=u.output_offset, output_offset=v.output_offset))
        inputs = [x, wu, self._requant(f"{name}/u_requant", u), bu, wv,
                  self._requant(f"{name}/v_requant", v), bv]
        return NewOp("TV_LOW_RANK_LINEAR", inputs, y, blob, j,
                     lambda a: lin.low_rank_linear_ref(a.reshape(tokens, -1), u, v))

    # -- layernorm ---------------------------------------------------------------
    def layernorm(self, match, name: str) -> NewOp:
        x = self.sg.tensors[match.input]
        y = self.sg.tensors[match.output]
        d = int(x.shape[-1])
        gamma, beta, eps = np.ones(d), None, None
        affine = [i for role, i in match.roles if role == "affine"]  # after the rest
        for i in [i for i in match.ops if i not in affine] + affine:
            op = self.ops[i]
            consts = [t for t in op.inputs if mio.is_constant(t)]
            if not consts:
                continue
            value = mio.dequantized_const(consts[0]).ravel()
            code = op.opcode
            if code == schema.BuiltinOperator.ADD and value.size == 1 and eps is None:
                eps = float(value[0])  # ADD(variance, eps): the first scalar ADD
            elif code == schema.BuiltinOperator.MUL and value.size in (1, d):
                gamma = gamma * value
                if i in affine and beta is not None:  # (n g + b) v = n (g v) + b v
                    beta = beta * value
            elif code == schema.BuiltinOperator.ADD and value.size == d:
                beta = value if beta is None else beta + value
            elif code == schema.BuiltinOperator.SUB and value.size in (1, d):
                # c - mean * r (PyTorch's exports: c is beta, 0 without one), or t - c
                part = (1.0 if op.inputs[0] is consts[0] else -1.0) * np.broadcast_to(
                    value, (d,))
                beta = part if beta is None else beta + part
            elif code not in (schema.BuiltinOperator.MEAN, schema.BuiltinOperator.RESHAPE):
                raise Unmappable(f"LayerNorm op {i} ({op.opcode_name}) has an unexpected "
                                 f"constant of {value.size} values")
        if eps is None:
            raise Unmappable("LayerNorm without an epsilon ADD")
        sx, _ = mio.quant(x, "LayerNorm input")
        sy, zy = mio.quant(y, "LayerNorm output")
        try:
            p = ln.make_layernorm(gamma, beta, eps, sx, sy, zy, self.settings.sqrt_iterations)
        except ValueError as e:
            raise Unmappable(str(e)) from e
        tokens = self._tokens(x, d)
        lo, hi = options.split_int64(p.eps_term)
        blob = options.pack("TV_LAYERNORM", dict(
            tokens=tokens, channels=d, output_zero_point=p.output_zero_point, eps_lo=lo,
            eps_hi=hi, sqrt_iterations=p.sqrt_iterations))
        inputs = [x, self._requant(f"{name}/requant", p.requant_table()),
                  mio.new_const(f"{name}/bias", p.bias)]
        zx = mio.quant(x, "LayerNorm input")[1]
        return NewOp("TV_LAYERNORM", inputs, y, blob, max(match.ops),
                     lambda a: ln.layernorm_ref(a.reshape(tokens, d), p),
                     float_reference=lambda a: ln.layernorm_float_then_quantize(
                         a.reshape(tokens, d), sx, zx, gamma, beta, eps, sy, zy),
                     extracted={"gamma": gamma, "beta": np.zeros(d) if beta is None else beta,
                                "eps": eps})

    # -- gelu --------------------------------------------------------------------
    def gelu_quant(self, match):
        x, y = self.sg.tensors[match.input], self.sg.tensors[match.output]
        return x, y, mio.quant(x, "GELU input"), mio.quant(y, "GELU output")

    def gelu_approximate(self, match) -> bool:
        """Whether the matched GELU is the tanh form: TFLite's builtin GELU op says so in
        its options; x * sigmoid(1.702 x) (our export) is held to the exact GELU."""
        roles = dict(match.roles)
        if "builtin" not in roles:
            return False
        opts = mio.builtin_options(self.ops[roles["builtin"]])
        return bool(opts is not None and opts.approximate)

    def gelu(self, match, name: str) -> NewOp:
        x, y, (sx, zx), (sy, zy) = self.gelu_quant(match)
        # float-then-quantise, entry by entry
        exact = gl.gelu_table(sx, zx, sy, zy, self.gelu_approximate(match))
        float_ref = lambda a: gl.lut_ref(a, exact).reshape(-1)  # noqa: E731
        if self.settings.gelu == "shift":
            p = gl.make_gelu_shift(sx, zx, sy, zy)
            blob = options.pack("TV_GELU", dict(
                mode=options.GELU_MODE_SHIFT, input_zero_point=zx, output_zero_point=zy,
                q16_multiplier=p.to_q16[0], q16_shift=p.to_q16[1], out_multiplier=p.to_out[0],
                out_shift=p.to_out[1]))
            return NewOp("TV_GELU", [x], y, blob, max(match.ops),
                         lambda a: gl.gelu_shift_ref(a, p).reshape(-1),
                         float_reference=float_ref)
        table = exact
        blob = options.pack("TV_GELU", dict(
            mode=options.GELU_MODE_TABLE, input_zero_point=zx, output_zero_point=zy,
            q16_multiplier=0, q16_shift=0, out_multiplier=0, out_shift=0))
        return NewOp("TV_GELU", [x, mio.new_const(f"{name}/table", table)], y, blob,
                     max(match.ops), lambda a: gl.lut_ref(a, table).reshape(-1),
                     float_reference=float_ref)

    # -- fused MLP -----------------------------------------------------------------
    def mlp(self, up_ops: list[int], gelu_match, down_ops: list[int], name: str) -> NewOp:
        up = [self._fc_stage(i, f"MLP op {i}") for i in up_ops]
        down = [self._fc_stage(i, f"MLP op {i}") for i in down_ops]
        _, _, (sx, zx), (sy, zy) = self.gelu_quant(gelu_match)
        approximate = self.gelu_approximate(gelu_match)
        table = gl.gelu_table(sx, zx, sy, zy, approximate)
        x, y = self.t(up_ops[0], 0), self.t(down_ops[-1], 0, output=True)
        stages = [s for s, _, _ in up + down]
        tokens = self._tokens(x, stages[0].in_features)
        fields = dict(tokens=tokens, up_count=len(up), down_count=len(down))
        inputs = [x, mio.new_const(f"{name}/gelu_table", table)]
        for k, (s, w, b) in enumerate(up + down):
            fields.update({f"stage{k}_in": s.in_features, f"stage{k}_out": s.out_features,
                           f"stage{k}_input_offset": s.input_offset,
                           f"stage{k}_output_offset": s.output_offset})
            inputs += [w, self._requant(f"{name}/stage{k}_requant", s), b]
        blob = options.pack("TV_MLP", fields)
        ups, downs = stages[:len(up)], stages[len(up):]
        floats = [self._float_stage(i) for i in up_ops + down_ops]
        (sx_in, zx_in), (sy_out, zy_out) = mio.quant(x, "MLP"), mio.quant(y, "MLP")

        def float_ref(a):
            h = dequantize(a.reshape(tokens, -1), sx_in, zx_in)
            for k, (wf, bf) in enumerate(floats):
                h = lin.linear_float(h, wf, bf)
                if k == len(up) - 1:
                    h = gl.gelu_float(h, approximate)
            return quantize(h, sy_out, zy_out)
        return NewOp("TV_MLP", inputs, y, blob, max(down_ops),
                     lambda a: mlp_ops.mlp_ref(a.reshape(tokens, -1), ups, table, downs),
                     float_reference=float_ref)

    # -- attention -------------------------------------------------------------------
    def attention(self, match, name: str) -> list[NewOp]:
        """Q/K/V and output projections become TV_LINEARs; scores, softmax and the
        weighted sum of V (with the layout ops between) become one TV_ATTENTION."""
        branches = dict(match.roles)
        q_op, k_op, v_op = self.linear(branches["q"], f"{name}/q"), \
            self.linear(branches["k"], f"{name}/k"), self.linear(branches["v"], f"{name}/v")
        scores = self.t(branches["qk"], 0, output=True)
        # (.., H, Tq, Tk): 4-D from our export and Keras, (H, Tq, Tk) from PyTorch's
        heads = int(scores.shape[-3]) if len(scores.shape) >= 3 else 1
        scale = 1.0  # Keras' MultiHeadAttention folds 1/sqrt(d) into the query projection
        for i in (i for role, i in match.roles if role == "scale"):  # PyTorch: q's and k's
            consts = [t for t in self.ops[i].inputs if mio.is_constant(t)]
            if len(consts) != 1 or mio.const(consts[0]).size != 1:
                raise Unmappable("attention scale is not one scalar constant")
            scale *= float(mio.dequantized_const(consts[0]).ravel()[0])
        qt, kt, vt = q_op.output, k_op.output, v_op.output
        ctx = self.t(branches["proj"], 0)
        width = int(qt.shape[-1])
        if width % heads:
            raise Unmappable(f"width {width} does not split into {heads} heads")
        tokens = self._tokens(qt, width)
        p = att.make_attention(heads, mio.quant(qt, "q"), mio.quant(kt, "k"), mio.quant(vt, "v"),
                               scale, mio.quant(ctx, "attention output"))
        blob = options.pack("TV_ATTENTION", dict(
            tokens=tokens, heads=heads, head_dim=width // heads, q_offset=p.q_offset,
            k_offset=p.k_offset, v_offset=p.v_offset, score_multiplier=p.score_to_q16[0],
            score_shift=p.score_to_q16[1], out_multiplier=p.out_multiplier[0],
            out_shift=p.out_multiplier[1], output_offset=p.output_offset))
        anchor = max(i for i in match.ops if i != branches["proj"])
        quants = [mio.quant(t, "attention") for t in (qt, kt, vt, ctx)]

        def float_ref(q, k, v):
            real = [dequantize(a.reshape(tokens, width), *qz) for a, qz in zip((q, k, v), quants)]
            return quantize(att.attention_float(*real, heads, scale), *quants[3])
        fused = NewOp("TV_ATTENTION", [qt, kt, vt], ctx, blob, anchor,
                      lambda q, k, v: att.attention_ref(q.reshape(tokens, width),
                                                        k.reshape(tokens, width),
                                                        v.reshape(tokens, width), p),
                      activations=(0, 1, 2), float_reference=float_ref)
        return [q_op, k_op, v_op, fused, self.linear(branches["proj"], f"{name}/proj")]

    # -- patch embedding -----------------------------------------------------------------
    def patch_embedding(self, match, name: str) -> NewOp:
        conv, reshape = match.ops[0], match.ops[1]
        op = self.ops[conv]
        o = mio.builtin_options(op)
        image, w = op.inputs[0], op.inputs[1]
        b = op.inputs[2] if len(op.inputs) > 2 else None
        wq = mio.const(w)  # [D, P, P, C]
        d, p_h, p_w, c = wq.shape
        if (p_h != p_w or o.strideH != p_h or o.strideW != p_w or o.padding != schema.Padding.VALID
                or o.dilationHFactor != 1 or o.dilationWFactor != 1
                or o.fusedActivationFunction != 0):
            raise Unmappable(f"CONV_2D op {conv} is not a patch embedding (kernel = stride, "
                             "valid padding, no dilation or activation)")
        _, h, wd, cin = image.shape
        if cin != c or h % p_h or wd % p_w:
            raise Unmappable(f"CONV_2D op {conv}: image {image.shape} does not tile into "
                             f"{p_h}x{p_w} patches")
        sx, zx = mio.quant(image, "patch embedding input")
        y = self.t(reshape, 0, output=True)
        sy, zy = mio.quant(y, "patch embedding output")

        mult, shift = quantize_multipliers(sx * mio.channel_scales(w, d) / sy)
        split, lead = pe.overwrite_layout(h, wd, c, p_h, d)
        if not self.settings.overwrite_image:
            split, lead = 0, pe.NO_OVERWRITE
        bias = mio.const(b)
        blob = options.pack("TV_PATCH_EMBED", dict(
            height=h, width=wd, in_channels=c, patch=p_h, out_channels=d,
            first_band_split=split, output_lead=lead, input_offset=-zx, output_offset=zy))
        table = np.stack([mult, shift]).astype(np.int32)
        return NewOp("TV_PATCH_EMBED", [image, w, mio.new_const(f"{name}/requant", table), b], y,
                     blob, reshape,
                     lambda a: pe.patch_embed_ref(a.reshape(h, wd, c), wq, bias, mult, shift,
                                                  -zx, zy))
