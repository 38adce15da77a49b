// The subcommands of the attnlab program. Each lives in its own file
// (cli/<name>_command.cpp), parses and validates its flags, and calls the
// library; none holds logic of its own worth testing apart from the CLI.
#pragma once

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <stdexcept>
#include <string>
#include <utility>

namespace attnlab::cli {

// Thrown by a command that ends early but cleanly (it has said why): main
// returns this exit status.
struct ExitStatus {
  int code;
};

// A command line wrong in itself, whatever the files hold (flags that
// contradict each other, a flag out of place, an unknown preset): main says
// so and exits 2, as for CLI11's own checks. What only the files, the data or
// the machine refuse is an Error (exit 1).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename... Args>
void usage_check(bool ok, fmt::format_string<Args...> message, Args&&... args) {
  if (!ok) throw UsageError(fmt::format(message, std::forward<Args>(args)...));
}

// Each adds its subcommand to the app; the callback runs it.
void add_info_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
// command_line: the whole invocation, for the report.
void add_survey_command(CLI::App& app, const std::string& command_line);
void add_convert_command(CLI::App& app);
void add_sample_command(CLI::App& app);
void add_attention_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_plot_command(CLI::App& app);

// The default of --data: the bundled tiny-shakespeare, found next to the
// program (train/bundled_data.hpp). Throws Error, naming the places looked at
// and saying to pass --data, when it is not there.
std::string default_corpus();

}  // namespace attnlab::cli
