// Dumps every F32/F16 tensor llama.cpp computes for one batch of tokens (and the logits), to
// find the first operation where dip and llama.cpp part (see docs/differential-results.md).
// It links the prebuilt libraries node-llama-cpp installs under tests/oracle and the headers of
// the llama.cpp release they were built from (node-llama-cpp ships it as a git bundle):
//   B=tests/oracle/node_modules/node-llama-cpp/llama/gitRelease.bundle
//   L=tests/oracle/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
//   git clone -q $B /tmp/llama-src
//   I="-I/tmp/llama-src/include -I/tmp/llama-src/ggml/include"
//   LIBS="-l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so"
//   g++ -O1 -std=c++17 tools/llama_tensor_dump.cpp $I -L$L $LIBS -Wl,-rpath,$(realpath $L) -o
//   /tmp/lldump /tmp/lldump $L MODEL.gguf 1,15043,3186 OUT_DIR
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
// Writes or exits with the file's name: a half-written dump would be compared as if whole.
static void write_file(const std::string& path, const void* data, size_t bytes) {
  FILE* f = fopen(path.c_str(), "wb");
  if (!f || fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0) {
    fprintf(stderr, "%s: cannot write\n", path.c_str());
    exit(1);
  }
}
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
  write_file(fn, buf.data(), buf.size());
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
  // Token ids: a bad one is an error here, not id 0 (atoi) fed silently to the model.
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  std::vector<llama_token> toks;
  for (char* s = strtok(argv[3], ","); s; s = strtok(nullptr, ",")) {
    char* end = nullptr;
    const long id = strtol(s, &end, 10);
    if (*end || end == s || id < 0 || id >= n_vocab) {
      fprintf(stderr, "tokens: '%s' is not a token id of %s (vocabulary %d)\n", s, argv[2],
              n_vocab);
      return 2;
    }
    toks.push_back(llama_token(id));
  }
  if (toks.empty()) {
    fprintf(stderr, "tokens: none given\n");
    return 2;
  }
  llama_context_params cp = llama_context_default_params();
  // One batch of all tokens, as the differential test's oracle evaluates them.
  const uint32_t n_ctx = toks.size() < 256 ? 256 : uint32_t(toks.size());
  cp.n_ctx = n_ctx;
  cp.n_batch = n_ctx;
  cp.n_ubatch = n_ctx;
  cp.n_threads = 2;
  cp.n_threads_batch = 2;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.cb_eval = cb;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) {
    fprintf(stderr, "%s: cannot create a context of %u tokens\n", argv[2], n_ctx);
    return 1;
  }
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
  std::vector<float> logits;
  for (size_t i = 0; i < toks.size(); ++i) {
    const float* l = llama_get_logits_ith(ctx, int32_t(i));
    logits.insert(logits.end(), l, l + n_vocab);
  }
  write_file(std::string(out_dir) + "/logits.bin", logits.data(), logits.size() * sizeof(float));
  printf("ok %d tensors\n", counter);
}
