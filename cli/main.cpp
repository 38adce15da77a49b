// attnlab: train, inspect, convert and sample tiny transformers from the command line.
//
// Every failure ends here: a library Error or a bad flag prints one line,
// "attnlab: error: <what went wrong>", and the program exits non-zero (1 for
// errors, 2 for bad usage: the table is in cli/README.md). No crash, no
// stack trace.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "attnlab/tensor/error.hpp"
#include "attnlab/tensor/spelling.hpp"
#include "attnlab/train/communicator.hpp"
#include "attnlab/version.hpp"
#include "cli/commands.hpp"
#include "cli/openmp_wait.hpp"

namespace {

// The commands a user may type; hidden ones (group "", such as survey's own
// survey-decode) are the program's business and never named.
std::vector<std::string> visible_commands(CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands({}))
    if (!sub->get_group().empty()) names.push_back(sub->get_name());
  return names;
}

// The first "--flag" or "-f" of the command line that `command` (or the
// program itself) does not know, with the closest long flag it does know: ""
// when every flag is known (CLI11 complained of something else).
std::string unknown_flag_message(CLI::App& app, CLI::App& command, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;  // what follows is not flags
    // A short flag is "-x" or "-xVALUE"; "-1" and "-.5" are values.
    const bool is_short = arg.size() >= 2 && arg[0] == '-' && std::isalpha(uint8_t(arg[1]));
    if (arg.rfind("--", 0) != 0 && !is_short) continue;
    const std::string name = is_short ? arg.substr(0, 2) : arg.substr(0, arg.find('='));
    if (command.get_option_no_throw(name) || app.get_option_no_throw(name)) continue;
    if (is_short)
      return fmt::format("unknown flag {} of {} (attnlab {} --help lists its flags)", name,
                         command.get_name(), command.get_name());
    std::vector<std::string> flags;
    for (const CLI::Option* opt : command.get_options())
      if (!opt->get_group().empty())  // hidden ones (deprecated spellings) are not offered
        for (const std::string& l : opt->get_lnames()) flags.push_back("--" + l);
    const auto best = attnlab::closest_spelling(name, flags);
    return best ? fmt::format("unknown flag {} of {} (did you mean {}?)", name, command.get_name(),
                              *best)
                : fmt::format("unknown flag {} of {} (attnlab {} --help lists its flags)", name,
                              command.get_name(), command.get_name());
  }
  return "";
}

// CLI11's message, or a better one: an unknown command or flag gets the
// closest known one ("did you mean …"), an option before the command says so.
std::string parse_error_message(CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  const std::vector<CLI::App*> given = app.get_subcommands();
  if (!given.empty()) {
    const std::string flag = unknown_flag_message(app, *given.front(), argc, argv);
    return flag.empty() ? e.what() : flag;
  }
  // CLI11 takes an unknown command, or an option before the command, for a
  // missing command ("A subcommand is required"): name what was given.
  if (argc < 2) return e.what();
  const std::vector<std::string> commands = visible_commands(app);
  if (argv[1][0] == '-')
    return fmt::format(
        "'{}' is not an option of attnlab itself: give a command first (the commands are {})",
        argv[1], fmt::join(commands, ", "));
  if (const auto best = attnlab::closest_spelling(argv[1], commands))
    return fmt::format("unknown command '{}' (did you mean '{}'?)", argv[1], *best);
  return fmt::format("unknown command '{}' (the commands are {})", argv[1],
                     fmt::join(commands, ", "));
}

// --threads N past this machine's cores is allowed (the results never depend
// on the thread count) but slow: the threads past the cores wait for each
// other at every parallel region. A 2-step baby run on 2 cores took 5.2 s
// with 2 threads, 6.9 s with 16 and 4 min 45 s with 1000. Said once, before
// the command runs; not with --quiet, and not under mpirun, whose ranks may
// share the cores or sit on other machines.
void note_threads_beyond_cores(const CLI::App& command) {
  const CLI::Option* threads = command.get_option_no_throw("--threads");
  const CLI::Option* quiet = command.get_option_no_throw("--quiet");
  if (threads == nullptr || threads->count() == 0 || (quiet != nullptr && quiet->count() > 0) ||
      attnlab::launched_ranks() > 0)
    return;
  const auto n = threads->as<int64_t>();
  const unsigned cores = std::thread::hardware_concurrency();
  if (cores == 0 || n <= static_cast<int64_t>(cores)) return;
  std::fprintf(stderr,
               "attnlab: note: --threads %lld is more than this machine's %u cores: the threads "
               "past them only wait for each other (slower; the results are the same)\n",
               static_cast<long long>(n), cores);
}

// Every usage error ends the same way: one line, a pointer to --help, exit 2.
int usage_error(const std::string& message) {
  std::fprintf(stderr, "attnlab: error: %s\n", message.c_str());
  std::fprintf(stderr, "Run with --help for usage.\n");
  return 2;
}

}  // namespace

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
  // The program's own parse-complete callback runs once the whole command
  // line is accepted (after every usage error) and before the command does.
  app.parse_complete_callback([&app] {
    for (const CLI::App* command : app.get_subcommands())
      if (!command->get_group().empty())  // survey's hidden worker: survey has said it
        note_threads_beyond_cores(*command);
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(parse_error_message(app, e, argc, argv));
  } catch (const attnlab::cli::UsageError& e) {
    return usage_error(e.what());
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
