// Dumps every F32/F16 tensor llama.cpp computes for one batch of tokens (and the logits), to
// find the first operation where dip and llama.cpp part (see docs/differential-results.md).
// It links the prebuilt libraries node-llama-cpp installs under tests/oracle and the headers of
// the llama.cpp release they were built from (node-llama-cpp ships it as a git bundle):
//   B=tests/oracle/node_modules/node-llama-cpp/llama/gitRelease.bundle
//   L=tests/oracle/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
//   git clone -q $B /tmp/llama-src
//   I="-I/tmp/llama-src/include -I/tmp/llama-src/ggml/include"
//   LIBS="-l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so"
//   g++ -O1 -std=c++17 tools/llama_tensor_dump.cpp $I -L$L $LIBS -Wl,-rpath,$(realpath $L) -o /tmp/lldump
//   /tmp/lldump $L MODEL.gguf 1,15043,3186 OUT_DIR
// Files: OUT_DIR/NNN_<tensor name>_<type>_<ne0>x<ne1>x<ne2>x<ne3>.bin in graph order, and
// OUT_DIR/logits.bin ([token][vocab] float32).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"
#include "llama.h"
static int counter = 0;
static const char* out_dir = ".";
static bool cb(struct ggml_tensor* t, bool ask, void*) {
  if (ask) return true;
  if (t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16) return true;
  std::vector<uint8_t> buf(ggml_nbytes(t));
  ggml_backend_tensor_get(t, buf.data(), 0, buf.size());
  char fn[512];
  snprintf(fn, sizeof fn, "%s/%03d_%s_%s_%lldx%lldx%lldx%lld.bin", out_dir, counter++, t->name,
           ggml_type_name(t->type), (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
           (long long)t->ne[3]);
  for (char* p = fn + strlen(out_dir) + 1; *p; ++p)
    if (*p == ' ' || *p == '(' || *p == ')') *p = '_';
  FILE* f = fopen(fn, "wb");
  if (!f) {
    fprintf(stderr, "%s: cannot write\n", fn);
    exit(1);
  }
  fwrite(buf.data(), 1, buf.size(), f);
  fclose(f);
  return true;
}
int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s LIB_DIR MODEL.gguf TOKENS(comma-separated) OUT_DIR\n", argv[0]);
    return 2;
  }
  out_dir = argv[4];
  ggml_backend_load_all_from_path(argv[1]);
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(argv[2], mp);
  if (!model) {
    fprintf(stderr, "%s: cannot load\n", argv[2]);
    return 1;
  }
  std::vector<llama_token> toks;
  for (char* s = strtok(argv[3], ","); s; s = strtok(nullptr, ",")) toks.push_back(atoi(s));
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 256;
  cp.n_batch = 256;
  cp.n_ubatch = 256;
  cp.n_threads = 2;
  cp.n_threads_batch = 2;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.cb_eval = cb;
  llama_context* ctx = llama_init_from_model(model, cp);
  llama_batch b = llama_batch_init(toks.size(), 0, 1);
  for (size_t i = 0; i < toks.size(); ++i) {
    b.token[i] = toks[i];
    b.pos[i] = i;
    b.n_seq_id[i] = 1;
    b.seq_id[i][0] = 0;
    b.logits[i] = 1;
  }
  b.n_tokens = toks.size();
  if (llama_decode(ctx, b)) {
    fprintf(stderr, "decode failed\n");
    return 1;
  }
  const int nv = llama_vocab_n_tokens(llama_model_get_vocab(model));
  std::string lf = std::string(out_dir) + "/logits.bin";
  FILE* f = fopen(lf.c_str(), "wb");
  for (size_t i = 0; i < toks.size(); ++i) fwrite(llama_get_logits_ith(ctx, i), 4, nv, f);
  fclose(f);
  printf("ok %d tensors\n", counter);
}
