// devhost-bench [--smoke] [--reps N] [--json FILE] [--work DIR] [--only GROUP,...]
// Groups: serial, port, raw, files, startup, scale, serve, mqtt (in that order). Prints one line
// per figure and writes them all as JSON. bench/run.sh builds and runs it.
#include "bench.hpp"

#include <logging.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <sstream>

#include <sys/resource.h>

int main(int argc, char **argv)
{
    bench::Params p;
    p.bin_dir = DEVHOST_BENCH_BIN_DIR;
    p.plugin_dir = DEVHOST_BENCH_PLUGIN_DIR;
    p.source_dir = DEVHOST_BENCH_SOURCE_DIR;
    p.work_dir = bench::fs::path(DEVHOST_BENCH_BINARY_DIR) / "bench-work";
    bench::fs::path json = "bench-results.json";
    bool reps_given = false;
    if (argc == 3 && std::strcmp(argv[1], "--load-plugin") == 0) {
        // Internal: the start-up group's per-plugin load time, measured in a
        // process that has not loaded the plugin yet.
        try {
            std::printf("%.6f\n", bench::load_plugin_here(argv[2]));
            return 0;
        } catch (const std::exception &e) {
            std::fprintf(stderr, "devhost-bench: %s\n", e.what());
            return 1;
        }
    }
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "devhost-bench: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--smoke") {
            p.smoke = true;
        } else if (a == "--reps") {
            p.reps = std::atoi(value().c_str());
            reps_given = true;
            if (p.reps < 1) {
                std::fprintf(stderr, "devhost-bench: --reps needs a positive number\n");
                return 2;
            }
        } else if (a == "--json") {
            json = value();
        } else if (a == "--work") {
            p.work_dir = value();
        } else if (a == "--only") {
            std::stringstream list(value());
            std::string g;
            while (std::getline(list, g, ','))
                p.only.push_back(g);
        } else {
            std::fprintf(stderr,
                         "usage: devhost-bench [--smoke] [--reps N] [--json FILE] [--work DIR] "
                         "[--only serial,port,raw,files,startup,scale,serve,mqtt]\n");
            return 2;
        }
    }
    if (p.smoke && !reps_given)
        p.reps = 2;

    // 2048 devices take 2048 ptys on each side plus the host's own handles.
    rlimit nofile{};
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    devhost::logging::Settings log;
    log.level = "warn";
    devhost::logging::setup(log);

    bench::Report report;
    try {
        bench::fs::create_directories(p.work_dir);
        if (p.wants("serial"))
            bench::bench_serial(p, report);
        if (p.wants("port"))
            bench::bench_port(p, report);
        if (p.wants("raw"))
            bench::bench_raw(p, report);
        if (p.wants("files"))
            bench::bench_files(p, report);
        if (p.wants("startup"))
            bench::bench_startup(p, report);
        if (p.wants("scale"))
            bench::bench_scale(p, report);
        if (p.wants("serve"))
            bench::bench_serve(p, report);
        if (p.wants("mqtt"))
            bench::bench_mqtt(p, report);
        report.write_json(json, p);
        std::printf("figures written to %s\n", json.c_str());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "devhost-bench: %s\n", e.what());
        // The figures of the groups that finished are still worth keeping.
        try {
            report.write_json(json, p);
            std::fprintf(stderr, "devhost-bench: the figures taken before the failure written to %s\n", json.c_str());
        } catch (const std::exception &w) {
            std::fprintf(stderr, "devhost-bench: %s\n", w.what());
        }
        return 1;
    }
    return 0;
}
