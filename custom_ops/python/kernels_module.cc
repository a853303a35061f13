// tflm_vit._kernels: the portable kernels, callable from Python on NumPy arrays, so
// tests hold them bit for bit against their NumPy references. Every kernel error
// becomes a ValueError naming the op and what is wrong.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" {
#include "tv_attention.h"
#include "tv_exp.h"
#include "tv_fixed_point.h"
#include "tv_op_scratch.h"
#include "tv_gelu.h"
#include "tv_layernorm.h"
#include "tv_linear.h"
#include "tv_mlp.h"
#include "tv_options.h"
#include "tv_patch_embed.h"
#include "tv_softmax.h"
}

#include "options_reader.h"  // custom_ops/tflm: the adapters' own options reader

namespace py = pybind11;

namespace {

template <typename T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;
using I8 = Arr<int8_t>;
using I32 = Arr<int32_t>;

// `what` is passed by address: it is read only after the kernel call has set it.
void Check(tv_status status, const char* op, const char* const* what) {
  if (status != TV_OK) {
    throw std::invalid_argument(std::string(op) + ": " + (*what ? *what : "invalid argument"));
  }
}

void Require(bool cond, const std::string& message) {
  if (!cond) throw std::invalid_argument(message);
}

// Rows of a 2-D int8 activation [tokens][width].
void Need2D(const py::array& a, const char* name) {
  Require(a.ndim() == 2, std::string(name) + " must be 2-D [tokens, features]");
}

// A linear stage from (weights[out][in], bias or None, multipliers, shifts,
// input_offset, output_offset); the arrays are kept alive in `keep`.
tv_linear_stage Stage(const py::tuple& t, std::vector<py::object>& keep) {
  Require(t.size() == 6, "a stage is (weights, bias, multipliers, shifts, input_offset, output_offset)");
  I8 w = t[0].cast<I8>();
  Require(w.ndim() == 2, "stage weights must be 2-D [out, in]");
  I32 m = t[2].cast<I32>(), s = t[3].cast<I32>();
  Require(m.size() == w.shape(0) && s.size() == w.shape(0),
          "stage multipliers/shifts must have one entry per output feature");
  tv_linear_stage st{};
  st.in_features = static_cast<int32_t>(w.shape(1));
  st.out_features = static_cast<int32_t>(w.shape(0));
  st.weights = w.data();
  st.multipliers = m.data();
  st.shifts = s.data();
  st.bias = nullptr;
  if (!t[1].is_none()) {
    I32 b = t[1].cast<I32>();
    Require(b.size() == w.shape(0), "stage bias must have one entry per output feature");
    st.bias = b.data();
    keep.push_back(b);
  }
  st.input_offset = t[4].cast<int32_t>();
  st.output_offset = t[5].cast<int32_t>();
  keep.push_back(w);
  keep.push_back(m);
  keep.push_back(s);
  return st;
}

// Runs a token-wise kernel either into a fresh array or in place: the input is
// copied to the start of a buffer of tokens * max(in, out) bytes and the output is
// written over it, as the planner lays them out for token overwriting.
template <typename Fn>
I8 RunTokens(const I8& x, int32_t out_width, bool in_place, Fn fn) {
  const py::ssize_t tokens = x.shape(0), in_width = x.shape(1);
  I8 out({tokens, static_cast<py::ssize_t>(out_width)});
  if (!in_place) {
    fn(x.data(), out.mutable_data());
    return out;
  }
  std::vector<int8_t> buffer(tokens * std::max<py::ssize_t>(in_width, out_width));
  std::memcpy(buffer.data(), x.data(), tokens * in_width);
  fn(buffer.data(), buffer.data());
  std::memcpy(out.mutable_data(), buffer.data(), tokens * out_width);
  return out;
}

I32 Requantize(const I32& x, int32_t multiplier, int32_t shift) {
  Require(shift >= -31 && shift <= 30, "requantize: shift " + std::to_string(shift) +
                                           " outside [-31, 30]");
  I32 out(x.request().shape);
  const tv_quant_multiplier q{multiplier, shift};
  for (py::ssize_t i = 0; i < x.size(); ++i) out.mutable_data()[i] = tv_requantize(x.data()[i], q);
  return out;
}

py::tuple QuantizeMultiplier(double real) {
  tv_quant_multiplier q;
  Require(tv_quantize_multiplier(real, &q) == TV_OK,
          "quantize_multiplier: real multiplier " + std::to_string(real) +
              " must be finite and in [0, 2^30]");
  return py::make_tuple(q.multiplier, q.shift);
}

py::array_t<uint32_t> IsqrtNewton(const Arr<uint64_t>& x, int iterations) {
  Require(iterations >= 0, "isqrt_newton: iterations must be >= 0");
  py::array_t<uint32_t> out(x.request().shape);
  for (py::ssize_t i = 0; i < x.size(); ++i) {
    out.mutable_data()[i] = tv_isqrt_newton(x.data()[i], iterations);
  }
  return out;
}

I32 ExpQ16ToQ30(const I32& x) {
  I32 out(x.request().shape);
  for (py::ssize_t i = 0; i < x.size(); ++i) out.mutable_data()[i] = tv_exp_q16_to_q30(x.data()[i]);
  return out;
}

I32 SoftmaxRowsQ15(const I32& scores, int32_t multiplier, int32_t shift) {
  Require(scores.ndim() == 2, "softmax: scores must be 2-D [rows, n]");
  I32 out(scores.request().shape);
  std::memcpy(out.mutable_data(), scores.data(), scores.size() * sizeof(int32_t));
  const char* what = nullptr;
  for (py::ssize_t r = 0; r < scores.shape(0); ++r) {
    Check(tv_softmax_row_q15(out.mutable_data() + r * scores.shape(1),
                             static_cast<int32_t>(scores.shape(1)), {multiplier, shift}, &what),
          "softmax", &what);
  }
  return out;
}

I8 Linear(const I8& x, const py::tuple& stage, bool in_place) {
  Need2D(x, "linear: input");
  std::vector<py::object> keep;
  const tv_linear_stage s = Stage(stage, keep);
  Require(x.shape(1) == s.in_features, "linear: input features differ from weights");
  std::vector<int8_t> scratch(tv_linear_scratch_size(&s));
  return RunTokens(x, s.out_features, in_place, [&](const int8_t* in, int8_t* out) {
    const char* what = nullptr;
    Check(tv_linear_s8(&s, static_cast<int32_t>(x.shape(0)), in, out, scratch.data(), &what),
          "linear", &what);
  });
}

I8 LowRankLinear(const I8& x, const py::tuple& u_stage, const py::tuple& v_stage,
                 bool in_place) {
  Need2D(x, "low_rank_linear: input");
  std::vector<py::object> keep;
  const tv_linear_stage u = Stage(u_stage, keep), v = Stage(v_stage, keep);
  Require(x.shape(1) == u.in_features, "low_rank_linear: input features differ from u");
  std::vector<int8_t> scratch(tv_low_rank_linear_scratch_size(&u, &v));
  return RunTokens(x, v.out_features, in_place, [&](const int8_t* in, int8_t* out) {
    const char* what = nullptr;
    Check(tv_low_rank_linear_s8(&u, &v, static_cast<int32_t>(x.shape(0)), in, out,
                                scratch.data(), &what),
          "low_rank_linear", &what);
  });
}

I8 LayerNorm(const I8& x, int32_t output_zero_point, int64_t eps_term, int32_t iterations,
             const I32& multipliers, const I32& shifts, const I32& bias, bool in_place) {
  Need2D(x, "layernorm: input");
  Require(multipliers.size() == x.shape(1) && shifts.size() == x.shape(1) &&
              bias.size() == x.shape(1),
          "layernorm: multipliers, shifts and bias need one entry per channel");
  tv_layernorm_params p{static_cast<int32_t>(x.shape(0)), static_cast<int32_t>(x.shape(1)),
                        output_zero_point, eps_term, iterations, multipliers.data(),
                        shifts.data(), bias.data()};
  return RunTokens(x, p.channels, in_place, [&](const int8_t* in, int8_t* out) {
    const char* what = nullptr;
    Check(tv_layernorm_s8(&p, in, out, &what), "layernorm", &what);
  });
}

I8 Lut(const I8& x, const I8& table) {
  Require(table.size() == 256, "lut: the table must have 256 entries");
  I8 out(x.request().shape);
  const char* what = nullptr;
  Check(tv_lut_s8(table.data(), x.data(), out.mutable_data(), static_cast<int32_t>(x.size()),
                  &what),
        "lut", &what);
  return out;
}

I8 GeluShift(const I8& x, int32_t input_zero_point, int32_t output_zero_point,
             std::pair<int32_t, int32_t> to_q16, std::pair<int32_t, int32_t> to_out) {
  tv_gelu_shift_params p{input_zero_point, output_zero_point, {to_q16.first, to_q16.second},
                         {to_out.first, to_out.second}};
  I8 out(x.request().shape);
  const char* what = nullptr;
  Check(tv_gelu_shift_s8(&p, x.data(), out.mutable_data(), static_cast<int32_t>(x.size()),
                         &what),
        "gelu_shift", &what);
  return out;
}

I8 Attention(const I8& q, const I8& k, const I8& v, int32_t heads,
             std::tuple<int32_t, int32_t, int32_t> offsets,
             std::pair<int32_t, int32_t> score_to_q16, std::pair<int32_t, int32_t> out_mult,
             int32_t output_offset, bool in_place) {
  Need2D(q, "attention: q");
  Require(k.ndim() == 2 && v.ndim() == 2 && k.shape(0) == q.shape(0) &&
              v.shape(0) == q.shape(0) && k.shape(1) == q.shape(1) && v.shape(1) == q.shape(1),
          "attention: q, k and v must have the same 2-D shape");
  Require(heads > 0 && q.shape(1) % heads == 0, "attention: heads must divide the width");
  tv_attention_params p{static_cast<int32_t>(q.shape(0)), heads,
                        static_cast<int32_t>(q.shape(1) / heads), std::get<0>(offsets),
                        std::get<1>(offsets), std::get<2>(offsets),
                        {score_to_q16.first, score_to_q16.second},
                        {out_mult.first, out_mult.second}, output_offset};
  const char* what = nullptr;
  Check(tv_attention_validate(&p, &what), "attention", &what);
  std::vector<uint8_t> scratch(tv_attention_scratch_size(&p));
  return RunTokens(q, static_cast<int32_t>(q.shape(1)), in_place,
                   [&](const int8_t* qin, int8_t* out) {
                     Check(tv_attention_s8(&p, qin, k.data(), v.data(), out, scratch.data(),
                                           &what),
                           "attention", &what);
                   });
}

I8 Mlp(const I8& x, const std::vector<py::tuple>& up, const I8& table,
       const std::vector<py::tuple>& down, bool in_place) {
  Need2D(x, "mlp: input");
  Require(table.size() == 256, "mlp: the GELU table must have 256 entries");
  Require(up.size() >= 1 && up.size() <= TV_MLP_MAX_STAGES && down.size() >= 1 &&
              down.size() <= TV_MLP_MAX_STAGES,
          "mlp: 1 or 2 up stages and 1 or 2 down stages");
  std::vector<py::object> keep;
  tv_mlp_params p{};
  for (size_t i = 0; i < up.size(); ++i) p.up[i] = Stage(up[i], keep);
  for (size_t i = 0; i < down.size(); ++i) p.down[i] = Stage(down[i], keep);
  p.up_count = static_cast<int32_t>(up.size());
  p.down_count = static_cast<int32_t>(down.size());
  p.gelu_lut = table.data();
  const char* what = nullptr;
  Check(tv_mlp_validate(&p, &what), "mlp", &what);
  Require(x.shape(1) == p.up[0].in_features, "mlp: input features differ from the first stage");
  std::vector<int8_t> scratch(tv_mlp_scratch_size(&p));
  return RunTokens(x, p.down[p.down_count - 1].out_features, in_place,
                   [&](const int8_t* in, int8_t* out) {
                     Check(tv_mlp_s8(&p, static_cast<int32_t>(x.shape(0)), in, out,
                                     scratch.data(), &what),
                           "mlp", &what);
                   });
}

I8 PatchEmbed(const I8& image, const I8& weights, const py::object& bias,
              const I32& multipliers, const I32& shifts, int32_t input_offset,
              int32_t output_offset, int32_t first_band_split, int32_t output_lead,
              bool in_place, int32_t placed_lead) {
  Require(image.ndim() == 3, "patch_embed: image must be 3-D [height, width, channels]");
  Require(weights.ndim() == 4 && weights.shape(1) == weights.shape(2) &&
              weights.shape(3) == image.shape(2),
          "patch_embed: weights must be [out, patch, patch, in_channels]");
  Require(multipliers.size() == weights.shape(0) && shifts.size() == weights.shape(0),
          "patch_embed: one multiplier and shift per output channel");
  I32 b;
  if (!bias.is_none()) {
    b = bias.cast<I32>();
    Require(b.size() == weights.shape(0), "patch_embed: one bias per output channel");
  }
  tv_patch_embed_params p{static_cast<int32_t>(image.shape(0)),
                          static_cast<int32_t>(image.shape(1)),
                          static_cast<int32_t>(image.shape(2)),
                          static_cast<int32_t>(weights.shape(1)),
                          static_cast<int32_t>(weights.shape(0)),
                          first_band_split, output_lead, input_offset, output_offset,
                          weights.data(),
                          bias.is_none() ? nullptr : b.data(), multipliers.data(), shifts.data()};
  const char* what = nullptr;
  Check(tv_patch_embed_validate(&p, &what), "patch_embed", &what);
  const py::ssize_t tokens = (p.height / p.patch) * (p.width / p.patch);
  const size_t out_bytes = static_cast<size_t>(tokens) * p.out_channels;
  I8 out({tokens, static_cast<py::ssize_t>(p.out_channels)});
  std::vector<uint8_t> scratch(tv_patch_embed_scratch_size(&p));
  if (!in_place) {
    Check(tv_patch_embed_s8(&p, image.data(), out.mutable_data(), scratch.data(), &what),
          "patch_embed", &what);
    return out;
  }
  // One buffer as the planner lays it out: the output output_lead bytes before the
  // image, the image overwritten as the kernel goes.
  // (placed_lead, when >= 0, lays it out with another lead than the kernel is told.)
  const int32_t lead = placed_lead >= 0 ? placed_lead : output_lead;
  Require(lead >= 0, "patch_embed: in_place needs an output_lead >= 0");
  const size_t image_bytes = static_cast<size_t>(image.size());
  std::vector<int8_t> arena(std::max(image_bytes + lead, out_bytes));
  std::memcpy(arena.data() + lead, image.data(), image_bytes);
  Check(tv_patch_embed_s8(&p, arena.data() + lead, arena.data(), scratch.data(), &what),
        "patch_embed", &what);
  std::memcpy(out.mutable_data(), arena.data(), out_bytes);
  return out;
}

// The fields as the adapters' Init reads them; ValueError with the reader's message and
// the field it names.
tv_options ReadOptions(const std::string& data, int32_t kind, int32_t expected) {
  tv_options o;
  const char* what = nullptr;
  const char* key = nullptr;
  if (!tv_tflm::ReadOptions(data.data(), data.size(), kind, expected, &o, &what, &key)) {
    throw std::invalid_argument(std::string("options: ") + what + (key ? ": " : "") +
                                (key ? key : ""));
  }
  return o;
}

std::vector<int32_t> ParseOptions(const py::bytes& blob, int32_t kind, int32_t expected) {
  const tv_options o = ReadOptions(blob, kind, expected);
  return std::vector<int32_t>(o.fields, o.fields + o.count);
}

size_t OpScratchSize(const py::bytes& blob, int32_t kind) {
  const tv_options o = ReadOptions(blob, kind, -1);
  const char* what = nullptr;
  size_t bytes = 0;
  Check(tv_op_scratch_size(&o, &bytes, &what), "scratch", &what);
  return bytes;
}

}  // namespace

PYBIND11_MODULE(_kernels, m) {
  m.doc() = "Portable integer kernels of tflm-vit (custom_ops/kernels).";
  m.def("requantize", &Requantize, py::arg("x"), py::arg("multiplier"), py::arg("shift"));
  m.def("quantize_multiplier", &QuantizeMultiplier, py::arg("real"));
  m.def("isqrt_newton", &IsqrtNewton, py::arg("x"), py::arg("iterations"));
  m.def("exp_q16_to_q30", &ExpQ16ToQ30, py::arg("x"));
  m.def("softmax_rows_q15", &SoftmaxRowsQ15, py::arg("scores"), py::arg("multiplier"),
        py::arg("shift"));
  m.def("linear", &Linear, py::arg("x"), py::arg("stage"), py::arg("in_place") = false);
  m.def("low_rank_linear", &LowRankLinear, py::arg("x"), py::arg("u"), py::arg("v"),
        py::arg("in_place") = false);
  m.def("layernorm", &LayerNorm, py::arg("x"), py::arg("output_zero_point"),
        py::arg("eps_term"), py::arg("iterations"), py::arg("multipliers"), py::arg("shifts"),
        py::arg("bias"), py::arg("in_place") = false);
  m.def("lut", &Lut, py::arg("x"), py::arg("table"));
  m.def("gelu_shift", &GeluShift, py::arg("x"), py::arg("input_zero_point"),
        py::arg("output_zero_point"), py::arg("to_q16"), py::arg("to_out"));
  m.def("attention", &Attention, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("heads"),
        py::arg("offsets"), py::arg("score_to_q16"), py::arg("out_multiplier"),
        py::arg("output_offset"), py::arg("in_place") = false);
  m.def("mlp", &Mlp, py::arg("x"), py::arg("up"), py::arg("table"), py::arg("down"),
        py::arg("in_place") = false);
  m.def("patch_embed", &PatchEmbed, py::arg("image"), py::arg("weights"), py::arg("bias"),
        py::arg("multipliers"), py::arg("shifts"), py::arg("input_offset"),
        py::arg("output_offset"), py::arg("first_band_split") = 0,
        py::arg("output_lead") = -1, py::arg("in_place") = false,
        py::arg("placed_lead") = -1);
  m.def("op_scratch_size", &OpScratchSize, py::arg("blob"), py::arg("kind"));
  m.attr("OP_DATA_BYTES") = static_cast<int>(TV_OP_DATA_BYTES);
  m.def("parse_options", &ParseOptions, py::arg("blob"), py::arg("kind"),
        py::arg("expected_fields") = -1);
}
