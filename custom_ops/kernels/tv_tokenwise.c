#include "tv_tokenwise.h"

#include <string.h>

tv_status tv_for_each_token(tv_token_fn fn, const void* ctx, int32_t tokens,
                            const int8_t* input, int32_t in_width, int8_t* output,
                            int32_t out_width, int8_t* row_buffer, int8_t* scratch,
                            const char** what) {
  TV_REQUIRE(tokens > 0, "tokens must be > 0");
  TV_REQUIRE(input != NULL && output != NULL, "input and output must not be NULL");
  if (!tv_token_rows_overlap(input, in_width, output, out_width, tokens)) {
    for (int32_t t = 0; t < tokens; ++t) {
      fn(ctx, input + (size_t)t * in_width, output + (size_t)t * out_width, scratch);
    }
    return TV_OK;
  }
  TV_REQUIRE(input == output, "output overlaps input but does not start at it");
  TV_REQUIRE(row_buffer != NULL, "in-place run needs a row buffer");
  const int forward = out_width <= in_width;
  for (int32_t i = 0; i < tokens; ++i) {
    const int32_t t = forward ? i : tokens - 1 - i;
    fn(ctx, input + (size_t)t * in_width, row_buffer, scratch);
    memcpy(output + (size_t)t * out_width, row_buffer, (size_t)out_width);
  }
  return TV_OK;
}
