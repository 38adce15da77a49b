// attnlab: train, inspect, convert and sample tiny transformers from the command line.
//
// Every failure ends here: a library Error or a bad flag prints one line,
// "attnlab: error: <what went wrong>", and the program exits non-zero (1 for
// errors, 2 for bad usage). No crash, no stack trace.
#include <fmt/format.h>

#include <cstdio>
#include <exception>

#include "cli/commands.hpp"
#include "tensor/error.hpp"
#include "tensor/threads.hpp"

int main(int argc, char** argv) {
  attnlab::prefer_passive_openmp(argv);  // see tensor/threads.hpp: why not spin
  CLI::App app{"attnlab: train, inspect, convert and sample tiny transformers on a CPU", "attnlab"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "attnlab 0.1.0");
  attnlab::cli::add_train_command(app);
  attnlab::cli::add_eval_command(app);
  attnlab::cli::add_info_command(app);
  attnlab::cli::add_inspect_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "attnlab: error: %s\n", e.what());
    std::fprintf(stderr, "Run with --help for usage.\n");
    return 2;
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
