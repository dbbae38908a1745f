// The command line's help texts: the options devhost parses, the global
// help (`devhost --help`) and one help per command (`devhost CMD --help`,
// `devhost help CMD`), each with its usage, what it does, its options and
// its exit codes. doc/man/devhost.1 says the same at length; a test checks
// that every command and option printed here is in it.
#pragma once

#include <boost/program_options/options_description.hpp>

#include <ostream>
#include <string>

namespace devhost {

// Every option of every command, for parsing the command line (options are
// accepted anywhere on it) and for the global help.
boost::program_options::options_description cli_options();

// `devhost --help`: usage, commands, every option, exit codes, signals.
void print_global_help(std::ostream &out);

// The short usage printed on stderr when no command is given.
void print_short_usage(std::ostream &out);

// `devhost CMD --help` and `devhost help CMD`: false, printing nothing, when
// there is no command CMD.
bool print_command_help(const std::string &command, std::ostream &out);

// The commands, as error messages list them: "run, check, plugins, probe, scan or reset-failed".
extern const char *const command_list;

}  // namespace devhost
