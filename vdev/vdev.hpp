// devhost-vdev: virtual device peers for tests, the default config and OEMs
// testing their plugins. One binary, one "kind" per peer (serial-echo,
// serial-modem, ...); each kind lives in its own vdev/<kind>.cpp and
// registers itself with DEVHOST_VDEV_KIND.
//
// Protocol with whoever starts it (the host, for a config's [virtual NAME]
// section, or a test):
//   devhost-vdev KIND --name=NAME [--key=value ...]
//   - once it serves, it prints exactly one line "READY <path>\n" on stdout,
//     where <path> is what a device's path should be (a pty symlink, a
//     socket, an image file, vport:NAME ...); then it prints nothing more on
//     stdout;
//   - it runs until SIGTERM or SIGINT, or its parent dies, then removes what
//     it created and exits 0;
//   - a bad option or setup failure: one line "devhost-vdev: ..." on stderr
//     and exit 2 (usage) or 1 (runtime), before READY.
//   - diagnostics go to stderr, one line each, prefixed "devhost-vdev[NAME]: ".
//   devhost-vdev --describe-kinds
//   - prints one JSON document describing every kind and its options (the
//     format is in kinds.cpp), from the tables below; `devhost check` reads
//     it to check [virtual] sections. `--kinds` and `--help` are for people.
#pragma once

#include <iosfwd>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace devhost::vdev {

struct Context {
    std::string kind;
    std::string name;                           // --name, default: the kind
    std::map<std::string, std::string> options; // --key=value (without --)
    int stop_fd = -1;  // readable when the peer must stop: poll it, never read it
    // $DEVHOST_VDEV_DIR: the private directory `devhost run` gives the peers
    // of one run for their endpoints; empty when unset (standalone use).
    std::string run_dir;

    // Where a peer puts its endpoint by default: run_dir, else /run/devhost/vdev.
    std::string dir() const { return run_dir.empty() ? "/run/devhost/vdev" : run_dir; }

    // The option's value, or `fallback` when absent.
    std::string get(const std::string &key, const std::string &fallback = {}) const;
    // get() and the helpers below mark `key` as understood.
    long long get_int(const std::string &key, long long fallback) const;
    double get_seconds(const std::string &key, double fallback) const;  // "250ms", "2s"
    bool get_bool(const std::string &key, bool fallback) const;
    // Throws std::invalid_argument naming any option nobody asked for with
    // get*(); call it after reading options, before ready().
    void reject_unknown() const;
    // Prints READY <path> and flushes; call exactly once.
    void ready(const std::string &path) const;
    // One diagnostic line on stderr.
    void log(const std::string &line) const;

    mutable std::vector<std::string> used;
};

// A peer's main loop: set up, call ctx.ready(path), serve until stop_fd is
// readable, clean up. Returns the exit code. Throw std::invalid_argument for
// bad options (exit 2) and std::runtime_error for failures (exit 1).
using Runner = int (*)(Context &ctx);

// One --key=value option of a kind, as data: `devhost-vdev --help` and
// `--kinds` show it to people, `--describe-kinds` (kinds.cpp) hands it to
// `devhost check`, which checks [virtual] sections' keys against it.
struct Option {
    const char *key;
    const char *value;      // the value as --help shows it: "D", "PATH (default: DIR/NAME)"
    const char *type;       // how the peer reads it: "string" (Context::get), "int" (get_int),
                            // "bool" (get_bool) or "duration" (get_seconds)
    bool required = false;  // the peer refuses to start without it
};

struct Kind {
    const char *name;
    const char *help;             // one line
    std::vector<Option> options;  // every key it reads besides --name, in the order --help lists them
    Runner run;
};

// The options of every serial peer (serial_peer.cpp reads them), after a
// serial kind's own.
std::vector<Option> serial_peer_options(std::vector<Option> own = {});

// What kinds.cpp prints for `devhost-vdev --help`, `--kinds` and
// `--describe-kinds`.
std::string options_line(const Kind &kind);     // "--key=value ..." as --help shows it
void list_kinds(std::ostream &out);             // --kinds: "KIND name KEY...", one kind a line
void describe_kinds(std::ostream &out);         // --describe-kinds: one JSON document

// Registers a kind at static-initialisation time.
struct Registrar {
    explicit Registrar(const Kind &kind);
};

const std::vector<Kind> &kinds();

}  // namespace devhost::vdev

#define DEVHOST_VDEV_CONCAT2(a, b) a##b
#define DEVHOST_VDEV_CONCAT(a, b) DEVHOST_VDEV_CONCAT2(a, b)
#define DEVHOST_VDEV_KIND(...) \
    static const ::devhost::vdev::Registrar DEVHOST_VDEV_CONCAT(vdev_registrar_, __LINE__){ \
        ::devhost::vdev::Kind{__VA_ARGS__}}
