#pragma once
// Running an external program (sbatch, squeue, scontrol, scancel, sacct) without a shell: the
// argument vector is passed to the program as is, so no argument is ever re-parsed or expanded.
#include <string>
#include <vector>

namespace kvwb::io {

/// What a finished program left: its exit code (128 + signal when killed by a signal) and
/// everything it wrote to stdout and stderr.
struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Runs `argv[0]` (looked up in PATH when it has no '/') with the arguments `argv`, stdin from
/// /dev/null, and waits for it. Throws Unavailable when the program cannot be started (not
/// installed: the message names it), InvalidArgument for an empty argv, IoError for pipe or
/// process failures.
ProcessResult run_process(const std::vector<std::string>& argv);

/// `argv` as one line a POSIX shell would split back into the same arguments (each argument
/// single-quoted unless it consists only of safe characters), for printing commands.
std::string shell_command_line(const std::vector<std::string>& argv);

/// `s` as a single POSIX shell word: unchanged when it holds only [A-Za-z0-9_./:=@%+,-] (and is not
/// empty), otherwise wrapped in single quotes with each ' written as '\''.
std::string shell_quote(const std::string& s);

/// Splits `text` into words as a POSIX shell would without expanding anything: whitespace
/// separates words; '...' keeps everything literally; "..." keeps everything but \" and \\;
/// a backslash outside quotes escapes the next character. Throws InvalidArgument for an
/// unterminated quote. split_shell_words(shell_command_line(v)) == v.
std::vector<std::string> split_shell_words(const std::string& text);

}  // namespace kvwb::io
