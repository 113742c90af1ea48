// Reading the JSON Lines files the verbs take as input (texts to tokenize, prompts to
// complete): one JSON value per line, blank lines skipped, errors naming file and line.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "core/json.h"

namespace lathe::cli {

// Calls row(value, line number) for each non-blank line of `path`, in order. `what` names
// the file in the error when it cannot be opened ("the prompts file").
void for_each_json_line(const std::string& path, const std::string& what,
                        const std::function<void(const nlohmann::json&, int64_t)>& row);

}  // namespace lathe::cli
