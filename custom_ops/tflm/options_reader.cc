#include "options_reader.h"

#include <string.h>

#include "flatbuffers/flexbuffers.h"
#include "option_names.h"

// The reasons compile out with TFLM's (TF_LITE_STRIP_ERROR_STRINGS), as the adapters'
// messages do; the keys stay (they are what is read).
#if defined(TF_LITE_STRIP_ERROR_STRINGS)
#define TV_WHY(text) ""
#else
#define TV_WHY(text) text
#endif

namespace tv_tflm {
namespace {

const OptionKeys* KeysOf(int32_t kind) {
  for (const OptionKeys& k : kOptionKeys) {
    if (k.kind == kind) return &k;
  }
  return nullptr;
}

bool Fail(const char** what, const char** key, const char* message, const char* name) {
  *what = message;
  *key = name;
  return false;
}

// An int stored inline (FBT_INT: how FlexBuffers writers store ints, ours included) as
// int64. Flattened, so that with the type tested first the compiler keeps only AsInt64's
// integer path: its others (parsing strings with strtoll, converting floats through
// soft-float doubles) cost about a kilobyte of flash on a Cortex-M.
__attribute__((flatten)) bool InlineInt(const flexbuffers::Reference& value, int64_t* out) {
  if (value.GetType() != flexbuffers::FBT_INT) return false;
  *out = value.AsInt64();
  return true;
}

}  // namespace

bool ReadOptions(const void* buffer, size_t length, int32_t kind, int32_t expected_fields,
                 tv_options* out, const char** what, const char** key) {
  *key = nullptr;
  const auto* b = static_cast<const uint8_t*>(buffer);
  const OptionKeys* keys = KeysOf(kind);
  if (keys == nullptr) return Fail(what, key, TV_WHY("unknown op kind"), nullptr);
  if (b == nullptr || length == 0) {
    return Fail(what, key, TV_WHY("custom options are missing"), nullptr);
  }
  if (length >= 4 && memcmp(b, "TVOP", 4) == 0) {
    return Fail(what, key, TV_WHY("custom options are the old TVOP format (version 1): re-run "
                "tflm-vit convert"), nullptr);
  }
  // Verified before any read: a model file is input, and a bad map must be an error, never
  // an out-of-bounds read. No reuse tracker, so the verifier allocates nothing.
  if (length < 3 || !flexbuffers::VerifyBuffer(b, length, nullptr)) {
    return Fail(what, key, TV_WHY("custom options are not a valid FlexBuffers buffer"), nullptr);
  }
  const flexbuffers::Reference root = flexbuffers::GetRoot(b, length);
  if (!root.IsMap()) {
    return Fail(what, key, TV_WHY("custom options are not a FlexBuffers map"), nullptr);
  }
  const flexbuffers::Map map = root.AsMap();
  const flexbuffers::TypedVector names = map.Keys();
  const flexbuffers::Vector values = map.Values();

  // Which op and which format, before any field: a map for another op is named as such.
  const flexbuffers::Reference op = map["op"];
  if (!op.IsString()) return Fail(what, key, TV_WHY("custom options lack their op"), "op");
  const flexbuffers::String code = op.AsString();  // its length too: "X\0" is not "X"
  if (code.length() != strlen(keys->op) || memcmp(code.c_str(), keys->op, code.length()) != 0) {
    return Fail(what, key, TV_WHY("custom options are for another op"), "op");
  }
  int64_t version = 0;
  if (!InlineInt(map["version"], &version)) {
    return Fail(what, key, TV_WHY("custom options lack their version"), "version");
  }
  if (version != kOptionsVersion) {
    return Fail(what, key, TV_WHY("custom options version not supported"), "version");
  }

  bool seen[TV_OPTIONS_MAX_FIELDS] = {false};
  for (size_t i = 0; i < names.size(); ++i) {
    const char* name = names[i].AsKey();
    const flexbuffers::Reference value = values[i];
    if (strcmp(name, "op") == 0 || strcmp(name, "version") == 0) continue;
    int index = -1;
    for (int j = 0; j < keys->count && j < TV_OPTIONS_MAX_FIELDS; ++j) {
      if (strcmp(name, keys->keys[j]) == 0) index = j;
    }
    if (index < 0) return Fail(what, key, TV_WHY("custom options hold an unknown field"), name);
    int64_t v = 0;
    if (!InlineInt(value, &v) || v < INT32_MIN || v > INT32_MAX) {
      return Fail(what, key, TV_WHY("custom options field is not an int32"), name);
    }
    out->fields[index] = static_cast<int32_t>(v);
    seen[index] = true;
  }
  int count = 0;
  while (count < keys->count && count < TV_OPTIONS_MAX_FIELDS && seen[count]) ++count;
  for (int j = count; j < keys->count && j < TV_OPTIONS_MAX_FIELDS; ++j) {
    if (seen[j] || expected_fields >= 0) {  // a gap, or a fixed list cut short
      return Fail(what, key, TV_WHY("custom options lack a field"), keys->keys[count]);
    }
  }
  if (expected_fields >= 0 && count != expected_fields) {
    return Fail(what, key, TV_WHY("custom options hold the wrong number of fields"), nullptr);
  }
  out->kind = kind;
  out->count = count;
  return true;
}

}  // namespace tv_tflm
