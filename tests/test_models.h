// Small models with random weights for tests, written to the test temp dir.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>

#include "convert/synth_model.h"
#include "model/model.h"
#include "test_random.h"
#include "util/error.h"

namespace dip {

inline std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/dip_" + std::to_string(getpid()) + "_" + name;
}

// A 2-layer model file: n_embd 64, 4 heads (2 kv), n_ff 96 unless given.
inline std::string synth_model_file(TensorType t, Arch a = Arch::kLlama, uint32_t n_embd = 64,
                                    uint32_t n_ff = 96, uint32_t n_layer = 2,
                                    const std::string& name = "synth.gguf") {
  SynthSpec s;
  s.arch = a;
  s.type = t;
  s.n_embd = n_embd;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = n_ff;
  s.n_layer = n_layer;
  s.n_merges = 50;
  s.seed = rng()();
  const std::string p = temp_path(name);
  write_synth_model(s, p);
  return p;
}

inline std::unique_ptr<Model> synth_model(TensorType t, Arch a = Arch::kLlama, uint32_t n_embd = 64,
                                          uint32_t n_ff = 96, uint32_t n_layer = 2,
                                          const std::string& name = "synth.gguf") {
  return Model::load(synth_model_file(t, a, n_embd, n_ff, n_layer, name));
}

// fn must throw a dip::Error whose message contains `want`.
inline void expect_error(const std::function<void()>& fn, const std::string& want) {
  std::string got = "(no error)";
  try {
    fn();
  } catch (const Error& e) {
    got = e.what();
  }
  EXPECT_NE(got.find(want), std::string::npos)
      << "error: '" << got << "', expected it to contain '" << want << "'";
}

}  // namespace dip
