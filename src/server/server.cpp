#include "server/server.h"

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "api/model_files.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace dip {

namespace {

using json = nlohmann::json;

// One request at a time, in the order they asked (a ticket lock: std::mutex is not fair).
class FifoLock {
 public:
  void lock() {
    std::unique_lock<std::mutex> l(m_);
    const uint64_t me = next_++;
    cv_.wait(l, [&] { return serving_ == me; });
  }
  void unlock() {
    std::lock_guard<std::mutex> l(m_);
    ++serving_;
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  uint64_t next_ = 0, serving_ = 0;
};

// An error as OpenAI reports it: an HTTP status and {"error": {message, type, param, code}}.
struct ApiError {
  ApiError(int st, std::string msg, std::string t = "invalid_request_error", std::string c = "",
           std::string p = "")
      : status(st),
        message(std::move(msg)),
        type(std::move(t)),
        code(std::move(c)),
        param(std::move(p)) {}
  int status;
  std::string message, type, code, param;
};

json error_body(const ApiError& e) {
  return {{"error",
           {{"message", e.message},
            {"type", e.type},
            {"param", e.param.empty() ? json(nullptr) : json(e.param)},
            {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The bytes of s up to its last complete UTF-8 sequence (a token's piece may end inside one).
size_t complete_utf8_prefix(const std::string& s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    if ((static_cast<unsigned char>(s[n - back]) & 0xC0) == 0x80) continue;  // continuation byte
    return utf8_len(s[n - back]) > back ? n - back : n;
  }
  return n;
}

struct Request {
  std::vector<int32_t> prompt;
  GenerateOptions gen;
  std::vector<std::string> stop;
  bool stream = false;
  bool chat = false;
};

template <class T>
T field(const json& body, const char* name, T fallback, const char* type_name) {
  if (!body.contains(name) || body[name].is_null()) return fallback;
  try {
    return body[name].get<T>();
  } catch (const json::exception&) {
    throw ApiError{400, fmt::format("'{}' must be {}", name, type_name), "invalid_request_error",
                   "invalid_type", name};
  }
}

}  // namespace

void serve(const Model& m, const RunOptions& run_opts, uint32_t n_ctx, const ServerOptions& o,
           const std::function<void(int port)>& ready) {
  Runner run(m, run_opts, n_ctx, 1);
  run.warm_up();  // before the port opens: the first request does not pay for it
  FifoLock turn;
  const std::string model_id = std::filesystem::path(m.path()).stem().string();
  std::atomic<uint64_t> next_id{1};
  const Vocab& vocab = m.vocab();
  std::string plain_why;
  const std::unique_ptr<ChatFormat> format = resolve_chat_format(m, o.chat_template, &plain_why);

  httplib::Server svr;
  svr.new_task_queue = [&] { return new httplib::ThreadPool(size_t(o.http_threads)); };
  svr.set_payload_max_length(o.max_body);

  auto send_error = [](httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    res.set_content(dump(error_body(e)), "application/json");
  };
  auto check_key = [&](const httplib::Request& req) {
    if (o.api_key.empty()) return;
    if (req.get_header_value("Authorization") != "Bearer " + o.api_key)
      throw ApiError{401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key"};
  };

  // The fields both endpoints share; the prompt text is the endpoint's.
  auto parse = [&](const json& body, const std::string& text, bool chat) {
    const std::string model = field<std::string>(body, "model", "", "a string");
    if (model.empty())
      throw ApiError{400, "'model' is required", "invalid_request_error", "missing", "model"};
    if (model != model_id)
      throw ApiError{
          404, fmt::format("The model '{}' does not exist (this server has '{}')", model, model_id),
          "invalid_request_error", "model_not_found", "model"};
    if (!is_valid_utf8(text))
      throw ApiError{400, "the prompt is not valid UTF-8", "invalid_request_error", "invalid_value",
                     chat ? "messages" : "prompt"};
    Request r;
    r.chat = chat;
    r.stream = field<bool>(body, "stream", false, "a boolean");
    SamplingParams& sp = r.gen.sampling;
    sp.temperature = float(field<double>(body, "temperature", 1.0, "a number"));
    sp.top_p = float(field<double>(body, "top_p", 1.0, "a number"));
    sp.top_k = 0;
    sp.min_p = 0;
    if (!(sp.temperature >= 0 && sp.temperature <= 2))
      throw ApiError{400, "'temperature' must be in [0, 2]", "invalid_request_error",
                     "invalid_value", "temperature"};
    if (!(sp.top_p > 0 && sp.top_p <= 1))
      throw ApiError{400, "'top_p' must be in (0, 1]", "invalid_request_error", "invalid_value",
                     "top_p"};
    sp.seed = body.contains("seed") && !body["seed"].is_null()
                  ? uint64_t(field<int64_t>(body, "seed", 0, "an integer"))
                  : random_seed();
    const int64_t max_tokens = field<int64_t>(
        body, chat ? "max_completion_tokens" : "max_tokens",
        field<int64_t>(body, "max_tokens", chat ? 256 : 16, "an integer"), "an integer");
    if (max_tokens < 1)
      throw ApiError{400, "'max_tokens' must be at least 1", "invalid_request_error",
                     "invalid_value", "max_tokens"};
    if (body.contains("stop") && !body["stop"].is_null()) {
      const json& s = body["stop"];
      if (s.is_string()) {
        r.stop.push_back(s.get<std::string>());
      } else if (s.is_array() && s.size() <= 4) {
        for (const auto& x : s) {
          if (!x.is_string())
            throw ApiError{400, "'stop' must be a string or up to 4 strings",
                           "invalid_request_error", "invalid_type", "stop"};
          r.stop.push_back(x.get<std::string>());
        }
      } else {
        throw ApiError{400, "'stop' must be a string or up to 4 strings", "invalid_request_error",
                       "invalid_type", "stop"};
      }
      std::erase(r.stop, std::string());
    }
    // A chat rendered by its template holds the format's special tokens as text.
    r.prompt = tokenize(vocab, text, true, chat && format);
    if (r.prompt.size() + size_t(max_tokens) > n_ctx)
      throw ApiError{400,
                     fmt::format("This model's context is {} tokens; the prompt has {} and "
                                 "max_tokens asks for {} more",
                                 n_ctx, r.prompt.size(), max_tokens),
                     "invalid_request_error", "context_length_exceeded", "max_tokens"};
    r.gen.n_predict = int(max_tokens);
    return r;
  };

  // Generates under the FIFO lock from a fresh context; emit(text) gets each piece of the
  // answer that is final (stop strings cut, UTF-8 sequences whole); returns false to stop.
  // Returns the finish reason and fills the token counts.
  auto generate = [&](const Request& r, const std::function<bool(const std::string&)>& emit,
                      size_t& completion_tokens) {
    std::lock_guard<FifoLock> lock(turn);
    run.session().reset();
    std::string held;  // generated text not yet emitted
    size_t hold = 0;
    for (const auto& s : r.stop) hold = std::max(hold, s.size() - 1);
    bool stopped = false, gone = false;
    const GenerateResult g = run.generate(r.prompt, r.gen, [&](int32_t, const std::string& piece) {
      held += piece;
      for (const auto& s : r.stop) {
        const size_t at = held.find(s);
        if (at != std::string::npos) {
          held.resize(at);
          stopped = true;
        }
      }
      size_t n = stopped ? held.size() : held.size() > hold ? held.size() - hold : 0;
      n = complete_utf8_prefix(held.substr(0, n));
      if (n > 0) {
        if (!emit(held.substr(0, n))) gone = true;
        held.erase(0, n);
      }
      return !stopped && !gone;
    });
    if (!gone && !held.empty()) emit(held);
    completion_tokens = g.tokens.size();
    const bool eog = int(g.tokens.size()) < r.gen.n_predict && !g.stopped_by_callback;
    return std::string(stopped || eog ? "stop" : "length");
  };

  auto handle = [&](const httplib::Request& req, httplib::Response& res, bool chat) {
    try {
      check_key(req);
      json body;
      try {
        body = json::parse(req.body);
      } catch (const json::exception&) {
        throw ApiError{400, "the body is not valid JSON", "invalid_request_error", "invalid_json"};
      }
      if (!body.is_object()) throw ApiError{400, "the body must be a JSON object"};
      std::string text;
      if (chat) {
        if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
          throw ApiError{400, "'messages' must be a non-empty array", "invalid_request_error",
                         "missing", "messages"};
        std::vector<ChatMessage> messages;
        for (const auto& msg : body["messages"]) {
          if (!msg.is_object() || !msg.contains("content") || !msg["content"].is_string() ||
              !msg.contains("role") || !msg["role"].is_string())
            throw ApiError{400, "each message needs a 'role' and a string 'content'",
                           "invalid_request_error", "invalid_type", "messages"};
          messages.push_back({msg["role"].get<std::string>(), msg["content"].get<std::string>()});
          const std::string& role = messages.back().role;
          if (role != "system" && role != "user" && role != "assistant")
            throw ApiError{400, fmt::format("unknown message role '{}'", role),
                           "invalid_request_error", "invalid_value", "messages"};
        }
        if (format) {
          text = format->render(messages, true);
        } else {  // no chat template: the contents, one per line, continued as text
          for (const auto& msg : messages) {
            if (!text.empty()) text += '\n';
            text += msg.content;
          }
        }
      } else {
        if (!body.contains("prompt") || !body["prompt"].is_string())
          throw ApiError{400, "'prompt' must be a string", "invalid_request_error", "missing",
                         "prompt"};
        text = body["prompt"].get<std::string>();
      }
      const Request r = parse(body, text, chat);
      const std::string id = fmt::format("{}-{}", chat ? "chatcmpl" : "cmpl", next_id++);
      const int64_t created = int64_t(std::time(nullptr));
      const char* object = chat ? "chat.completion" : "text_completion";
      auto choice = [chat](const std::string& t, const json& finish, bool delta) {
        json c = {{"index", 0}, {"finish_reason", finish}};
        if (!chat) {
          c["text"] = t;
        } else if (delta) {
          c["delta"] = finish.is_null() ? json{{"content", t}} : json::object();
        } else {
          c["message"] = {{"role", "assistant"}, {"content", t}};
        }
        return c;
      };
      if (!r.stream) {
        std::string answer;
        size_t n = 0;
        const std::string finish = generate(
            r,
            [&](const std::string& t) {
              answer += t;
              return true;
            },
            n);
        res.set_content(dump({{"id", id},
                              {"object", object},
                              {"created", created},
                              {"model", model_id},
                              {"choices", json::array({choice(answer, finish, false)})},
                              {"usage",
                               {{"prompt_tokens", r.prompt.size()},
                                {"completion_tokens", n},
                                {"total_tokens", r.prompt.size() + n}}}}),
                        "application/json");
        return;
      }
      const std::string chunk_object = chat ? "chat.completion.chunk" : "text_completion";
      res.set_chunked_content_provider("text/event-stream", [=, &generate](
                                                                size_t, httplib::DataSink& sink) {
        auto event = [&](const json& choice_json) {
          const std::string line = "data: " +
                                   dump({{"id", id},
                                         {"object", chunk_object},
                                         {"created", created},
                                         {"model", model_id},
                                         {"choices", json::array({choice_json})}}) +
                                   "\n\n";
          return sink.write(line.data(), line.size());
        };
        bool ok = !chat || event({{"index", 0},
                                  {"delta", {{"role", "assistant"}, {"content", ""}}},
                                  {"finish_reason", nullptr}});
        size_t n = 0;
        std::string finish;
        if (ok) {
          finish = generate(
              r, [&](const std::string& t) { return ok = ok && event(choice(t, nullptr, true)); },
              n);
        }
        if (ok && event(choice("", finish, true))) {
          const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
        }
        sink.done();
        return true;
      });
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const Error& e) {
      send_error(res, ApiError{400, e.what()});
    }
  };

  svr.Post("/v1/completions",
           [&](const httplib::Request& q, httplib::Response& s) { handle(q, s, false); });
  svr.Post("/v1/chat/completions",
           [&](const httplib::Request& q, httplib::Response& s) { handle(q, s, true); });
  svr.Get("/v1/models", [&](const httplib::Request& req, httplib::Response& res) {
    try {
      check_key(req);
      const SparsityConfig& cfg = run.sparsity_config();
      json dip = {{"method", method_name(cfg.method)},
                  {"context", n_ctx},
                  {"chat_template", format ? json(format->name()) : json(nullptr)}};
      if (cfg.mlp_density > 0) dip["mlp_density"] = cfg.mlp_density;
      json adapters = json::array();  // file names only: the server's paths stay private
      for (const auto& a : m.adapters())
        adapters.push_back({{"file", std::filesystem::path(a->path()).filename().string()},
                            {"scale", a->user_scale()}});
      dip["adapters"] = adapters;
      if (run.flash()) {
        dip["flash_image"] = run_opts.flash.image;
        dip["dram_budget_bytes"] = run.flash()->plan.budget;
      }
      res.set_content(dump({{"object", "list"},
                            {"data", json::array({{{"id", model_id},
                                                   {"object", "model"},
                                                   {"created", 0},
                                                   {"owned_by", "dip"},
                                                   {"dip", dip}}})}}),
                      "application/json");
    } catch (const ApiError& e) {
      send_error(res, e);
    }
  });
  svr.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"status\":\"ok\"}", "application/json");
  });
  // Unknown paths, bodies over the limit and other protocol errors: an error object too.
  svr.set_error_handler([&](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    const int st = res.status;
    send_error(res, ApiError{st,
                             st == 413   ? fmt::format("the body is over {} bytes", o.max_body)
                             : st == 404 ? "no such endpoint"
                                         : "bad request",
                             "invalid_request_error"});
  });

  int port = o.port;
  if (port == 0) {
    port = svr.bind_to_any_port(o.host);
    if (port < 0) fail("cannot listen on {}", o.host);
  } else if (!svr.bind_to_port(o.host, port)) {
    fail("cannot listen on {}:{}", o.host, port);
  }
  if (ready) ready(port);
  if (!svr.listen_after_bind()) fail("the server on {}:{} stopped", o.host, port);
}

}  // namespace dip
