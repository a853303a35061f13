// A QEMU TCG plugin that counts the guest instructions of one Invoke() and of each op, as
// the per-instruction trace (`-singlestep -d exec,nochain`) counted them, in about a
// hundredth of the time: every translated instruction gets an inline 64-bit add (no call),
// and only the four marker functions' first instructions get a callback.
//
//   qemu-system-arm ... -plugin libinstruction_count.so,out=FILE,marks=IB:IE:OB:OE,text=LO:HI
//
// Addresses are hex. The window runs from the first instruction at IB (inclusive) to the
// next at IE (exclusive); an op from OB (inclusive) to the next OE (exclusive); PCs in
// [LO, HI) get a histogram (mapped to functions by the caller). At IE it writes FILE:
//   total N
//   ops N1 N2 ...
//   pc ADDR COUNT          (one line per PC that ran inside the window)
// and nothing if IE never runs (the caller names the marker that was not reached).
//
// Debian's QEMU ships no qemu-plugin.h; the few declarations used here are QEMU 7.2's
// public plugin API (version 1), declared by hand.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t, struct qemu_plugin_tb*);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int, void*);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, qemu_plugin_vcpu_tb_trans_cb_t);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb*);
struct qemu_plugin_insn* qemu_plugin_tb_get_insn(const struct qemu_plugin_tb*, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn*);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn*,
                                            qemu_plugin_vcpu_udata_cb_t,
                                            enum qemu_plugin_cb_flags, void*);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn*, enum qemu_plugin_op,
                                                void*, uint64_t);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

enum { INVOKE_BEGIN, INVOKE_END, OP_BEGIN, OP_END, N_MARKS };
static uint64_t marks[N_MARKS];
static uint64_t lo, hi;
static char* out_path;
static uint64_t total;        // every instruction since reset
static uint64_t* hist;        // per halfword PC in [lo, hi), since reset
static uint64_t* hist_start;  // hist at INVOKE_BEGIN
static uint64_t total_start, op_start;
static uint64_t* ops;
static size_t n_ops, ops_cap;
static int inside, done;

static void count_one(uint64_t pc) {  // what the inline adds do for other instructions
  ++total;
  if (pc >= lo && pc < hi) ++hist[(pc - lo) / 2];
}

static void write_result(void) {
  FILE* f = fopen(out_path, "w");
  if (f == NULL) return;  // the caller finds no file and says so
  fprintf(f, "total %llu\nops", (unsigned long long)(total - total_start));
  for (size_t i = 0; i < n_ops; ++i) fprintf(f, " %llu", (unsigned long long)ops[i]);
  fprintf(f, "\n");
  for (uint64_t i = 0; i < (hi - lo) / 2; ++i) {
    const uint64_t n = hist[i] - hist_start[i];
    if (n) fprintf(f, "pc %llx %llu\n", (unsigned long long)(lo + 2 * i), (unsigned long long)n);
  }
  fclose(f);
}

// A marker's first instruction: the counts before it, then it is counted like the rest.
static void on_mark(unsigned int vcpu, void* udata) {
  (void)vcpu;
  const int which = (int)(uintptr_t)udata;
  if (!done) {
    if (which == INVOKE_BEGIN && !inside) {
      inside = 1;
      total_start = total;
      memcpy(hist_start, hist, (hi - lo) / 2 * sizeof(uint64_t));
    } else if (which == INVOKE_END && inside) {
      inside = 0;
      done = 1;
      write_result();
    } else if (which == OP_BEGIN && inside) {
      op_start = total;
    } else if (which == OP_END && inside) {
      if (n_ops == ops_cap) {
        ops_cap = ops_cap ? 2 * ops_cap : 256;
        ops = realloc(ops, ops_cap * sizeof(uint64_t));
        if (ops == NULL) abort();
      }
      ops[n_ops++] = total - op_start;
    }
  }
  count_one(marks[which]);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb* tb) {
  (void)id;
  const size_t n = qemu_plugin_tb_n_insns(tb);
  for (size_t i = 0; i < n; ++i) {
    struct qemu_plugin_insn* insn = qemu_plugin_tb_get_insn(tb, i);
    const uint64_t pc = qemu_plugin_insn_vaddr(insn);
    int mark = -1;
    for (int m = 0; m < N_MARKS; ++m) {
      if (pc == marks[m]) mark = m;
    }
    if (mark >= 0) {
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS,
                                             (void*)(uintptr_t)mark);
      continue;
    }
    qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &total, 1);
    if (pc >= lo && pc < hi) {
      qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                 &hist[(pc - lo) / 2], 1);
    }
  }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t* info,
                                                               int argc, char** argv) {
  (void)info;
  int have_marks = 0, have_text = 0;
  for (int i = 0; i < argc; ++i) {
    if (strncmp(argv[i], "out=", 4) == 0) {
      out_path = argv[i] + 4;
    } else if (strncmp(argv[i], "marks=", 6) == 0) {
      char* s = argv[i] + 6;
      for (int m = 0; m < N_MARKS; ++m) {
        marks[m] = strtoull(s, &s, 16);
        if (*s == ':') ++s;
      }
      have_marks = 1;
    } else if (strncmp(argv[i], "text=", 5) == 0) {
      char* s = argv[i] + 5;
      lo = strtoull(s, &s, 16);
      if (*s == ':') hi = strtoull(s + 1, NULL, 16);
      have_text = 1;
    }
  }
  if (out_path == NULL || !have_marks || !have_text || hi <= lo) {
    fprintf(stderr, "instruction_count plugin: need out=FILE,marks=IB:IE:OB:OE,text=LO:HI\n");
    return -1;
  }
  hist = calloc((hi - lo) / 2 + 1, sizeof(uint64_t));
  hist_start = calloc((hi - lo) / 2 + 1, sizeof(uint64_t));
  if (hist == NULL || hist_start == NULL) return -1;
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  return 0;
}
