#include "tv_exp.h"

int32_t tv_exp_q16_to_q30(int32_t x) { return tv_exp_q16_to_q30_inline(x); }
