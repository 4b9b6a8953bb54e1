#include "sparsity/calibration.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "model/forward.h"
#include "model/model.h"
#include "util/error.h"
#include "util/output_file.h"

namespace dip {

namespace {
constexpr double kLogMin = -40.0, kLogMax = 24.0;  // log2 range of magnitudes
constexpr int kBinsPerOctave = 128;
constexpr size_t kBins = size_t((kLogMax - kLogMin) * kBinsPerOctave);
constexpr uint32_t kMinTokens = 256;
const char* const kSignalNames[] = {"x", "h", "gate"};
}  // namespace

MagnitudeHistogram::MagnitudeHistogram() : bins_(kBins, 0) {}

void MagnitudeHistogram::add(const float* v, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float a = std::fabs(v[i]);
    size_t b = 0;
    if (a > 0.0f && std::isfinite(a)) {
      const double pos = (std::log2(double(a)) - kLogMin) * kBinsPerOctave;
      b = size_t(std::clamp(pos, 0.0, double(kBins - 1)));
    } else if (!std::isfinite(a)) {
      b = kBins - 1;
    }
    ++bins_[b];
  }
  total_ += n;
}

float MagnitudeHistogram::threshold_for_keep(double keep) const {
  if (total_ == 0) return 0.0f;
  if (keep >= 1.0) return 0.0f;
  const double want = keep * double(total_);  // samples at or above the threshold
  double above = 0;
  for (size_t b = kBins; b-- > 0;) {
    const double c = double(bins_[b]);
    if (above + c >= want) {
      // Within bin b: take the fraction of it that completes `want`, geometrically.
      const double frac = c > 0 ? (want - above) / c : 0.0;
      const double lo = kLogMin + double(b) / kBinsPerOctave, hi = lo + 1.0 / kBinsPerOctave;
      return float(std::exp2(hi - frac * (hi - lo)));
    }
    above += c;
  }
  return 0.0f;
}

float Thresholds::at(uint32_t layer, Signal signal, double keep) const {
  const auto& v = table[layer][int(signal)];
  if (keep >= keep_grid.back()) return v.back();
  if (keep <= keep_grid.front()) return v.front();
  const size_t i =
      size_t(std::upper_bound(keep_grid.begin(), keep_grid.end(), keep) - keep_grid.begin());
  const double k0 = keep_grid[i - 1], k1 = keep_grid[i];
  const double t = (keep - k0) / (k1 - k0);
  return float(v[i - 1] + t * (v[i] - v[i - 1]));
}

std::string model_fingerprint(const Model& m) {
  const HParams& hp = m.hparams();
  uint64_t h = 1469598103934665603ull;  // FNV-1a over shape and the first layers' norm weights
  auto mix = [&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  const uint32_t shape[] = {hp.n_layer, hp.n_embd, hp.n_ff, hp.n_head, hp.n_head_kv, hp.n_vocab};
  mix(shape, sizeof shape);
  for (const Layer& L : m.layers) {
    mix(L.ffn_norm.data(), L.ffn_norm.size() * sizeof(float));
    mix(L.attn_norm.data(), L.attn_norm.size() * sizeof(float));
  }
  return fmt::format("{}-{}x{}x{}-{:016x}", hp.arch_name, hp.n_layer, hp.n_embd, hp.n_ff, h);
}

Thresholds calibrate(const Model& m, const std::vector<int32_t>& tokens, uint32_t n_ctx,
                     int threads, const std::function<void(size_t, size_t)>& progress) {
  const HParams& hp = m.hparams();
  if (tokens.size() < kMinTokens) {
    fail("the calibration text is too short: {} tokens, at least {} are needed", tokens.size(),
         kMinTokens);
  }
  std::vector<std::array<MagnitudeHistogram, 3>> hist(hp.n_layer);
  Session s(m, n_ctx, threads);
  std::vector<float> silu(hp.n_ff), ones(hp.n_ff, 1.0f);
  s.set_mlp_observer([&](uint32_t l, const float* x, const float* gate, const float* h) {
    hist[l][0].add(x, hp.n_embd);
    hist[l][1].add(h, hp.n_ff);
    for (size_t i = 0; i < hp.n_ff; ++i) silu[i] = gate[i] / (1.0f + std::exp(-gate[i]));
    hist[l][2].add(silu.data(), hp.n_ff);
  });
  std::vector<float> logits;
  const size_t n_win = (tokens.size() + n_ctx - 1) / n_ctx;
  for (size_t w = 0; w < n_win; ++w) {
    const size_t b = w * n_ctx, e = std::min(tokens.size(), b + n_ctx);
    s.reset();
    s.eval(std::span<const int32_t>(tokens.data() + b, e - b), false, logits);
    if (progress) progress(w + 1, n_win);
  }
  Thresholds t;
  t.model_id = model_fingerprint(m);
  t.n_layer = hp.n_layer;
  t.n_embd = hp.n_embd;
  t.n_ff = hp.n_ff;
  t.tokens = tokens.size();
  for (int i = 1; i <= 200; ++i) t.keep_grid.push_back(i / 200.0);
  t.table.resize(hp.n_layer);
  for (uint32_t l = 0; l < hp.n_layer; ++l) {
    for (int sgl = 0; sgl < 3; ++sgl) {
      for (double k : t.keep_grid) t.table[l][sgl].push_back(hist[l][sgl].threshold_for_keep(k));
    }
  }
  return t;
}

void save_thresholds(const Thresholds& t, const std::string& path) {
  nlohmann::json j;
  j["format"] = "dip-thresholds";
  j["version"] = 1;
  j["model"] = {{"id", t.model_id}, {"n_layer", t.n_layer}, {"n_embd", t.n_embd}, {"n_ff", t.n_ff}};
  j["tokens"] = t.tokens;
  j["keep_grid"] = t.keep_grid;
  for (uint32_t l = 0; l < t.n_layer; ++l) {
    nlohmann::json L;
    for (int s = 0; s < 3; ++s) L[kSignalNames[s]] = t.table[l][s];
    j["layers"].push_back(L);
  }
  write_file_atomically(path, j.dump(1) + "\n");
}

Thresholds load_thresholds(const std::string& path, const Model& m) {
  const std::string text = read_text_file(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    fail("{}: not valid JSON ({})", path, e.what());
  }
  Thresholds t;
  try {
    if (j.at("format") != "dip-thresholds" || j.at("version") != 1)
      fail("{}: not a dip thresholds file (version 1)", path);
    t.model_id = j.at("model").at("id").get<std::string>();
    t.n_layer = j.at("model").at("n_layer").get<uint32_t>();
    t.n_embd = j.at("model").at("n_embd").get<uint32_t>();
    t.n_ff = j.at("model").at("n_ff").get<uint32_t>();
    t.tokens = j.at("tokens").get<uint64_t>();
    t.keep_grid = j.at("keep_grid").get<std::vector<double>>();
    const auto& layers = j.at("layers");
    if (!layers.is_array() || layers.size() != t.n_layer)
      fail("{}: layer count does not match its header", path);
    t.table.resize(t.n_layer);
    for (uint32_t l = 0; l < t.n_layer; ++l) {
      for (int s = 0; s < 3; ++s) {
        t.table[l][s] = layers[l].at(kSignalNames[s]).get<std::vector<float>>();
        if (t.table[l][s].size() != t.keep_grid.size())
          fail("{}: layer {} has a table of the wrong length", path, l);
      }
    }
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed thresholds file ({})", path, e.what());
  }
  if (t.keep_grid.empty() || !std::is_sorted(t.keep_grid.begin(), t.keep_grid.end())) {
    fail("{}: keep grid is empty or not ascending", path);
  }
  const std::string want = model_fingerprint(m);
  if (t.model_id != want) {
    fail("{}: thresholds were calibrated for model {}, this model is {}", path, t.model_id, want);
  }
  return t;
}

}  // namespace dip
