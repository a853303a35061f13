// Counts the guest instructions in QEMU's per-instruction trace (`-singlestep -d
// exec,nochain`: one "Trace" line per executed instruction) as QEMU writes it into a
// FIFO, so the multi-gigabyte log never touches the disk. Python would halve QEMU's
// speed at this line rate; this reads blocks and parses the PC by hand.
//
//   instruction_counter LOG INVOKE_BEGIN INVOKE_END OP_BEGIN OP_END TEXT_LO TEXT_HI
//
// Addresses are hex. Between the first instruction at INVOKE_BEGIN and the next at
// INVOKE_END it counts every instruction (the total), the instructions of each
// OP_BEGIN..OP_END segment in order (one per op), and a histogram over the PCs in
// [TEXT_LO, TEXT_HI) (mapped to functions by the caller). Prints
//   total N
//   ops N1 N2 ...
//   pc ADDR COUNT          (one line per PC that ran)
// and exits 1 with a one-line reason if a marker never ran.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t parse_hex(const char* s, const char** end) {
  uint32_t v = 0;
  for (;; ++s) {
    const char c = *s;
    if (c >= '0' && c <= '9') v = v * 16 + (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v = v * 16 + (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v = v * 16 + (uint32_t)(c - 'A' + 10);
    else break;
  }
  if (end) *end = s;
  return v;
}

// "Trace 0: 0xHOST [FLAGS/PC/...] name": the PC is the field after the first '/'.
static int line_pc(const char* line, uint32_t* pc) {
  if (strncmp(line, "Trace ", 6) != 0) return 0;
  const char* b = strchr(line, '[');
  if (b == NULL) return 0;
  const char* slash = strchr(b, '/');
  if (slash == NULL) return 0;
  *pc = parse_hex(slash + 1, NULL);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: %s LOG INVOKE_BEGIN INVOKE_END OP_BEGIN OP_END TEXT_LO TEXT_HI\n",
            argv[0]);
    return 2;
  }
  const uint32_t invoke_begin = parse_hex(argv[2], NULL), invoke_end = parse_hex(argv[3], NULL);
  const uint32_t op_begin = parse_hex(argv[4], NULL), op_end = parse_hex(argv[5], NULL);
  const uint32_t lo = parse_hex(argv[6], NULL), hi = parse_hex(argv[7], NULL);
  if (hi <= lo) {
    fprintf(stderr, "empty text range\n");
    return 2;
  }
  FILE* log = fopen(argv[1], "r");
  if (log == NULL) {
    fprintf(stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  setvbuf(log, NULL, _IOFBF, 1 << 20);
  uint64_t* hist = calloc((hi - lo) / 2 + 1, sizeof(uint64_t));
  size_t ops_cap = 256, n_ops = 0;
  uint64_t* ops = calloc(ops_cap, sizeof(uint64_t));
  if (hist == NULL || ops == NULL) {
    fprintf(stderr, "out of memory\n");
    return 2;
  }
  enum { BEFORE, INSIDE, AFTER } state = BEFORE;
  int in_op = 0;
  uint64_t total = 0;
  char line[512];
  while (fgets(line, sizeof line, log) != NULL) {
    uint32_t pc;
    if (!line_pc(line, &pc)) continue;
    if (state == BEFORE) {
      if (pc == invoke_begin) state = INSIDE;
      else continue;
    } else if (state == AFTER) {
      continue;  // drain: QEMU blocks if nobody reads the FIFO
    }
    if (pc == invoke_end) {
      state = AFTER;
      continue;
    }
    ++total;
    if (pc >= lo && pc < hi) ++hist[(pc - lo) / 2];
    if (pc == op_begin) {
      if (n_ops == ops_cap) {
        ops_cap *= 2;
        ops = realloc(ops, ops_cap * sizeof(uint64_t));
        if (ops == NULL) {
          fprintf(stderr, "out of memory\n");
          return 2;
        }
      }
      ops[n_ops++] = 0;
      in_op = 1;
    } else if (pc == op_end) {
      in_op = 0;
    }
    if (in_op) ++ops[n_ops - 1];
  }
  if (state != AFTER) {
    fprintf(stderr, "the trace never reached %s\n",
            state == BEFORE ? "tv_mark_invoke_begin" : "tv_mark_invoke_end");
    return 1;
  }
  printf("total %llu\nops", (unsigned long long)total);
  for (size_t i = 0; i < n_ops; ++i) printf(" %llu", (unsigned long long)ops[i]);
  printf("\n");
  for (uint32_t i = 0; i <= (hi - lo) / 2; ++i) {
    if (hist[i]) printf("pc %x %llu\n", lo + 2 * i, (unsigned long long)hist[i]);
  }
  return 0;
}
