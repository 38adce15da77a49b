// The subcommands of the attnlab program. Each lives in its own file
// (cli/<name>_command.cpp), parses and validates its flags, and calls the
// library; none holds logic of its own worth testing apart from the CLI.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace attnlab::cli {

// Thrown by a command that ends early but cleanly (it has said why): main
// returns this exit status.
struct ExitStatus {
  int code;
};

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
