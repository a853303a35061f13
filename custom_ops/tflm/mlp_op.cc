// TV_MLP: fused MLP per token (up stages, GELU table, down stages); the
// tokens x hidden tensor never exists; the output may overwrite the input.
// Inputs: x, GELU table [256], then (weights, requantisation, bias or -1) per stage,
// up stages first.
#include "linear_stage.h"
#include "op_table.h"

extern "C" {
#include "tv_mlp.h"
}

namespace tv_tflm {
namespace {

constexpr char kOp[] = "TV_MLP";
const StageNames kStages[2 * TV_MLP_MAX_STAGES] = {
    TV_STAGE_NAMES("stage 0"), TV_STAGE_NAMES("stage 1"), TV_STAGE_NAMES("stage 2"),
    TV_STAGE_NAMES("stage 3")};
// Field positions: tv_op_fields.h (generated from tflm_vit/twins/options.py): a head,
// then one group of fields per stage.
enum {
  kTokens = TV_MLP_TOKENS, kUpCount = TV_MLP_UP_COUNT, kDownCount = TV_MLP_DOWN_COUNT,
  kStageFields = TV_MLP_FIELD_COUNT
};
enum {
  kStageIn = TV_MLP_STAGE_IN, kStageOut = TV_MLP_STAGE_OUT,
  kStageInputOffset = TV_MLP_STAGE_INPUT_OFFSET, kStageOutputOffset = TV_MLP_STAGE_OUTPUT_OFFSET,
  kPerStage = TV_MLP_STAGE_FIELD_COUNT
};

int StageCount(const tv_options& o) { return o.fields[kUpCount] + o.fields[kDownCount]; }
const int32_t* StageField(const tv_options& o, int s) {
  return o.fields + kStageFields + kPerStage * s;
}

void* Init(Context* context, const char* buffer, size_t length) {
  OpData* data = ParseOptions(context, kOp, TV_OP_MLP, -1, buffer, length);
  if (data == nullptr) return nullptr;
  const tv_options* o = &data->options;
  const int up = o->count >= kStageFields ? o->fields[kUpCount] : -1;
  const int down = o->count >= kStageFields ? o->fields[kDownCount] : -1;
  if (up < 1 || up > TV_MLP_MAX_STAGES || down < 1 || down > TV_MLP_MAX_STAGES ||
      o->count != kStageFields + kPerStage * (up + down)) {
    TV_ERROR(kOp, "custom options: %d fields do not describe 1-2 up and 1-2 down stages",
             static_cast<int>(o->count));
    return nullptr;
  }
  return data;
}

tv_mlp_params Params(const Context* context, const Node* node, const tv_options& o) {
  tv_mlp_params p;
  p.up_count = o.fields[kUpCount];
  p.down_count = o.fields[kDownCount];
  p.gelu_lut = Data<int8_t>(Input(context, node, 1));
  for (int s = 0; s < StageCount(o); ++s) {
    const int32_t* sf = StageField(o, s);
    tv_linear_stage st = StageFromTensors(context, node, 2 + 3 * s, sf[kStageInputOffset],
                                          sf[kStageOutputOffset]);
    if (s < p.up_count) p.up[s] = st; else p.down[s - p.up_count] = st;
  }
  return p;
}

Status Prepare(Context* context, Node* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  if (data == nullptr) return TV_FAIL(kOp, "custom options invalid (see above)");
  const tv_options& o = data->options;
  const int stages = StageCount(o);
  if (!CheckCounts(kOp, node, 2 + 3 * stages, 2 + 3 * stages, 1)) return kError;
  const int32_t tokens = o.fields[kTokens];
  const int32_t in = StageField(o, 0)[kStageIn], out = StageField(o, stages - 1)[kStageOut];
  const int32_t table_dims[1] = {256};
  if (!CheckActivation(kOp, "input", Input(context, node, 0), tokens, in) ||
      !CheckTensor(kOp, "table", Input(context, node, 1), kTypeInt8) ||
      !CheckShape(kOp, "table", Input(context, node, 1), 1, table_dims) ||
      !CheckActivation(kOp, "output", Output(context, node, 0), tokens, out) ||
      !CheckZeroPoint(kOp, "input", context, node, false, 0,
                      -StageField(o, 0)[kStageInputOffset]) ||
      !CheckZeroPoint(kOp, "output", context, node, true, 0,
                      StageField(o, stages - 1)[kStageOutputOffset])) {
    return kError;
  }
  for (int s = 0; s < stages; ++s) {
    const int32_t* sf = StageField(o, s);
    if (!CheckStage(kOp, kStages[s], context, node, 2 + 3 * s, sf[kStageIn], sf[kStageOut],
                    sf[kStageInputOffset], sf[kStageOutputOffset])) {
      return kError;
    }
  }
  const tv_mlp_params p = Params(context, node, o);
  const char* what = nullptr;
  if (tv_mlp_validate(&p, &what) != TV_OK) return TV_FAIL(kOp, "%s", what);
  return RequestScratchBufferInArena(context, tv_mlp_scratch_size(&p), &data->scratch_index);
}

Status Eval(Context* context, Node* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const tv_mlp_params p = Params(context, node, data->options);
  const char* what = nullptr;
  if (tv_mlp_run_s8(&p, data->options.fields[kTokens], Data<int8_t>(Input(context, node, 0)),
                    MutableData<int8_t>(Output(context, node, 0)),
                    static_cast<int8_t*>(GetScratchBuffer(context, data->scratch_index)),
                    &what) != TV_OK) {
    return TV_FAIL(kOp, "%s", what);
  }
  return kOk;
}

}  // namespace

const Registration* Register_TV_MLP() {
  static Registration r = {Init, nullptr, Prepare, Eval, nullptr, kBuiltinCustom, kOp};
  return &r;
}

}  // namespace tv_tflm
