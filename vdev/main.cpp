// devhost-vdev's entry: parses the command line, arranges the stop signal,
// and runs the requested kind. See vdev.hpp for the protocol.
#include "vdev.hpp"

#include "common/text.hpp"

#include <devhost/unique_fd.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace devhost::vdev {

namespace {

std::vector<Kind> &registry()
{
    static std::vector<Kind> all;
    return all;
}

void usage(std::ostream &out)
{
    out << "usage: devhost-vdev KIND [--name=NAME] [--key=value ...]\n"
           "Runs a virtual device peer until SIGTERM; prints \"READY <path>\" once it serves.\n\n"
           "DIR below is $DEVHOST_VDEV_DIR (the private directory `devhost run` gives the peers of\n"
           "one run), else /run/devhost/vdev. `devhost-vdev --kinds` lists each kind and its\n"
           "option keys, one kind per line; `devhost-vdev --describe-kinds` describes them as one\n"
           "JSON document (keys, types, required), which `devhost check` reads.\n\n"
           "kinds:\n";
    auto sorted = kinds();
    std::sort(sorted.begin(), sorted.end(),
              [](const Kind &a, const Kind &b) { return std::string_view(a.name) < b.name; });
    for (const auto &k : sorted)
        out << "  " << k.name << "\n      " << k.help << "\n      options: " << options_line(k) << "\n";
}

}  // namespace

Registrar::Registrar(const Kind &kind) { registry().push_back(kind); }

const std::vector<Kind> &kinds() { return registry(); }

std::string Context::get(const std::string &key, const std::string &fallback) const
{
    used.push_back(key);
    auto it = options.find(key);
    return it == options.end() ? fallback : it->second;
}

namespace {

// The option `key` read by `parse` (which returns an empty optional for a
// value it does not take), or `fallback` when the option is absent or
// empty. A value `parse` refuses is a usage error "--KEY=VALUE: expected
// WHAT".
template <class T, class Parse>
T parsed(const Context &ctx, const std::string &key, T fallback, Parse parse, const char *expected)
{
    const std::string v = ctx.get(key);
    if (v.empty())
        return fallback;
    const std::optional<T> value = parse(v);
    if (!value)
        throw std::invalid_argument("--" + key + "=" + v + ": expected " + expected);
    return *value;
}

}  // namespace

long long Context::get_int(const std::string &key, long long fallback) const
{
    // Whole string, decimal or 0x hex, within 64 bits: as the config reads
    // integers (no octal, no trailing junk, no silent wrap).
    return parsed<long long>(
        *this, key, fallback, [](const std::string &v) -> std::optional<long long> { return text::parse_int(v); },
        "an integer");
}

double Context::get_seconds(const std::string &key, double fallback) const
{
    // Exactly the durations the config takes; never inf, NaN or negative.
    auto seconds = [&](const std::string &v) -> std::optional<double> {
        auto ms = text::parse_duration_ms(v);
        if (!ms)
            return std::nullopt;
        if (*ms > 3600 * 1000)
            throw std::invalid_argument("--" + key + "=" + v + ": longer than 1h, the longest a peer waits");
        return static_cast<double>(*ms) / 1000.0;
    };
    return parsed<double>(*this, key, fallback, seconds, "a duration like 250ms or 2s");
}

bool Context::get_bool(const std::string &key, bool fallback) const
{
    auto boolean = [](const std::string &v) -> std::optional<bool> {
        if (v == "true" || v == "yes" || v == "on" || v == "1")
            return true;
        if (v == "false" || v == "no" || v == "off" || v == "0")
            return false;
        return std::nullopt;
    };
    return parsed<bool>(*this, key, fallback, boolean, "true or false");
}

void Context::reject_unknown() const
{
    for (const auto &[key, value] : options)
        if (std::find(used.begin(), used.end(), key) == used.end())
            throw std::invalid_argument("unknown option --" + key + " (see devhost-vdev --help)");
}

void Context::ready(const std::string &path) const
{
    std::printf("READY %s\n", path.c_str());
    std::fflush(stdout);
}

void Context::log(const std::string &line) const
{
    std::fprintf(stderr, "devhost-vdev[%s]: %s\n", name.c_str(), line.c_str());
}

}  // namespace devhost::vdev

int main(int argc, char **argv)
{
    using namespace devhost::vdev;
    if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
        usage(argc < 2 ? std::cerr : std::cout);
        return argc < 2 ? 2 : 0;
    }
    if (std::string_view(argv[1]) == "--kinds") {
        list_kinds(std::cout);
        return 0;
    }
    if (std::string_view(argv[1]) == "--describe-kinds") {
        describe_kinds(std::cout);
        return 0;
    }
    Context ctx;
    ctx.kind = argv[1];
    const Kind *kind = nullptr;
    for (const auto &k : kinds())
        if (ctx.kind == k.name)
            kind = &k;
    if (!kind) {
        std::cerr << "devhost-vdev: unknown kind '" << ctx.kind << "' (see devhost-vdev --help)\n";
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        std::string arg = argv[i];
        auto eq = arg.find('=');
        if (arg.rfind("--", 0) != 0 || eq == std::string::npos || eq == 2) {
            std::cerr << "devhost-vdev: argument '" << arg << "': expected --key=value\n";
            return 2;
        }
        ctx.options[arg.substr(2, eq - 2)] = arg.substr(eq + 1);
    }
    ctx.name = ctx.get("name", ctx.kind);
    if (const char *dir = std::getenv("DEVHOST_VDEV_DIR"))
        ctx.run_dir = dir;

    // Stop on SIGTERM/SIGINT/SIGHUP (a closed terminal must not kill a peer
    // before it undoes what it set up, e.g. a loop device), and when the
    // parent (the host) dies.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1)
        return 0;
    const devhost::UniqueFd stop_fd(signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK));
    ctx.stop_fd = stop_fd.get();
    if (!stop_fd) {
        std::perror("devhost-vdev: signalfd");
        return 1;
    }
    try {
        return kind->run(ctx);
    } catch (const std::invalid_argument &e) {
        std::cerr << "devhost-vdev: " << ctx.kind << ": " << e.what() << "\n";
        return 2;
    } catch (const std::exception &e) {
        std::cerr << "devhost-vdev: " << ctx.kind << ": " << e.what() << "\n";
        return 1;
    }
}
