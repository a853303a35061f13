#include "tv_options.h"

static uint32_t read_le(const uint8_t* b, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | b[i];
  return v;
}

tv_status tv_options_parse(const void* buffer, size_t length, int32_t kind,
                           int32_t expected_fields, tv_options* out, const char** what) {
  const uint8_t* b = (const uint8_t*)buffer;
  TV_REQUIRE(out != NULL, "output is NULL");
  TV_REQUIRE(b != NULL && length > 0, "custom options are missing");
  TV_REQUIRE(length >= TV_OPTIONS_HEADER_BYTES, "custom options truncated (header)");
  TV_REQUIRE(b[0] == 'T' && b[1] == 'V' && b[2] == 'O' && b[3] == 'P',
             "custom options do not start with magic TVOP");
  TV_REQUIRE(read_le(b + 4, 2) == TV_OPTIONS_VERSION, "custom options version not supported");
  TV_REQUIRE((int32_t)read_le(b + 6, 2) == kind, "custom options are for another op kind");
  const uint32_t n = read_le(b + 8, 4);
  TV_REQUIRE(n <= TV_OPTIONS_MAX_FIELDS, "custom options hold too many fields");
  TV_REQUIRE(expected_fields < 0 || n == (uint32_t)expected_fields,
             "custom options hold the wrong number of fields");
  TV_REQUIRE(length >= TV_OPTIONS_HEADER_BYTES + 4 * (size_t)n,
             "custom options truncated (fields)");
  TV_REQUIRE(length == TV_OPTIONS_HEADER_BYTES + 4 * (size_t)n,
             "custom options have trailing bytes");
  out->kind = kind;
  out->count = (int32_t)n;
  for (uint32_t i = 0; i < n; ++i) {
    out->fields[i] = (int32_t)read_le(b + TV_OPTIONS_HEADER_BYTES + 4 * i, 4);
  }
  return TV_OK;
}
