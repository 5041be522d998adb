// ledgerctl: the operator's command line. See server/ledgerctl.h for how subcommands are laid
// out and what the exit codes mean.
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "server/ledgerctl.h"

namespace {

using namespace ledger::ctl;

// Every subcommand, entries of the same name from different files merged into one.
std::vector<Command> AllCommands() {
  std::vector<Command> merged;
  auto add = [&merged](const std::vector<Command>& table) {
    for (const Command& command : table) {
      Command* existing = nullptr;
      for (Command& known : merged) {
        if (known.name == command.name) existing = &known;
      }
      if (existing == nullptr) {
        merged.push_back(command);
        continue;
      }
      if (command.offline != nullptr) existing->offline = command.offline;
      if (command.remote != nullptr) existing->remote = command.remote;
    }
  };
  add(OfflineCommands());
  add(RemoteCommands());
  add(AuditCommands());
  return merged;
}

std::string Usage(const std::vector<Command>& commands) {
  std::string text =
      "usage: ledgerctl [--data-dir DIR | --url URL [--token TOKEN]] [--json] COMMAND [ARGS]\n\n"
      "Commands (offline: on a data directory no ledgerd holds open, default ./data;\n"
      "remote: against a running ledgerd, with --url):\n";
  for (const Command& command : commands) {
    const char* where = command.offline != nullptr && command.remote != nullptr ? "both"
                        : command.offline != nullptr                            ? "offline"
                                                                                : "remote";
    text += fmt::format("  {:<34} {} [{}]\n", command.synopsis, command.summary, where);
  }
  text +=
      "\nOptions:\n"
      "  --data-dir DIR   the ledger's data directory (offline commands)\n"
      "  --url URL        a running ledgerd, e.g. http://127.0.0.1:8080 (remote commands)\n"
      "  --token TOKEN    the bearer token for --url (default: $LEDGER_TOKEN)\n"
      "  --json           machine-readable output\n"
      "  --help           this help\n\n"
      "Exit codes: 0 ok; 1 the answer is no (broken chain, differences, unknown order);\n"
      "2 bad usage; 3 the data could not be read, the server could not be reached, or the\n"
      "data given cannot answer; 4 recorded but not carried out yet (revoke: pending).\n";
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<Command> commands = AllCommands();
  Options options;
  if (const char* token = std::getenv("LEDGER_TOKEN"); token != nullptr) options.token = token;
  bool data_dir_given = false;
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool global = words.empty();
    if (arg == "--help" || arg == "-h") {
      std::fputs(Usage(commands).c_str(), stdout);
      return 0;
    }
    if (global && (arg == "--data-dir" || arg == "--url" || arg == "--token")) {
      if (i + 1 >= argc) return Fail(kExitUsage, fmt::format("{} needs a value", arg));
      std::string value = argv[++i];
      if (arg == "--data-dir") {
        // As ledgerd refuses it: "" would name "/log", the root's.
        if (value.empty()) return Fail(kExitUsage, "--data-dir must not be empty");
        options.data_dir = std::move(value);
        data_dir_given = true;
      } else if (arg == "--url") {
        while (!value.empty() && value.back() == '/') value.pop_back();
        if (value.empty()) return Fail(kExitUsage, "--url needs a URL");
        if (auto problem = UrlProblem(value)) return Fail(kExitUsage, "--url: " + *problem);
        options.url = std::move(value);
      } else {
        options.token = std::move(value);
      }
    } else if (arg == "--json") {
      options.json = true;
    } else {
      words.emplace_back(arg);
    }
  }
  if (words.empty()) {
    std::fputs(Usage(commands).c_str(), stderr);
    return kExitUsage;
  }
  if (data_dir_given && !options.url.empty()) {
    return Fail(kExitUsage, "--data-dir and --url exclude each other");
  }
  const std::string& name = words.front();
  options.arguments.assign(words.begin() + 1, words.end());
  for (const Command& command : commands) {
    if (command.name != name) continue;
    const bool remote = !options.url.empty();
    const CommandFn run = remote ? command.remote : command.offline;
    if (run == nullptr) {
      return Fail(kExitUsage, remote ? fmt::format("{} works offline only (drop --url)", name)
                                     : fmt::format("{} needs a running ledgerd (--url URL)", name));
    }
    // The commands handle what they expect as values; an exception here is an answer or a file
    // no check foresaw (or a bug). It ends the command with a message, never std::terminate.
    try {
      return run(options, options.arguments);
    } catch (const std::exception& error) {
      return Fail(kExitData,
                  fmt::format("{}: stopped by an unexpected failure: {}", name, error.what()));
    }
  }
  return Fail(kExitUsage, fmt::format("unknown command '{}' (see ledgerctl --help)", name));
}
