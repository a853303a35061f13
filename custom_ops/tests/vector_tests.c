// Runs the portable kernels on test vectors written by the NumPy references
// (tests/kernel_vectors.py) and compares every output byte. The same source runs on
// the host and, under QEMU, on Cortex-M4/M7 (the file is read through semihosting),
// so the firmware build of each kernel is held bit for bit to its NumPy twin.
//
//   vector_tests VECTORS_FILE
//
// The file is a tape of little-endian int32 words: "TVVT", version, case count, then
// per case its kernel kind, the byte count of its arguments, the kernel's scalars and
// arrays in the order the reader below takes them (an array is its byte count, then
// its bytes padded to 4), and last the expected output array. Prints one line per mismatch and, when every case
// matched, "TFLM_VIT_VECTORS_PASS <n>"; exits non-zero otherwise.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tv_attention.h"
#include "tv_exp.h"
#include "tv_gelu.h"
#include "tv_layernorm.h"
#include "tv_linear.h"
#include "tv_mlp.h"
#include "tv_patch_embed.h"
#include "tv_softmax.h"

// Kernel kinds on the tape and its magic: generated from tflm_vit/twins/vectors.py.
#include "vector_kinds.h"

typedef struct {
  const uint8_t* p;
  const uint8_t* end;
  int bad;
} tape;

static int32_t next_i32(tape* t) {
  if (t->end - t->p < 4) {
    t->bad = 1;
    return 0;
  }
  int32_t v = (int32_t)((uint32_t)t->p[0] | ((uint32_t)t->p[1] << 8) |
                        ((uint32_t)t->p[2] << 16) | ((uint32_t)t->p[3] << 24));
  t->p += 4;
  return v;
}

// The array's bytes stay in the tape buffer (4-aligned, since the buffer is); *n gets
// the byte count. An empty array is NULL.
static const void* next_array(tape* t, int32_t* n) {
  const int32_t bytes = next_i32(t);
  const int32_t padded = (bytes + 3) & ~3;
  if (t->bad || bytes < 0 || t->end - t->p < padded) {
    t->bad = 1;
    *n = 0;
    return NULL;
  }
  const void* data = t->p;
  t->p += padded;
  *n = bytes;
  return bytes ? data : NULL;
}

static tv_linear_stage next_stage(tape* t) {
  tv_linear_stage s;
  int32_t n;
  s.in_features = next_i32(t);
  s.out_features = next_i32(t);
  s.input_offset = next_i32(t);
  s.output_offset = next_i32(t);
  s.weights = (const int8_t*)next_array(t, &n);
  s.bias = (const int32_t*)next_array(t, &n);
  s.multipliers = (const int32_t*)next_array(t, &n);
  s.shifts = (const int32_t*)next_array(t, &n);
  s.right_shifts_only = 0;  // tv_linear_s8 derives it
  return s;
}

// Runs a token-wise kernel in place when asked: the input is copied to the start of a
// buffer of tokens * max(in, out) bytes and the output written over it, as the
// planner lays them out.
static int8_t* token_buffer(const int8_t* x, int32_t tokens, int32_t in_w, int32_t out_w) {
  const int32_t w = in_w > out_w ? in_w : out_w;
  int8_t* b = (int8_t*)malloc((size_t)tokens * (size_t)w + 1);
  if (b) memcpy(b, x, (size_t)tokens * (size_t)in_w);
  return b;
}

// Runs one case into `out` (at least `out_bytes` long); returns the status.
static tv_status run_case(tape* t, int32_t kind, int8_t* out, int32_t out_bytes,
                          const char** what) {
  int32_t n;
  switch (kind) {
    case KIND_LINEAR:
    case KIND_LOW_RANK_LINEAR: {
      const int32_t tokens = next_i32(t), in_place = next_i32(t);
      const int8_t* x = (const int8_t*)next_array(t, &n);
      const tv_linear_stage u = next_stage(t);
      const tv_linear_stage v = kind == KIND_LOW_RANK_LINEAR ? next_stage(t) : u;
      if (t->bad) return TV_ARG_ERROR;
      const int32_t out_w = v.out_features;
      int8_t* scratch = (int8_t*)malloc(kind == KIND_LINEAR ? tv_linear_scratch_size(&u) + 1
                                        : tv_low_rank_linear_scratch_size(&u, &v) + 1);
      int8_t* buf = in_place ? token_buffer(x, tokens, u.in_features, out_w) : out;
      const int8_t* in = in_place ? buf : x;
      tv_status s = kind == KIND_LINEAR
                        ? tv_linear_s8(&u, tokens, in, buf, scratch, what)
                        : tv_low_rank_linear_s8(&u, &v, tokens, in, buf, scratch, what);
      if (in_place) memcpy(out, buf, (size_t)out_bytes), free(buf);
      free(scratch);
      return s;
    }
    case KIND_LAYERNORM: {
      tv_layernorm_params p;
      const int32_t in_place = next_i32(t);
      p.tokens = next_i32(t);
      p.channels = next_i32(t);
      p.output_zero_point = next_i32(t);
      const uint32_t lo = (uint32_t)next_i32(t), hi = (uint32_t)next_i32(t);
      p.eps_term = (int64_t)(((uint64_t)hi << 32) | lo);
      p.sqrt_iterations = next_i32(t);
      const int8_t* x = (const int8_t*)next_array(t, &n);
      p.multipliers = (const int32_t*)next_array(t, &n);
      p.shifts = (const int32_t*)next_array(t, &n);
      p.bias = (const int32_t*)next_array(t, &n);
      if (t->bad) return TV_ARG_ERROR;
      if (!in_place) return tv_layernorm_s8(&p, x, out, what);
      memcpy(out, x, (size_t)out_bytes);
      return tv_layernorm_s8(&p, out, out, what);
    }
    case KIND_LUT: {
      const int8_t* table = (const int8_t*)next_array(t, &n);
      const int8_t* x = (const int8_t*)next_array(t, &n);
      if (t->bad) return TV_ARG_ERROR;
      return tv_lut_s8(table, x, out, n, what);
    }
    case KIND_GELU_SHIFT: {
      tv_gelu_shift_params p;
      p.input_zero_point = next_i32(t);
      p.output_zero_point = next_i32(t);
      p.to_q16.multiplier = next_i32(t);
      p.to_q16.shift = next_i32(t);
      p.to_out.multiplier = next_i32(t);
      p.to_out.shift = next_i32(t);
      const int8_t* x = (const int8_t*)next_array(t, &n);
      if (t->bad) return TV_ARG_ERROR;
      return tv_gelu_shift_s8(&p, x, out, n, what);
    }
    case KIND_EXP: {
      const int32_t* x = (const int32_t*)next_array(t, &n);
      if (t->bad) return TV_ARG_ERROR;
      for (int32_t i = 0; i < n / 4; ++i) {
        const int32_t y = tv_exp_q16_to_q30(x[i]);
        memcpy(out + 4 * i, &y, 4);
      }
      return TV_OK;
    }
    case KIND_SOFTMAX: {
      const int32_t rows = next_i32(t), cols = next_i32(t);
      tv_quant_multiplier m;
      m.multiplier = next_i32(t);
      m.shift = next_i32(t);
      const int32_t* scores = (const int32_t*)next_array(t, &n);
      if (t->bad) return TV_ARG_ERROR;
      memcpy(out, scores, (size_t)n);
      for (int32_t r = 0; r < rows; ++r) {
        int32_t row[256];
        if (cols > 256) return TV_ARG_ERROR;
        memcpy(row, out + 4 * r * cols, 4 * (size_t)cols);
        const tv_status s = tv_softmax_row_q15(row, cols, m, what);
        if (s != TV_OK) return s;
        memcpy(out + 4 * r * cols, row, 4 * (size_t)cols);
      }
      return TV_OK;
    }
    case KIND_ATTENTION: {
      tv_attention_params p;
      const int32_t in_place = next_i32(t);
      p.tokens = next_i32(t);
      p.heads = next_i32(t);
      p.head_dim = next_i32(t);
      p.q_offset = next_i32(t);
      p.k_offset = next_i32(t);
      p.v_offset = next_i32(t);
      p.score_to_q16.multiplier = next_i32(t);
      p.score_to_q16.shift = next_i32(t);
      p.out_multiplier.multiplier = next_i32(t);
      p.out_multiplier.shift = next_i32(t);
      p.output_offset = next_i32(t);
      const int8_t* q = (const int8_t*)next_array(t, &n);
      const int8_t* k = (const int8_t*)next_array(t, &n);
      const int8_t* v = (const int8_t*)next_array(t, &n);
      if (t->bad) return TV_ARG_ERROR;
      tv_status s = tv_attention_validate(&p, what);
      if (s != TV_OK) return s;
      void* scratch = malloc(tv_attention_scratch_size(&p) + 1);
      if (in_place) {
        memcpy(out, q, (size_t)out_bytes);
        s = tv_attention_s8(&p, out, k, v, out, scratch, what);
      } else {
        s = tv_attention_s8(&p, q, k, v, out, scratch, what);
      }
      free(scratch);
      return s;
    }
    case KIND_MLP: {
      tv_mlp_params p;
      memset(&p, 0, sizeof(p));
      const int32_t in_place = next_i32(t), tokens = next_i32(t);
      p.up_count = next_i32(t);
      p.down_count = next_i32(t);
      if (p.up_count < 1 || p.up_count > TV_MLP_MAX_STAGES || p.down_count < 1 ||
          p.down_count > TV_MLP_MAX_STAGES) {
        return TV_ARG_ERROR;
      }
      const int8_t* x = (const int8_t*)next_array(t, &n);
      p.gelu_lut = (const int8_t*)next_array(t, &n);
      for (int32_t i = 0; i < p.up_count; ++i) p.up[i] = next_stage(t);
      for (int32_t i = 0; i < p.down_count; ++i) p.down[i] = next_stage(t);
      if (t->bad) return TV_ARG_ERROR;
      tv_status s = tv_mlp_validate(&p, what);
      if (s != TV_OK) return s;
      int8_t* scratch = (int8_t*)malloc(tv_mlp_scratch_size(&p) + 1);
      const int32_t in_w = p.up[0].in_features, out_w = p.down[p.down_count - 1].out_features;
      if (in_place) {
        int8_t* buf = token_buffer(x, tokens, in_w, out_w);
        s = tv_mlp_s8(&p, tokens, buf, buf, scratch, what);
        memcpy(out, buf, (size_t)out_bytes);
        free(buf);
      } else {
        s = tv_mlp_s8(&p, tokens, x, out, scratch, what);
      }
      free(scratch);
      return s;
    }
    case KIND_PATCH_EMBED: {
      tv_patch_embed_params p;
      const int32_t in_place = next_i32(t);
      p.height = next_i32(t);
      p.width = next_i32(t);
      p.in_channels = next_i32(t);
      p.patch = next_i32(t);
      p.out_channels = next_i32(t);
      p.first_band_split = next_i32(t);
      p.output_lead = next_i32(t);
      p.input_offset = next_i32(t);
      p.output_offset = next_i32(t);
      const int8_t* image = (const int8_t*)next_array(t, &n);
      p.weights = (const int8_t*)next_array(t, &n);
      p.bias = (const int32_t*)next_array(t, &n);
      p.multipliers = (const int32_t*)next_array(t, &n);
      p.shifts = (const int32_t*)next_array(t, &n);
      if (t->bad) return TV_ARG_ERROR;
      tv_status s = tv_patch_embed_validate(&p, what);
      if (s != TV_OK) return s;
      void* scratch = malloc(tv_patch_embed_scratch_size(&p) + 1);
      if (in_place) {
        // The planner's layout: the tokens start output_lead bytes before the image
        // and overwrite it.
        const size_t image_bytes = (size_t)p.height * p.width * p.in_channels;
        const size_t need = image_bytes + (size_t)p.output_lead;
        int8_t* buf = (int8_t*)malloc(need > (size_t)out_bytes ? need : (size_t)out_bytes);
        memcpy(buf + p.output_lead, image, image_bytes);
        s = tv_patch_embed_s8(&p, buf + p.output_lead, buf, scratch, what);
        memcpy(out, buf, (size_t)out_bytes);
        free(buf);
      } else {
        s = tv_patch_embed_s8(&p, image, out, scratch, what);
      }
      free(scratch);
      return s;
    }
    default:
      *what = "unknown kernel kind on the tape";
      return TV_ARG_ERROR;
  }
}

static uint8_t* read_file(const char* path, long* size) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *size = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t* data = (uint8_t*)malloc((size_t)*size + 4);
  if (data && fread(data, 1, (size_t)*size, f) != (size_t)*size) {
    free(data);
    data = NULL;
  }
  fclose(f);
  return data;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    printf("usage: vector_tests VECTORS_FILE\n");
    return 2;
  }
  long size = 0;
  uint8_t* data = read_file(argv[1], &size);
  if (!data) {
    printf("vector_tests: cannot read %s\n", argv[1]);
    return 2;
  }
  tape t = {data, data + size, 0};
  const int32_t magic = next_i32(&t), version = next_i32(&t), cases = next_i32(&t);
  if (magic != (int32_t)TV_VECTORS_MAGIC || version != 1 || cases < 0) {
    printf("vector_tests: %s is not a version-1 vector file\n", argv[1]);
    return 2;
  }
  int failures = 0;
  for (int32_t c = 0; c < cases; ++c) {
    const int32_t kind = next_i32(&t);
    const int32_t case_bytes = next_i32(&t);  // the kernel's arguments, then the expected output
    const uint8_t* body = t.p;
    if (t.bad || case_bytes < 0 || t.end - body < case_bytes) {
      printf("case %d: truncated tape\n", (int)c);
      return 2;
    }
    tape expected_tape = {body + case_bytes, t.end, 0};
    int32_t out_bytes = 0;
    const int8_t* expected = (const int8_t*)next_array(&expected_tape, &out_bytes);
    if (expected_tape.bad) {
      printf("case %d: truncated tape\n", (int)c);
      return 2;
    }
    const char* what = NULL;
    int8_t* out = (int8_t*)malloc((size_t)out_bytes + 1);
    tape args = {body, body + case_bytes, 0};
    what = NULL;
    const tv_status s = run_case(&args, kind, out, out_bytes, &what);
    if (s != TV_OK || args.bad) {
      printf("case %d (kind %d): kernel refused: %s\n", (int)c, (int)kind,
             what ? what : "bad arguments on the tape");
      ++failures;
    } else {
      for (int32_t i = 0; i < out_bytes; ++i) {
        if (out[i] != expected[i]) {
          printf("case %d (kind %d): byte %d is %d, NumPy says %d\n", (int)c, (int)kind, (int)i,
                 (int)out[i], (int)expected[i]);
          ++failures;
          break;
        }
      }
    }
    free(out);
    t = expected_tape;
  }
  free(data);
  if (failures) {
    printf("TFLM_VIT_VECTORS_FAIL %d of %d cases\n", failures, (int)cases);
    return 1;
  }
  printf("TFLM_VIT_VECTORS_PASS %d\n", (int)cases);
  return 0;
}
