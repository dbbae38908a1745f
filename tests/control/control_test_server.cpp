// A control socket served for the tests (control_test.cpp): a real
// control::Server over a scripted Handler, the seam the serve loop
// implements, so the CLI clients and the server can be tested without the
// serve loop.
//
//   control_test_server PATH [GROUP] [--reload-fails]
//
// Devices: "scale" (serial, idle; its body succeeds: two records), "printer"
// (parallel, failed; its body fails: a record with code -5; reset clears
// it), "slow" (its body's reply comes 300 ms later). Prints "ready" once
// the socket is served, or "error: MESSAGE" and exits 1. Lines on stdin:
//   publish JSON        publish JSON to the monitors
// End of stdin stops it (the socket is removed).
#include "control_server.hpp"
#include "control_socket.hpp"
#include "logging.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <poll.h>
#include <string>
#include <unistd.h>
#include <vector>

using nlohmann::json;
using namespace devhost::control;

namespace {

using clock_type = std::chrono::steady_clock;

struct ScriptedHandler : Handler {
    bool reload_fails = false;
    std::string printer_state = "failed";
    struct Pending {
        clock_type::time_point when;
        std::function<void(json)> done;
        json result;
    };
    std::vector<Pending> pending;

    json list() override
    {
        return json::array({
            {{"device", "scale"}, {"class", "serial"}, {"state", "idle"}, {"generation", 3},
             {"last_success", "2026-11-30T12:00:00Z"}, {"bodies_ok", 41}, {"bodies_failed", 2},
             {"ticks_skipped", 1}, {"message", ""}},
            {{"device", "printer"}, {"class", "parallel"}, {"state", printer_state}, {"generation", 1},
             {"last_success", nullptr}, {"bodies_ok", 0}, {"bodies_failed", 5}, {"ticks_skipped", 0},
             {"message", printer_state == "failed" ? "restart budget spent" : ""}},
            {{"device", "slow"}, {"class", "loop"}, {"state", "idle"}, {"generation", 1},
             {"last_success", nullptr}, {"bodies_ok", 0}, {"bodies_failed", 0}, {"ticks_skipped", 0},
             {"message", ""}},
        });
    }

    static json record(const std::string &device, const std::string &step, int code)
    {
        return {{"device", device}, {"step", step}, {"code", code}, {"status", code ? "DEVHOST_E_IO" : "DEVHOST_OK"}};
    }

    void call(const std::string &device, std::function<void(json)> done) override
    {
        json result;
        if (device == "scale")
            result = {{"records", {record("scale", "read", 0), record("scale", "write", 0)}}};
        else if (device == "printer")
            result = {{"records", {record("printer", "write", -5)}}};
        else
            result = {{"records", {record(device, "transfer", 0)}}};
        const auto delay = std::chrono::milliseconds(device == "slow" ? 300 : 0);
        pending.push_back({clock_type::now() + delay, std::move(done), result});  // replied from the loop
    }

    json reset(const std::string &device) override
    {
        if (device != "printer" || printer_state != "failed")
            return {{"error", device + " is not failed"}};
        printer_state = "setup";
        return json::object();
    }

    json reload() override
    {
        if (reload_fails)
            return {{"error", "/etc/devhost/devhost.ini:3: [host] bogus: unknown key"}};
        return json::object();
    }

    void complete_due()
    {
        const auto now = clock_type::now();
        for (size_t i = 0; i < pending.size();) {
            if (pending[i].when > now) {
                i++;
                continue;
            }
            auto p = std::move(pending[i]);
            pending.erase(pending.begin() + static_cast<long>(i));
            p.done(p.result);
        }
    }
};

// One line of stdin: "publish JSON".
void command(Server &server, const std::string &line)
{
    if (line.rfind("publish ", 0) == 0)
        server.publish(json::parse(line.substr(8)));
}

}  // namespace

int main(int argc, char **argv)
{
    if (argc < 2) {
        std::cerr << "usage: control_test_server PATH [GROUP] [--reload-fails]\n";
        return 2;
    }
    devhost::logging::setup({});  // the server's log on stderr
    ScriptedHandler handler;
    ServerSettings settings;
    settings.path = argv[1];
    for (int i = 2; i < argc; i++) {
        const std::string arg = argv[i];
        if (arg == "--reload-fails") {
            handler.reload_fails = true;
        } else if (auto gid = group_id(arg)) {
            settings.group = gid;
            settings.group_name = arg;
        } else {
            std::cout << "error: no group '" << arg << "'" << std::endl;
            return 1;
        }
    }
    try {
        Server server(handler, settings);
        std::cout << "ready" << std::endl;
        std::string buffer;
        for (;;) {
            pollfd fds[2] = {{server.fd(), POLLIN, 0}, {0, POLLIN, 0}};
            ::poll(fds, 2, 20);
            server.process();
            handler.complete_due();
            if (!(fds[1].revents & (POLLIN | POLLHUP)))
                continue;
            char buf[4096];
            const ssize_t n = ::read(0, buf, sizeof buf);
            if (n <= 0)
                return 0;
            buffer.append(buf, static_cast<size_t>(n));
            for (size_t nl; (nl = buffer.find('\n')) != std::string::npos;) {
                command(server, buffer.substr(0, nl));
                buffer.erase(0, nl + 1);
            }
        }
    } catch (const ServerError &e) {
        std::cout << "error: " << e.what() << std::endl;
        return 1;
    }
}
