#include "generate/chat_prompt.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/json.h"
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

std::string read_chat_template(const std::string& model_dir) {
  const std::string path = model_dir + "/tokenizer_config.json";
  if (!std::filesystem::exists(path)) return "";
  std::ifstream in(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object() || !j.contains("chat_template")) return "";
  const nlohmann::json& t = j["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array())
    for (const auto& named : t)
      if (named.is_object() && named.value("name", "") == "default" && named.contains("template") &&
          named["template"].is_string())
        return named["template"].get<std::string>();
  return "";
}

std::string chat_template_mismatch(const Tokenizer& tokenizer, const std::string& chat_template) {
  if (chat_template.empty()) return "";
  const bool llama3 = tokenizer.find("<|start_header_id|>").has_value();
  const char* marker = llama3 ? "<|start_header_id|>" : "[INST]";
  if (chat_template.find(marker) != std::string::npos) return "";
  return str_cat("this model's chat template (tokenizer_config.json) is not the ",
                 llama3 ? "Llama 3 (<|start_header_id|>)" : "Llama 2 ([INST])",
                 " format lathe renders for its vocabulary; render the prompt yourself and use "
                 "/v1/completions");
}

std::vector<int32_t> chat_stop_tokens(const Tokenizer& tokenizer) {
  std::vector<int32_t> ids;
  if (tokenizer.find("<|start_header_id|>"))
    if (auto eot = tokenizer.find("<|eot_id|>")) ids.push_back(*eot);
  return ids;
}

}  // namespace lathe
