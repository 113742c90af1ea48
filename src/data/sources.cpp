// Reading rows from dataset files: jsonl, json (array of rows, or an object of rows keyed by
// id such as PubMedQA's ori_pqal.json), csv (RFC 4180, header row) and plain text (documents
// separated by blank lines). Every row remembers the line it starts on so later errors (a
// missing field, a bad template) can point at it.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/formats.h"

namespace lathe {
namespace {

using Json = nlohmann::json;

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open: ", std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail(path, ": read failed: ", std::strerror(errno));
  return text;
}

// Maps byte offsets to 1-based line and column (in bytes) for messages.
class LineIndex {
 public:
  explicit LineIndex(std::string_view text) {
    starts_.push_back(0);
    for (size_t i = 0; i < text.size(); ++i)
      if (text[i] == '\n') starts_.push_back(i + 1);
  }
  int64_t line(size_t offset) const {
    return std::upper_bound(starts_.begin(), starts_.end(), offset) - starts_.begin();
  }
  size_t column(size_t offset) const { return offset - starts_[line(offset) - 1] + 1; }

 private:
  std::vector<size_t> starts_;
};

// A file being read: its text after any UTF-8 byte order mark, and how to name a position.
struct Source {
  Source(const std::string& p, std::string_view t, size_t b)
      : path(p), text(t), base(b), index(t) {}

  // "path:line:col" of text[offset].
  std::string where(size_t offset) const {
    return str_cat(path, ":", index.line(offset), ":", index.column(offset));
  }
  // The message for a bad byte at text[offset]; the byte offset is that of the file.
  std::string utf8_error(size_t offset) const {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(text[offset]));
    return str_cat(where(offset), ": invalid UTF-8 (byte ", hex, " at byte offset ", base + offset,
                   "); the file must be UTF-8 text, convert it e.g. with "
                   "`iconv -f latin1 -t utf-8`");
  }
  // Row::error for the bytes text[begin, end) if they are not valid UTF-8, else "".
  std::string check_utf8(size_t begin, size_t end) const {
    size_t bad = find_invalid_utf8(text.substr(begin, end - begin));
    return bad == std::string_view::npos ? std::string() : utf8_error(begin + bad);
  }

  const std::string& path;
  std::string_view text;
  size_t base;
  LineIndex index;
};

// nlohmann's message starts "[json.exception.parse_error.101] parse error at line 1, column 5: ";
// we report our own file:line:column, so keep only the reason.
std::string json_reason(const std::string& what) {
  size_t at = what.find("parse error");
  size_t colon = at == std::string::npos ? at : what.find(": ", at);
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

std::vector<Row> read_jsonl(const Source& src) {
  const std::string_view text = src.text;
  const std::string& path = src.path;
  std::vector<Row> rows;
  size_t pos = 0;
  for (int64_t line_no = 1; pos < text.size(); ++line_no) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(pos, end - pos);
    size_t start = pos;
    pos = end + 1;
    if (is_blank(line)) continue;
    if (line.ends_with('\r')) line.remove_suffix(1);
    Row& row = rows.emplace_back();
    row.line = line_no;
    row.error = src.check_utf8(start, start + line.size());
    if (!row.error.empty()) continue;
    try {
      row.fields = Json::parse(line);
    } catch (const Json::parse_error& e) {
      // The row is parsed on its own, so nlohmann's byte position is the column.
      row.error =
          str_cat(path, ":", line_no, ":", e.byte, ": invalid JSON: ", json_reason(e.what()));
      continue;
    }
    if (!row.fields.is_object())
      row.error = str_cat(path, ":", line_no, ": expected a JSON object per line, got ",
                          row.fields.type_name());
  }
  return rows;
}

// Where each top-level element of a JSON document starts and ends, with its key when the
// document is an object. Only called on text nlohmann accepted, so it need not diagnose; it
// exists because nlohmann's DOM keeps no positions and rows must know their line.
struct Span {
  std::string key;
  size_t begin = 0, end = 0;
};

size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

size_t skip_string(std::string_view s, size_t i) {  // s[i] == '"'
  for (++i; i < s.size() && s[i] != '"'; ++i)
    if (s[i] == '\\') ++i;
  return i + 1;
}

size_t skip_value(std::string_view s, size_t i) {
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '[' || s[i] == '{') {
    int depth = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        continue;
      }
      if (c == '[' || c == '{') ++depth;
      if ((c == ']' || c == '}') && --depth == 0) return i + 1;
      ++i;
    }
    return i;
  }
  while (i < s.size() && !std::strchr(",]} \t\r\n", s[i])) ++i;
  return i;
}

std::vector<Span> top_level_spans(std::string_view s) {
  std::vector<Span> spans;
  size_t i = skip_ws(s, 0);
  const bool object = s[i] == '{';
  const char close = object ? '}' : ']';
  for (i = skip_ws(s, i + 1); i < s.size() && s[i] != close; i = skip_ws(s, i)) {
    Span span;
    if (object) {
      size_t key_end = skip_string(s, i);
      span.key = Json::parse(s.substr(i, key_end - i)).get<std::string>();
      i = skip_ws(s, skip_ws(s, key_end) + 1);  // past the ':'
    }
    span.begin = i;
    span.end = i = skip_value(s, i);
    spans.push_back(std::move(span));
    i = skip_ws(s, i);
    if (i < s.size() && s[i] == ',') ++i;
  }
  return spans;
}

std::vector<Row> read_json(const Source& src) {
  const std::string_view text = src.text;
  const std::string& path = src.path;
  // A .json file is one document: a bad byte or a syntax error anywhere makes every row
  // uncertain, so these stop the run even with on_bad_row=skip.
  if (std::string bad = src.check_utf8(0, text.size()); !bad.empty()) throw Error(bad);
  Json doc;
  try {
    doc = Json::parse(text);
  } catch (const Json::parse_error& e) {
    size_t at = std::min(e.byte > 0 ? e.byte - 1 : 0, text.size());
    fail(src.where(at), ": invalid JSON: ", json_reason(e.what()));
  }
  if (!doc.is_array() && !doc.is_object())
    fail(path,
         ": expected a JSON array of row objects, or an object mapping ids to row objects "
         "(like PubMedQA's ori_pqal.json), got ",
         doc.type_name());
  const bool keyed = doc.is_object();
  doc = Json();  // the rows are parsed span by span below, each knowing its line
  std::vector<Row> rows;
  for (const Span& span : top_level_spans(text)) {
    Row& row = rows.emplace_back();
    row.line = src.index.line(span.begin);
    row.fields = Json::parse(text.substr(span.begin, span.end - span.begin));
    if (!row.fields.is_object()) {
      row.error = keyed ? str_cat(path, ":", row.line, ": entry \"", span.key, "\" is ",
                                  row.fields.type_name(),
                                  "; a JSON object file must map ids to row objects")
                        : str_cat(path, ":", row.line, ": array element is ",
                                  row.fields.type_name(), ", expected a row object");
    } else if (keyed && !row.fields.contains("id")) {
      row.fields["id"] = span.key;  // keep the id (e.g. the PubMed id) usable as {id}
    }
  }
  return rows;
}

// Hugging Face datasets' json loader reads JSON Lines and JSON documents under either name,
// and recipes ship JSON Lines as dataset.json; so the layout comes from the content, not the
// extension. JSON Lines starts with an object followed by more values (one row per line),
// or is a single one-line object that is not PubMedQA's ori_pqal.json layout (an object
// mapping ids to row objects). Everything else is one document, an array of rows or the
// id-keyed object, and its errors name the line and column.
bool is_json_lines(std::string_view text) {
  const size_t i = skip_ws(text, 0);
  if (i >= text.size()) return true;  // blank: read_jsonl finds no rows and says so
  if (text[i] != '{') return false;
  const size_t end = skip_value(text, i);
  // Malformed text can end the scan anywhere; read_jsonl then names the bad line.
  if (skip_ws(text, end) < text.size()) return true;
  if (text.substr(i, end - i).find('\n') != std::string_view::npos) return false;
  const Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return !doc.is_object() || doc.empty() ||
         !std::all_of(doc.begin(), doc.end(), [](const Json& v) { return v.is_object(); });
}

// RFC 4180 with the leniency of Python's csv module: a quote inside an unquoted field is
// kept as a character; records end at LF or CRLF outside quotes; quoted fields may hold
// newlines and "" for a quote. A field count that differs from the header's is a bad row.
std::vector<Row> read_csv(const Source& src) {
  const std::string_view text = src.text;
  const std::string& path = src.path;
  struct Record {
    int64_t line = 0;
    size_t begin = 0, end = 0;
    std::vector<std::string> fields;
    std::string error;
  };
  std::vector<Record> records;
  size_t i = 0;
  int64_t line = 1;
  const size_t n = text.size();
  while (i < n) {
    Record rec;
    rec.line = line;
    rec.begin = i;
    std::string field;
    bool at_end = false;
    while (!at_end) {
      if (i < n && text[i] == '"') {  // quoted field
        const size_t open_at = i++;
        for (;;) {
          if (i >= n) {
            // The rest of the file is inside this field; nothing after it can be trusted.
            fail(src.where(open_at),
                 ": quoted field is never closed; expected a closing '\"' (write a quote "
                 "inside a quoted field as \"\")");
          }
          char c = text[i++];
          if (c == '\n') ++line;
          if (c != '"') {
            field += c;
          } else if (i < n && text[i] == '"') {
            field += '"';
            ++i;
          } else {
            break;
          }
        }
        if (i < n && !std::strchr(",\r\n", text[i]) && rec.error.empty()) {
          rec.error = str_cat(src.where(i), ": unexpected '", text[i],
                              "' after a closing quote; expected ',' or the end of the line");
        }
      }
      // Unquoted text (or, after a bad closing quote, the rest of the field).
      while (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') field += text[i++];
      rec.fields.push_back(std::move(field));
      field.clear();
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      at_end = true;
      if (i < n && text[i] == '\r') ++i;
      if (i < n && text[i] == '\n') ++i, ++line;
    }
    rec.end = i;
    bool blank = rec.fields.size() == 1 && rec.fields[0].empty() && rec.error.empty();
    if (!blank) records.push_back(std::move(rec));
  }
  if (records.empty())
    fail(path, ": no header row; expected a CSV header such as id,dialogue,summary");
  const Record& header = records[0];
  if (std::string bad = src.check_utf8(header.begin, header.end); !bad.empty()) throw Error(bad);
  if (!header.error.empty()) throw Error(header.error);
  std::string columns;
  for (size_t c = 0; c < header.fields.size(); ++c) {
    columns += (c ? "," : "") + header.fields[c];
    for (size_t d = 0; d < c; ++d)
      if (header.fields[d] == header.fields[c])
        fail(path, ":", header.line, ": column \"", header.fields[c],
             "\" appears twice in the header");
  }
  std::vector<Row> rows;
  for (size_t r = 1; r < records.size(); ++r) {
    Record& rec = records[r];
    Row& row = rows.emplace_back();
    row.line = rec.line;
    row.error = src.check_utf8(rec.begin, rec.end);
    if (row.error.empty()) row.error = std::move(rec.error);
    if (!row.error.empty()) continue;
    if (rec.fields.size() != header.fields.size()) {
      row.error = str_cat(path, ":", rec.line, ": row has ", rec.fields.size(),
                          " fields but the header has ", header.fields.size(), " (", columns,
                          "); quote fields that contain commas or newlines");
    } else {
      row.fields = Json::object();
      for (size_t c = 0; c < rec.fields.size(); ++c)
        row.fields[header.fields[c]] = std::move(rec.fields[c]);
    }
  }
  return rows;
}

// Plain text for continued pre-training: one document per block of lines, blocks separated
// by one or more blank lines (so a file without blank lines is a single document). Lines of a
// block keep their "\n" between them; CRLF becomes LF.
std::vector<Row> read_text(const Source& src) {
  const std::string_view text = src.text;
  std::vector<Row> rows;
  std::string block;
  int64_t block_line = 0;
  size_t block_begin = 0;
  auto flush = [&](size_t end) {
    if (block_line == 0) return;
    Row& row = rows.emplace_back();
    row.line = block_line;
    row.error = src.check_utf8(block_begin, end);
    if (row.error.empty()) {
      row.fields = Json{{"text", std::move(block)}};
    }
    block.clear();
    block_line = 0;
  };
  size_t pos = 0;
  for (int64_t line_no = 1; pos < text.size(); ++line_no) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(pos, end - pos);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (is_blank(line)) {
      flush(pos);
    } else {
      if (block_line == 0) {
        block_line = line_no;
        block_begin = pos;
      } else {
        block += '\n';
      }
      block += line;
    }
    pos = end + 1;
  }
  flush(text.size());
  return rows;
}

}  // namespace

size_t find_invalid_utf8(std::string_view s) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return i;  // a continuation byte without a lead, or 0xF8..0xFF
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::vector<Row> read_rows(const std::string& path, std::string_view format) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  const bool known = ext == ".jsonl" || ext == ".json" || ext == ".csv";
  if (!known && format != "text")
    fail(path, ": cannot tell the file type from the extension \"", ext, "\"; data.format=", format,
         " reads .jsonl (one object per line), .json (an array of objects) or .csv (with a "
         "header); plain text files are read only by data.format=text");
  const std::string data = read_file(path);
  // Editors on Windows and spreadsheet exports start files with a UTF-8 byte order mark.
  const size_t base = std::string_view(data).starts_with("\xEF\xBB\xBF") ? 3 : 0;
  const Source src(path, std::string_view(data).substr(base), base);
  const bool json = ext == ".jsonl" || ext == ".json";
  const bool lines = json && is_json_lines(src.text);
  std::vector<Row> rows = lines           ? read_jsonl(src)
                          : json          ? read_json(src)
                          : ext == ".csv" ? read_csv(src)
                                          : read_text(src);
  if (rows.empty())
    fail(path, ": no rows; ",
         json            ? "expected one JSON object per line, or a JSON array of objects"
         : ext == ".csv" ? "expected data rows after the header"
                         : "expected text (documents separated by blank lines)");
  return rows;
}

}  // namespace lathe
