// Output folders (final/, a PEFT adapter, a merged model) written as a unit: everything goes
// into <dir>.tmp, which replaces <dir> only when complete. A full disk or any other failure
// removes the .tmp folder and leaves <dir> as it was, and the error names the file.
#pragma once
#include <filesystem>
#include <functional>
#include <string>

namespace lathe {

void write_folder_atomic(const std::string& dir,
                         const std::function<void(const std::filesystem::path& tmp)>& fill);

// Copies a small file (a tokenizer file) as write_file_atomic writes: a failure is a
// lathe::Error naming the destination, with the advice for a full disk.
void copy_file_into(const std::filesystem::path& src, const std::filesystem::path& dst);

}  // namespace lathe
