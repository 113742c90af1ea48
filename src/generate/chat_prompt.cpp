#include "generate/chat_prompt.h"

#include "core/error.h"
#include "data/formats.h"
#include "tokenizer/tokenizer.h"

namespace lathe {

std::vector<int32_t> chat_prompt_ids(const Tokenizer& tokenizer,
                                     const std::vector<ChatMessage>& messages) {
  LATHE_CHECK(!messages.empty() && messages.back().role == "user",
              "a chat prompt must end with a user message");
  // The training renderer needs a reply to train on: render the conversation with a
  // placeholder reply and drop the reply's segments (the trailing ones that carry the
  // loss). What stays ends exactly where the model's reply begins.
  nlohmann::json msgs = nlohmann::json::array();
  for (const ChatMessage& m : messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
  msgs.push_back({{"role", "assistant"}, {"content", "reply"}});
  Row row;
  row.line = 1;
  row.fields = {{"messages", msgs}};
  DataSpec spec;
  spec.format = "chat";
  const auto encoder = make_tokenizer_encoder(tokenizer);
  Example ex = render_row(spec, row, *encoder, "the chat history");
  while (!ex.segments.empty() && ex.segments.back().loss) ex.segments.pop_back();
  return tokenize_example(ex, *encoder, /*train_on_prompt=*/false).input_ids;
}

std::vector<int32_t> chat_stop_tokens(const Tokenizer& tokenizer) {
  std::vector<int32_t> ids;
  if (tokenizer.find("<|start_header_id|>"))
    if (auto eot = tokenizer.find("<|eot_id|>")) ids.push_back(*eot);
  return ids;
}

}  // namespace lathe
