#include "api/conversation.h"

#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace dip {

Turn Conversation::reply(const std::string& line, const GenerateOptions& g,
                         const TokenCallback& on_token) {
  const Vocab& vocab = run_.model().vocab();
  Session& s = run_.session();
  const uint32_t n_ctx = s.n_ctx();
  const bool fresh = s.n_past() == 0;
  Turn turn;
  std::vector<int32_t> toks;
  std::string rendered;
  if (format_) {
    messages_.push_back({"user", line});
    rendered = format_->render(messages_, true);
    if (!fresh && rendered.compare(0, in_context_.size(), in_context_) == 0) {
      toks = pending_;
      for (int32_t t : tokenize(vocab, rendered.substr(in_context_.size()), false, true))
        toks.push_back(t);
    } else {
      s.reset();
      toks = tokenize(vocab, rendered, true, true);
    }
  } else {
    toks = pending_;
    for (int32_t t : tokenize(vocab, fresh ? line : "\n" + line, fresh, true)) toks.push_back(t);
  }
  if (size_t(s.n_past()) + toks.size() + size_t(g.n_predict) > n_ctx) {
    s.reset();
    turn.restarted = true;
    if (format_) {
      messages_.erase(messages_.begin(), messages_.end() - 1);  // the new line alone
      rendered = format_->render(messages_, true);
    } else {
      rendered = line;
    }
    toks = tokenize(vocab, rendered, true, true);
    if (toks.size() + size_t(g.n_predict) > n_ctx)
      fail("the line needs more than the context of {} tokens (-c)", n_ctx);
  }
  turn.evaluated = toks.size();
  turn.result = run_.generate(toks, g, [&](int32_t t, const std::string& piece) {
    turn.answer += piece;
    return !on_token || on_token(t, piece);
  });
  pending_.clear();
  if (!turn.result.tokens.empty()) pending_.push_back(turn.result.tokens.back());
  if (format_) {
    messages_.push_back({"assistant", turn.answer});
    in_context_ = rendered + turn.answer;
  }
  return turn;
}

}  // namespace dip
