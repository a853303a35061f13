// Host tests of the portable kernels in plain C, built with AddressSanitizer and
// UndefinedBehaviorSanitizer in CI (tests/test_c_kernels.py). Bit-exactness against
// the NumPy references is tested from Python; these check, under the sanitizers,
// that every kernel stays inside its buffers over random shapes, that in-place
// (token-overwriting) runs equal out-of-place runs, that fused kernels equal their
// unfused chains, that the token order does not change the patch embedding, and
// that bad arguments are refused with a message. (The options reader is C++ over
// flexbuffers.h, custom_ops/tflm/options_reader.cc: tests/test_options_reader.py.)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tv_attention.h"
#include "tv_fixed_point.h"
#include "tv_gelu.h"
#include "tv_layernorm.h"
#include "tv_linear.h"
#include "tv_mlp.h"
#include "tv_patch_embed.h"
#include "tv_softmax.h"

static int failures = 0;
#define CHECK(cond, ...)                          \
  do {                                            \
    if (!(cond)) {                                \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);               \
      fprintf(stderr, "\n");                      \
      ++failures;                                 \
    }                                             \
  } while (0)

static uint32_t rng_state = 12345u;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}
static int32_t rnd_range(int32_t lo, int32_t hi) { return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1)); }
// Exactly-sized heap blocks, so ASan catches any access past the end.
static int8_t* rnd_s8(size_t n) {
  int8_t* p = (int8_t*)malloc(n ? n : 1);
  for (size_t i = 0; i < n; ++i) p[i] = (int8_t)rnd_range(-128, 127);
  return p;
}

typedef struct {
  tv_linear_stage s;
  int8_t* w;
  int32_t *b, *m, *sh;
} owned_stage;

static owned_stage make_stage(int32_t in, int32_t out) {
  owned_stage o;
  o.w = rnd_s8((size_t)in * out);
  o.b = (int32_t*)malloc(sizeof(int32_t) * out);
  o.m = (int32_t*)malloc(sizeof(int32_t) * out);
  o.sh = (int32_t*)malloc(sizeof(int32_t) * out);
  for (int32_t i = 0; i < out; ++i) {
    o.b[i] = rnd_range(-20000, 20000);
    o.m[i] = rnd_range(1 << 30, 2147483647);
    o.sh[i] = rnd_range(-12, -6);
  }
  // right_shifts_only 0: tv_linear_s8 derives it.
  o.s = (tv_linear_stage){in, out, o.w, o.b, o.m, o.sh, rnd_range(-127, 128),
                          rnd_range(-128, 127), 0};
  return o;
}
static void free_stage(owned_stage* o) { free(o->w); free(o->b); free(o->m); free(o->sh); }

static void test_linear(void) {
  for (int trial = 0; trial < 40; ++trial) {
    const int32_t tokens = rnd_range(1, 9), in = rnd_range(1, 40), out = rnd_range(1, 40);
    owned_stage st = make_stage(in, out);
    int8_t* x = rnd_s8((size_t)tokens * in);
    int8_t* ref = (int8_t*)malloc((size_t)tokens * out);
    int8_t* scratch = (int8_t*)malloc(tv_linear_scratch_size(&st.s));
    const char* what = NULL;
    CHECK(tv_linear_s8(&st.s, tokens, x, ref, scratch, &what) == TV_OK, "linear: %s", what);
    const size_t big = (size_t)tokens * (size_t)(in > out ? in : out);
    int8_t* buf = (int8_t*)malloc(big);
    memcpy(buf, x, (size_t)tokens * in);
    CHECK(tv_linear_s8(&st.s, tokens, buf, buf, scratch, &what) == TV_OK, "in place: %s", what);
    CHECK(memcmp(buf, ref, (size_t)tokens * out) == 0, "linear in place differs (in %d out %d)", in, out);
    // Low rank equals the two stages chained.
    owned_stage v = make_stage(out, in);
    int8_t* chain = (int8_t*)malloc((size_t)tokens * in);
    int8_t* lr_scratch = (int8_t*)malloc(tv_low_rank_linear_scratch_size(&st.s, &v.s));
    int8_t* s2 = (int8_t*)malloc(tv_linear_scratch_size(&v.s));
    CHECK(tv_linear_s8(&v.s, tokens, ref, chain, s2, &what) == TV_OK, "%s", what);
    memcpy(buf, x, (size_t)tokens * in);
    CHECK(tv_low_rank_linear_s8(&st.s, &v.s, tokens, buf, buf, lr_scratch, &what) == TV_OK, "%s", what);
    CHECK(memcmp(buf, chain, (size_t)tokens * in) == 0, "low rank differs from chain");
    // Partial overlap is refused.
    if (tokens > 1 && in > 1) {
      CHECK(tv_linear_s8(&st.s, tokens, buf + 1, buf, scratch, &what) == TV_ARG_ERROR,
            "partial overlap accepted");
    }
    free(x); free(ref); free(scratch); free(buf); free(chain); free(lr_scratch); free(s2);
    free_stage(&st); free_stage(&v);
  }
  owned_stage bad = make_stage(4, 4);
  bad.s.in_features = 0;
  const char* what = NULL;
  CHECK(tv_linear_validate(&bad.s, &what) == TV_ARG_ERROR && what && strstr(what, "in_features"),
        "bad in_features not named");
  free_stage(&bad);
}

static void test_layernorm_gelu(void) {
  for (int trial = 0; trial < 40; ++trial) {
    const int32_t tokens = rnd_range(1, 8), d = rnd_range(1, 200);
    int32_t* m = (int32_t*)malloc(sizeof(int32_t) * d);
    int32_t* sh = (int32_t*)malloc(sizeof(int32_t) * d);
    int32_t* b = (int32_t*)malloc(sizeof(int32_t) * d);
    for (int32_t c = 0; c < d; ++c) {
      m[c] = rnd_range(1 << 30, 2147483647) * (rnd() % 2 ? 1 : -1);
      sh[c] = rnd_range(-31, 0);
      b[c] = rnd_range(-100000, 100000);
    }
    tv_layernorm_params p = {tokens, d, rnd_range(-128, 127), (int64_t)rnd_range(0, 1 << 20),
                             rnd_range(1, 6), m, sh, b};
    int8_t* x = rnd_s8((size_t)tokens * d);
    int8_t* y = (int8_t*)malloc((size_t)tokens * d);
    const char* what = NULL;
    CHECK(tv_layernorm_s8(&p, x, y, &what) == TV_OK, "layernorm: %s", what);
    CHECK(tv_layernorm_s8(&p, x, x, &what) == TV_OK, "%s", what);
    CHECK(memcmp(x, y, (size_t)tokens * d) == 0, "layernorm in place differs");
    int8_t lut[256];
    for (int i = 0; i < 256; ++i) lut[i] = (int8_t)rnd_range(-128, 127);
    CHECK(tv_lut_s8(lut, x, y, tokens * d, &what) == TV_OK, "%s", what);
    tv_gelu_shift_params g = {rnd_range(-128, 127), rnd_range(-128, 127), {rnd_range(1 << 30, 2147483647), rnd_range(0, 14)},
                              {rnd_range(1 << 30, 2147483647), rnd_range(-31, -10)}};
    CHECK(tv_gelu_shift_s8(&g, x, y, tokens * d, &what) == TV_OK, "%s", what);
    p.channels = 0;
    CHECK(tv_layernorm_s8(&p, x, y, &what) == TV_ARG_ERROR && strstr(what, "channels"),
          "bad channels not named");
    free(m); free(sh); free(b); free(x); free(y);
  }
  // Newton from above falls monotonically to floor(sqrt(x)).
  for (int i = 0; i < 2000; ++i) {
    const uint64_t x = ((uint64_t)rnd() << 20) ^ rnd();
    const uint32_t r = tv_isqrt_newton(x, 64);
    CHECK((uint64_t)r * r <= x && ((uint64_t)r + 1) * ((uint64_t)r + 1) > x, "isqrt(%llu) = %u",
          (unsigned long long)x, r);
  }
}

static void test_softmax_attention(void) {
  for (int trial = 0; trial < 30; ++trial) {
    const int32_t n = rnd_range(1, 40), heads = rnd_range(1, 4), dh = rnd_range(1, 16);
    const int32_t width = heads * dh;
    int32_t* row = (int32_t*)malloc(sizeof(int32_t) * n);
    for (int32_t j = 0; j < n; ++j) row[j] = (int32_t)rnd();  // extremes: no overflow
    const char* what = NULL;
    CHECK(tv_softmax_row_q15(row, n, (tv_quant_multiplier){1 << 30, rnd_range(-20, 10)}, &what) == TV_OK, "%s", what);
    int64_t sum = 0;
    for (int32_t j = 0; j < n; ++j) sum += row[j];
    CHECK(sum > 32768 - n - 64 && sum < 32768 + n + 64, "softmax sums to %lld", (long long)sum);
    tv_attention_params p = {n, heads, dh, rnd_range(-127, 128), rnd_range(-127, 128), rnd_range(-127, 128),
                             {rnd_range(1 << 30, 2147483647), rnd_range(-8, 2)},
                             {rnd_range(1 << 30, 2147483647), rnd_range(-20, -10)}, rnd_range(-128, 127)};
    int8_t *q = rnd_s8((size_t)n * width), *k = rnd_s8((size_t)n * width), *v = rnd_s8((size_t)n * width);
    int8_t* out = (int8_t*)malloc((size_t)n * width);
    void* scratch = malloc(tv_attention_scratch_size(&p));
    CHECK(tv_attention_s8(&p, q, k, v, out, scratch, &what) == TV_OK, "attention: %s", what);
    CHECK(tv_attention_s8(&p, q, k, v, q, scratch, &what) == TV_OK, "%s", what);
    CHECK(memcmp(q, out, (size_t)n * width) == 0, "attention over q differs");
    CHECK(tv_attention_s8(&p, q, k, v, k, scratch, &what) == TV_ARG_ERROR, "output over k accepted");
    free(row); free(q); free(k); free(v); free(out); free(scratch);
  }
}

static void test_mlp(void) {
  for (int trial = 0; trial < 30; ++trial) {
    const int32_t tokens = rnd_range(1, 6), d = rnd_range(1, 24), hidden = rnd_range(1, 48);
    const int32_t r = rnd_range(1, 8);
    const int low_rank = rnd() % 2;
    owned_stage u1 = make_stage(d, low_rank ? r : hidden), u2 = make_stage(r, hidden);
    owned_stage d1 = make_stage(hidden, low_rank ? r : d), d2 = make_stage(r, d);
    int8_t lut[256];
    for (int i = 0; i < 256; ++i) lut[i] = (int8_t)rnd_range(-128, 127);
    tv_mlp_params p;
    memset(&p, 0, sizeof(p));
    p.up[0] = u1.s; p.up[1] = u2.s; p.up_count = low_rank ? 2 : 1;
    p.down[0] = d1.s; p.down[1] = d2.s; p.down_count = low_rank ? 2 : 1;
    p.gelu_lut = lut;
    int8_t* x = rnd_s8((size_t)tokens * d);
    int8_t* y = (int8_t*)malloc((size_t)tokens * d);
    int8_t* scratch = (int8_t*)malloc(tv_mlp_scratch_size(&p));
    const char* what = NULL;
    CHECK(tv_mlp_s8(&p, tokens, x, y, scratch, &what) == TV_OK, "mlp: %s", what);
    // Unfused chain.
    int8_t* a = (int8_t*)malloc((size_t)tokens * 64);
    int8_t* b = (int8_t*)malloc((size_t)tokens * 64);
    int8_t* rs = (int8_t*)malloc(64);
    const int8_t* cur = x;
    int8_t* bufs[2] = {a, b};
    int which = 0, width = d;
    for (int s = 0; s < p.up_count; ++s) {
      tv_linear_s8(&p.up[s], tokens, cur, bufs[which], rs, &what);
      cur = bufs[which]; which ^= 1; width = p.up[s].out_features;
    }
    tv_lut_s8(lut, cur, (int8_t*)cur, tokens * width, &what);
    for (int s = 0; s < p.down_count; ++s) {
      tv_linear_s8(&p.down[s], tokens, cur, bufs[which], rs, &what);
      cur = bufs[which]; which ^= 1;
    }
    CHECK(memcmp(cur, y, (size_t)tokens * d) == 0, "fused MLP differs from the chain");
    CHECK(tv_mlp_s8(&p, tokens, x, x, scratch, &what) == TV_OK, "%s", what);
    CHECK(memcmp(x, y, (size_t)tokens * d) == 0, "MLP in place differs");
    free_stage(&u1); free_stage(&u2); free_stage(&d1); free_stage(&d2);
    free(x); free(y); free(scratch); free(a); free(b); free(rs);
  }
}

static void test_patch_embed(void) {
  static const int32_t patches[] = {1, 2, 4, 8};
  for (int trial = 0; trial < 20; ++trial) {
    const int32_t P = patches[rnd() % 4], gh = rnd_range(1, 4), gw = rnd_range(1, 4);
    const int32_t c = rnd_range(1, 3), d = rnd_range(1, 16);
    int8_t* w = rnd_s8((size_t)d * P * P * c);
    int32_t *m = (int32_t*)malloc(4 * d), *sh = (int32_t*)malloc(4 * d), *b = (int32_t*)malloc(4 * d);
    for (int32_t o = 0; o < d; ++o) { m[o] = rnd_range(1 << 30, 2147483647); sh[o] = rnd_range(-14, -6); b[o] = rnd_range(-5000, 5000); }
    tv_patch_embed_params p = {gh * P, gw * P, c, P, d, 0, TV_PATCH_EMBED_NO_OVERWRITE,
                               rnd_range(-127, 128), rnd_range(-128, 127), w, b, m, sh};
    const size_t image_bytes = (size_t)gh * P * gw * P * c, out_bytes = (size_t)gh * gw * d;
    int8_t* img = rnd_s8(image_bytes);
    int8_t* first = (int8_t*)malloc(out_bytes);
    int8_t* other = (int8_t*)malloc(out_bytes);
    void* s1 = malloc(tv_patch_embed_scratch_size(&p));
    const char* what = NULL;
    CHECK(tv_patch_embed_s8(&p, img, first, s1, &what) == TV_OK, "patch: %s", what);
    // The order never changes a bit.
    for (int32_t split = 1; split <= gw; ++split) {
      p.first_band_split = split;
      CHECK(tv_patch_embed_s8(&p, img, other, s1, &what) == TV_OK, "%s", what);
      CHECK(memcmp(first, other, out_bytes) == 0, "first_band_split %d differs", (int)split);
    }
    // An output overlapping the image where no lead allows it is refused.
    p.first_band_split = 0;
    int8_t* shared = (int8_t*)malloc(image_bytes + out_bytes);
    memcpy(shared, img, image_bytes);
    CHECK(tv_patch_embed_s8(&p, shared, shared, s1, &what) == TV_ARG_ERROR &&
              strstr(what, "overlaps the image"),
          "unsafe overlap not refused");
    p.first_band_split = gw + 1;
    CHECK(tv_patch_embed_validate(&p, &what) == TV_ARG_ERROR && strstr(what, "first_band_split"),
          "bad first_band_split not named");
    free(shared);
    free(w); free(m); free(sh); free(b); free(img); free(first); free(other); free(s1);
  }
}

int main(void) {
  test_linear();
  test_layernorm_gelu();
  test_softmax_attention();
  test_mlp();
  test_patch_embed();
  if (failures) {
    fprintf(stderr, "%d checks failed\n", failures);
    return 1;
  }
  printf("kernel tests passed\n");
  return 0;
}
