// attnlab: train, inspect, convert and sample tiny transformers from the command line.
//
// Every failure ends here: a library Error or a bad flag prints one line,
// "attnlab: error: <what went wrong>", and the program exits non-zero (1 for
// errors, 2 for bad usage). No crash, no stack trace.
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <string>

#include "attnlab/tensor/error.hpp"
#include "attnlab/train/communicator.hpp"
#include "attnlab/version.hpp"
#include "cli/commands.hpp"
#include "cli/openmp_wait.hpp"

int main(int argc, char** argv) {
  attnlab::cli::bound_openmp_spinning(argv);  // how idle threads wait: cli/openmp_wait.hpp
  CLI::App app{"attnlab: train, inspect, convert and sample tiny transformers on a CPU", "attnlab"};
  app.require_subcommand(1);
  app.set_version_flag("--version", fmt::format("attnlab {} (commit {})", attnlab::version(),
                                                attnlab::git_commit()));
  attnlab::cli::add_tokenize_command(app);
  attnlab::cli::add_train_command(app);
  attnlab::cli::add_eval_command(app);
  std::string command_line = "attnlab";
  for (int i = 1; i < argc; ++i) command_line += std::string(" ") + argv[i];
  attnlab::cli::add_survey_command(app, command_line);
  attnlab::cli::add_info_command(app);
  attnlab::cli::add_inspect_command(app);
  attnlab::cli::add_convert_command(app);
  attnlab::cli::add_sample_command(app);
  attnlab::cli::add_attention_command(app);
  attnlab::cli::add_plot_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string message = e.what();
    // CLI11 takes an unknown command, or an option before the command, for
    // a missing command ("A subcommand is required"): name what was given.
    if (argc > 1 && app.get_subcommands().empty()) {
      std::string names;
      for (const CLI::App* sub : app.get_subcommands({}))
        names += (names.empty() ? "" : ", ") + sub->get_name();
      message = argv[1][0] == '-'
                    ? fmt::format(
                          "'{}' is not an option of attnlab itself: give a command first "
                          "(the commands are {})",
                          argv[1], names)
                    : fmt::format("unknown command '{}' (the commands are {})", argv[1], names);
    }
    std::fprintf(stderr, "attnlab: error: %s\n", message.c_str());
    std::fprintf(stderr, "Run with --help for usage.\n");
    return 2;
  } catch (const attnlab::ErrorOnEveryRank& e) {  // of train: reported by rank 0, if any
    if (e.report()) std::fprintf(stderr, "attnlab: error: %s\n", e.what());
    return 1;
  } catch (const attnlab::cli::ExitStatus& e) {
    return e.code;
  } catch (const attnlab::Error& e) {
    std::fprintf(stderr, "attnlab: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "attnlab: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnlab: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
