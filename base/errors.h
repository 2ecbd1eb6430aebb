#pragma once
// One error hierarchy for every module (decisions.md #7). Each type carries a stable code string
// that the CLI prints as `error[CODE]: message` and result stores keep verbatim.
#include <stdexcept>
#include <string>

namespace kvwb {

/// Base of every user- or environment-facing error. `code()` is stable across versions.
class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

#define KVWB_DEFINE_ERROR(Name, Code)                                          \
  class Name : public Error {                                                  \
   public:                                                                     \
    explicit Name(const std::string& message) : Error(Code, message) {}        \
  };

KVWB_DEFINE_ERROR(InvalidArgument, "INVALID_ARGUMENT")
KVWB_DEFINE_ERROR(FormatError, "FORMAT_ERROR")
KVWB_DEFINE_ERROR(Unsupported, "UNSUPPORTED")
KVWB_DEFINE_ERROR(Unavailable, "UNAVAILABLE")
KVWB_DEFINE_ERROR(Fp16Range, "FP16_RANGE")
KVWB_DEFINE_ERROR(CudaError, "CUDA_ERROR")
KVWB_DEFINE_ERROR(Cancelled, "CANCELLED")
KVWB_DEFINE_ERROR(NonFiniteInput, "NON_FINITE_INPUT")
KVWB_DEFINE_ERROR(CaptureChanged, "CAPTURE_CHANGED")
KVWB_DEFINE_ERROR(StoreMismatch, "STORE_MISMATCH")    // result stores that cannot be merged
KVWB_DEFINE_ERROR(StoreIncomplete, "STORE_INCOMPLETE")  // a store lacks cells of its grid
KVWB_DEFINE_ERROR(CellsFailed, "CELLS_FAILED")          // sweep --fail-on-error: cells stored as failures
#undef KVWB_DEFINE_ERROR

/// An I/O failure on a named file (open, read, write, rename). The message names the path.
class IoError : public Error {
 public:
  IoError(std::string path, const std::string& message)
      : Error("IO_ERROR", path + ": " + message), path_(std::move(path)) {}
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

}  // namespace kvwb
