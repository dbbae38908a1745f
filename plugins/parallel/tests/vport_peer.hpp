// A devhost-vdev parallel-port peer for the parallel plugin's tests: a real
// process serving a real Unix socket, stopped cleanly at the end.
#pragma once

#include "devhost_test.hpp"

#include <devhost/vport_wire.h>

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <exception>
#include <memory>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace devhost::test {

// A devhost-vdev parallel-port serving vport:NAME in a private socket
// directory (DEVHOST_VPORT_DIR is set for this process too, so the plugin
// finds it).
class VPort {
public:
    explicit VPort(const std::string &name, std::vector<std::string> args = {}) : name_(name)
    {
        vport_dir_ = dir_ / "vport";
        setenv(VPORT_DIR_ENV, vport_dir_.c_str(), 1);
        output_ = dir_ / "printer.out";
        std::vector<std::string> argv{(bin_dir() / "devhost-vdev").string(), "parallel-port", "--name=" + name,
                                      "--output=" + output_.string()};
        argv.insert(argv.end(), args.begin(), args.end());
        ProcessOptions options;
        options.env[VPORT_DIR_ENV] = vport_dir_.string();
        child_ = std::make_unique<Child>(argv, dir_.path(), options);
        bool ready = child_->wait_for_output("READY vport:" + name + "\n", 10s);
        INFO(child_->err());
        REQUIRE(ready);
    }
    // Stops the peer; it must end cleanly (exit 0 on SIGTERM: under the
    // sanitizers, a leak or an error in the peer would show here).
    ~VPort()
    {
        if (stopped_)
            child_->signal(SIGCONT);
        child_->signal(SIGTERM);
        ProcessResult r = child_->wait(5s);
        if (std::uncaught_exceptions() == 0) {
            INFO("devhost-vdev parallel-port --name=" << name_ << ": " << child_->err());
            CHECK(r.exit_code == 0);
        }
    }
    std::string path() const { return "vport:" + name_; }
    std::string printed() const { return read_file(output_); }
    const fs::path &dir() const { return dir_.path(); }
    const fs::path &vport_dir() const { return vport_dir_; }
    Child &child() { return *child_; }
    // Stops the peer (SIGSTOP), so that it never answers, and waits until the
    // kernel shows it stopped (state T in /proc/PID/stat). The destructor
    // lets it go on (SIGCONT) before ending it.
    void stop()
    {
        child_->signal(SIGSTOP);
        stopped_ = true;
        const auto until = std::chrono::steady_clock::now() + 5s;
        std::string state;
        while (std::chrono::steady_clock::now() < until) {
            std::string stat = read_file("/proc/" + std::to_string(child_->pid()) + "/stat");
            size_t paren = stat.rfind(')');
            state = paren != std::string::npos && paren + 2 < stat.size() ? stat.substr(paren + 2, 1) : "";
            if (state == "T")
                return;
            std::this_thread::sleep_for(1ms);
        }
        FAIL("devhost-vdev did not stop (state '" << state << "')");
    }

    // Lets a stopped peer go on (SIGCONT).
    void resume()
    {
        child_->signal(SIGCONT);
        stopped_ = false;
    }

private:
    bool stopped_ = false;
    std::string name_;
    TempDir dir_;
    fs::path vport_dir_, output_;
    std::unique_ptr<Child> child_;
};

}  // namespace devhost::test
