#include "api/conversation.h"

#include <algorithm>

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
  // Room kept for the answer: all of -n, but at most half the context, so that a large -n
  // (an answer that runs until Ctrl-C) still leaves the conversation room to go on.
  const size_t reserve = std::min<size_t>(size_t(std::max(g.n_predict, 0)), n_ctx / 2);
  if (size_t(s.n_past()) + toks.size() + reserve > n_ctx) {
    s.reset();
    turn.restarted = true;
    if (format_) {
      messages_.erase(messages_.begin(), messages_.end() - 1);  // the new line alone
      rendered = format_->render(messages_, true);
    } else {
      rendered = line;
    }
    toks = tokenize(vocab, rendered, true, true);
    if (toks.size() + reserve > n_ctx) {
      messages_.clear();  // the conversation is empty; the caller may go on with another line
      in_context_.clear();
      pending_.clear();
      throw LineTooLong(fmt::format(
          "the line ({} tokens) and its answer need more than the context of {} tokens (-c)",
          toks.size(), n_ctx));
    }
  }
  turn.evaluated = toks.size();
  // The answer ends where the context does.
  GenerateOptions limited = g;
  const size_t room = n_ctx - size_t(s.n_past()) - toks.size();
  if (size_t(g.n_predict) > room) limited.n_predict = int(room);
  turn.result = run_.generate(toks, limited, [&](int32_t t, const std::string& piece) {
    turn.answer += piece;
    return !on_token || on_token(t, piece);
  });
  turn.context_limited = limited.n_predict < g.n_predict && !turn.result.stopped_by_callback &&
                         int(turn.result.tokens.size()) == limited.n_predict;
  pending_.clear();
  if (!turn.result.tokens.empty()) pending_.push_back(turn.result.tokens.back());
  if (format_) {
    messages_.push_back({"assistant", turn.answer});
    in_context_ = rendered + turn.answer;
  }
  return turn;
}

}  // namespace dip
