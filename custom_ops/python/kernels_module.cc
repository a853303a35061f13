// tflm_vit._kernels: the portable kernels, callable from Python on NumPy arrays, so
// tests hold them bit for bit against their NumPy references.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

extern "C" {
#include "tv_fixed_point.h"
}

namespace py = pybind11;

namespace {

using I32 = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using U64 = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>;

I32 Requantize(const I32& x, int32_t multiplier, int32_t shift) {
  if (shift < -31 || shift > 30) {
    throw std::invalid_argument("requantize: shift " + std::to_string(shift) +
                                " outside [-31, 30]");
  }
  if (multiplier < 0) throw std::invalid_argument("requantize: multiplier must be >= 0");
  I32 out(x.request().shape);
  const int32_t* in = x.data();
  int32_t* o = out.mutable_data();
  const tv_quant_multiplier q{multiplier, shift};
  for (py::ssize_t i = 0; i < x.size(); ++i) o[i] = tv_requantize(in[i], q);
  return out;
}

py::tuple QuantizeMultiplier(double real) {
  tv_quant_multiplier q;
  if (tv_quantize_multiplier(real, &q) != TV_OK) {
    throw std::invalid_argument("quantize_multiplier: real multiplier " +
                                std::to_string(real) + " must be finite and in [0, 2^30]");
  }
  return py::make_tuple(q.multiplier, q.shift);
}

py::array_t<uint32_t> IsqrtNewton(const U64& x, int iterations) {
  if (iterations < 0) throw std::invalid_argument("isqrt_newton: iterations must be >= 0");
  py::array_t<uint32_t> out(x.request().shape);
  const uint64_t* in = x.data();
  uint32_t* o = out.mutable_data();
  for (py::ssize_t i = 0; i < x.size(); ++i) o[i] = tv_isqrt_newton(in[i], iterations);
  return out;
}

}  // namespace

PYBIND11_MODULE(_kernels, m) {
  m.doc() = "Portable integer kernels of tflm-vit (custom_ops/kernels).";
  m.def("requantize", &Requantize, py::arg("x"), py::arg("multiplier"), py::arg("shift"),
        "TFLite MultiplyByQuantizedMultiplier over an int32 array.");
  m.def("quantize_multiplier", &QuantizeMultiplier, py::arg("real"),
        "Real multiplier -> (multiplier, shift), TFLite's convention.");
  m.def("isqrt_newton", &IsqrtNewton, py::arg("x"), py::arg("iterations"),
        "Integer sqrt by a fixed number of Newton steps.");
}
