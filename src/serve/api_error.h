// An error answered to an HTTP client in OpenAI's shape:
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
// with `param` naming the request field at fault (null when none is).
#pragma once
#include <stdexcept>
#include <string>

#include "core/json.h"

namespace lathe {

struct ApiError : std::runtime_error {
  int status;
  std::string type, param, code;
  ApiError(int status, std::string message, std::string param = "",
           std::string type = "invalid_request_error", std::string code = "")
      : std::runtime_error(std::move(message)),
        status(status),
        type(std::move(type)),
        param(std::move(param)),
        code(std::move(code)) {}

  nlohmann::json body() const {
    return {{"error",
             {{"message", what()},
              {"type", type},
              {"param", param.empty() ? nlohmann::json() : nlohmann::json(param)},
              {"code", code.empty() ? nlohmann::json() : nlohmann::json(code)}}}};
  }
};

// 400 for a request field.
inline ApiError bad_field(const std::string& param, const std::string& message) {
  return ApiError(400, message, param, "invalid_request_error", "invalid_value");
}

}  // namespace lathe
