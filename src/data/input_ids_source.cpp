#include "data/input_ids_source.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string_view>

#include "core/error.h"
#include "core/json.h"

namespace lathe {
namespace {

using Json = nlohmann::json;

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    fail(path, ": is a directory, expected a jsonl file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open: ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  std::string text(size > 0 ? static_cast<size_t>(size) : 0, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(text.size())))
    fail(path, ": read failed: ", std::strerror(errno));
  return text;
}

// nlohmann's message starts "[json.exception.parse_error.101] parse error at line 1, column 5: "
// and the line/column are relative to the single row we handed it, so keep only the reason.
std::string json_reason(const std::string& what) {
  size_t at = what.find("parse error");
  size_t colon = at == std::string::npos ? at : what.find(": ", at);
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

// Streams one row through SAX callbacks straight into int32 vectors: building a json DOM
// first would allocate a node per token and make large files several times slower.
class RowReader final : public nlohmann::json_sax<Json> {
 public:
  RowReader(const std::string& path, int64_t vocab_size) : path_(path), vocab_(vocab_size) {}

  // Parses `line` (1-based `line_no`) into ids/labels; throws lathe::Error on any problem.
  void read(std::string_view line, size_t line_no, std::vector<int32_t>& ids,
            std::vector<int32_t>& labels, bool& has_labels) {
    line_no_ = line_no;
    depth_ = 0;
    target_ = Target::kNone;
    in_array_ = false;
    has_ids_ = has_labels_ = false;
    ids_ = &ids;
    labels_ = &labels;
    ids.clear();
    labels.clear();
    Json::sax_parse(line.begin(), line.end(), this);
    if (!has_ids_) error(R"(missing "input_ids"; expected {"input_ids": [1, 2, ...]})");
    if (ids.empty()) error(R"("input_ids" is empty; expected at least one token id)");
    if (has_labels_ && labels.size() != ids.size())
      error(R"("labels" has )", labels.size(), R"( entries but "input_ids" has )", ids.size(),
            "; they must be the same length");
    has_labels = has_labels_;
  }

  bool null() override { return scalar("null"); }
  bool boolean(bool) override { return scalar("a boolean"); }
  bool number_integer(number_integer_t v) override {
    return in_array_ ? element(v, std::to_string(v)) : scalar("a number");
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (!in_array_) return scalar("a number");
    // Ids above int64 range are certainly outside the vocabulary; report them as such.
    constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    return element(v > kMax ? -1 : static_cast<int64_t>(v), std::to_string(v));
  }
  bool number_float(number_float_t, const string_t& text) override {
    if (in_array_) error(name(), "[", index(), "] = ", text, " is not an integer token id");
    return scalar("a number");
  }
  bool string(string_t&) override { return scalar("a string"); }
  bool binary(binary_t&) override { return scalar("binary data"); }

  bool start_object(std::size_t) override { return open("an object"); }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 1 && target_ != Target::kNone) {
      (target_ == Target::kIds ? has_ids_ : has_labels_) = true;
      in_array_ = true;
      depth_ = 2;
      return true;
    }
    return open("an array");
  }
  bool end_array() override {
    if (in_array_ && depth_ == 2) {
      in_array_ = false;
      target_ = Target::kNone;
    }
    --depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ != 1) return true;  // inside a value we ignore
    target_ = k == "input_ids" ? Target::kIds : k == "labels" ? Target::kLabels : Target::kNone;
    if ((target_ == Target::kIds && has_ids_) || (target_ == Target::kLabels && has_labels_))
      error("\"", k, "\" appears twice");
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    // Each row is parsed on its own, so the byte position is the column.
    fail(path_, ":", line_no_, ":", position, ": invalid JSON: ", json_reason(ex.what()));
  }

 private:
  enum class Target { kNone, kIds, kLabels };

  template <class... Parts>
  [[noreturn]] void error(Parts&&... parts) {
    fail(path_, ":", line_no_, ": ", std::forward<Parts>(parts)...);
  }

  std::string_view name() const { return target_ == Target::kIds ? "input_ids" : "labels"; }
  size_t index() const { return (target_ == Target::kIds ? ids_ : labels_)->size(); }

  // A structure opens: the row itself, a value we skip, or something where ids were expected.
  bool open(std::string_view what) {
    if (depth_ == 0 && what != "an object") error("expected a JSON object per line, got ", what);
    if (in_array_) error(name(), "[", index(), "] is ", what, ", expected an integer token id");
    if (depth_ == 1 && target_ != Target::kNone)
      error("\"", name(), "\" must be an array of integers, got ", what);
    ++depth_;
    return true;
  }

  bool scalar(std::string_view what) {
    if (depth_ == 0) error("expected a JSON object per line, got ", what);
    if (in_array_) error(name(), "[", index(), "] is ", what, ", expected an integer token id");
    if (depth_ == 1 && target_ != Target::kNone)
      error("\"", name(), "\" must be an array of integers, got ", what);
    return true;
  }

  bool element(int64_t v, const std::string& text) {
    bool in_vocab = v >= 0 && v < vocab_;
    if (target_ == Target::kIds) {
      if (!in_vocab)
        error("input_ids[", ids_->size(), "] = ", text, " is outside the vocabulary (size ", vocab_,
              ")");
      ids_->push_back(static_cast<int32_t>(v));
    } else {
      if (!in_vocab && v != -100)
        error("labels[", labels_->size(), "] = ", text,
              " is neither -100 (ignored) nor inside the vocabulary (size ", vocab_, ")");
      labels_->push_back(static_cast<int32_t>(v));
    }
    return true;
  }

  const std::string& path_;
  int64_t vocab_;
  size_t line_no_ = 0;
  int depth_ = 0;                  // 1 inside the row object, 2 inside its arrays, and so on
  Target target_ = Target::kNone;  // the key whose value comes next at depth 1
  bool in_array_ = false;          // reading the elements of input_ids or labels
  bool has_ids_ = false, has_labels_ = false;
  std::vector<int32_t>* ids_ = nullptr;
  std::vector<int32_t>* labels_ = nullptr;
};

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

std::vector<TokenRow> read_input_ids_jsonl(const std::string& path, int64_t vocab_size) {
  LATHE_CHECK(vocab_size > 0 && vocab_size <= std::numeric_limits<int32_t>::max() + int64_t{1},
              path, ": vocabulary size ", vocab_size, " does not fit int32 token ids");
  const std::string text = read_file(path);
  RowReader reader(path, vocab_size);
  std::vector<TokenRow> rows;
  // Scratch vectors keep their capacity across rows; each row then gets an exact-size copy.
  std::vector<int32_t> ids, labels;
  std::string_view rest = text;
  for (size_t line_no = 1; !rest.empty(); ++line_no) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (is_blank(line)) continue;
    if (line.ends_with('\r')) line.remove_suffix(1);
    bool has_labels = false;
    reader.read(line, line_no, ids, labels, has_labels);
    TokenRow& row = rows.emplace_back();
    row.input_ids.assign(ids.begin(), ids.end());
    if (has_labels) row.labels.assign(labels.begin(), labels.end());
  }
  if (rows.empty()) fail(path, ": no rows; expected one JSON object per line");
  return rows;
}

}  // namespace lathe
