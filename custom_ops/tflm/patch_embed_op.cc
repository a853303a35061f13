// TV_PATCH_EMBED: the patch-embedding convolution (kernel = stride = patch, valid
// padding), read in place from the image; output is [.., tokens, out_channels]. The
// output may start `output_lead` bytes before the image and overwrite it (the offline
// plan puts it there): the image tensor is consumed by inference.
// Inputs: image [1, H, W, C], weights [D, P, P, C], requantisation [2, D], bias [D]
// (optional).
#include "op_common.h"
#include "op_table.h"

extern "C" {
#include "tv_patch_embed.h"
}

namespace tv_tflm {
namespace {

constexpr char kOp[] = "TV_PATCH_EMBED";
// Field positions: tv_op_fields.h (generated from tflm_vit/twins/options.py).
enum {
  kHeight = TV_PATCH_EMBED_HEIGHT, kWidth = TV_PATCH_EMBED_WIDTH,
  kInChannels = TV_PATCH_EMBED_IN_CHANNELS, kPatch = TV_PATCH_EMBED_PATCH,
  kOutChannels = TV_PATCH_EMBED_OUT_CHANNELS, kFirstBandSplit = TV_PATCH_EMBED_FIRST_BAND_SPLIT,
  kOutputLead = TV_PATCH_EMBED_OUTPUT_LEAD, kInputOffset = TV_PATCH_EMBED_INPUT_OFFSET,
  kOutputOffset = TV_PATCH_EMBED_OUTPUT_OFFSET, kFields = TV_PATCH_EMBED_FIELD_COUNT
};

void* Init(Context* context, const char* buffer, size_t length) {
  return ParseOptions(context, kOp, TV_OP_PATCH_EMBED, kFields, buffer, length);
}

tv_patch_embed_params Params(const Context* context, const Node* node, const int32_t* f) {
  const int32_t* q = Data<int32_t>(Input(context, node, 2));
  tv_patch_embed_params p;
  p.height = f[kHeight];
  p.width = f[kWidth];
  p.in_channels = f[kInChannels];
  p.patch = f[kPatch];
  p.out_channels = f[kOutChannels];
  p.first_band_split = f[kFirstBandSplit];
  p.output_lead = f[kOutputLead];
  p.input_offset = f[kInputOffset];
  p.output_offset = f[kOutputOffset];
  p.weights = Data<int8_t>(Input(context, node, 1));
  p.bias = Data<int32_t>(Input(context, node, 3));
  p.multipliers = q;
  p.shifts = q ? q + p.out_channels : nullptr;
  return p;
}

Status Prepare(Context* context, Node* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  if (data == nullptr) return TV_FAIL(kOp, "custom options invalid (see above)");
  const int32_t* f = data->options.fields;
  if (!CheckCounts(kOp, node, 3, 4, 1)) return kError;
  const int32_t image_dims[4] = {1, f[kHeight], f[kWidth], f[kInChannels]};
  const int32_t weight_dims[4] = {f[kOutChannels], f[kPatch], f[kPatch], f[kInChannels]};
  const int32_t table_dims[2] = {2, f[kOutChannels]};
  const EvalTensor* bias = Input(context, node, 3);
  if (!CheckTensor(kOp, "image", Input(context, node, 0), kTypeInt8) ||
      !CheckShape(kOp, "image", Input(context, node, 0), 4, image_dims) ||
      !CheckTensor(kOp, "weights", Input(context, node, 1), kTypeInt8) ||
      !CheckShape(kOp, "weights", Input(context, node, 1), 4, weight_dims) ||
      !CheckTensor(kOp, "requantisation", Input(context, node, 2), kTypeInt32) ||
      !CheckShape(kOp, "requantisation", Input(context, node, 2), 2, table_dims) ||
      (bias != nullptr && (!CheckTensor(kOp, "bias", bias, kTypeInt32) ||
                           !CheckShape(kOp, "bias", bias, 1, &f[kOutChannels])))) {
    return kError;
  }
  const tv_patch_embed_params p = Params(context, node, f);
  const char* what = nullptr;
  if (tv_patch_embed_validate(&p, &what) != TV_OK) return TV_FAIL(kOp, "%s", what);
  const int32_t tokens = (p.height / p.patch) * (p.width / p.patch);
  if (!CheckActivation(kOp, "output", Output(context, node, 0), tokens, p.out_channels) ||
      !CheckZeroPoint(kOp, "image", context, node, false, 0, -p.input_offset) ||
      !CheckZeroPoint(kOp, "output", context, node, true, 0, p.output_offset)) {
    return kError;
  }
  return RequestScratchBufferInArena(context, tv_patch_embed_scratch_size(&p),
                                     &data->scratch_index);
}

Status Eval(Context* context, Node* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const tv_patch_embed_params p = Params(context, node, data->options.fields);
  const char* what = nullptr;
  if (tv_patch_embed_run_s8(&p, Data<int8_t>(Input(context, node, 0)),
                            MutableData<int8_t>(Output(context, node, 0)),
                            GetScratchBuffer(context, data->scratch_index), &what) != TV_OK) {
    return TV_FAIL(kOp, "%s", what);
  }
  return kOk;
}

}  // namespace

const Registration* Register_TV_PATCH_EMBED() {
  static Registration r = {Init, nullptr, Prepare, Eval, nullptr, kBuiltinCustom, kOp};
  return &r;
}

}  // namespace tv_tflm
