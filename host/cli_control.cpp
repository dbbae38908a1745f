#include "cli_control.hpp"

#include "cli.hpp"
#include "control_client.hpp"
#include "common/text.hpp"

#include <algorithm>
#include <csignal>
#include <iostream>

namespace devhost {

using nlohmann::json;

namespace {

constexpr int reply_timeout_ms = 30000;  // status, reset, reload; call waits for the body

void error_line(const std::string &message) { std::cerr << "devhost: error: " << message << "\n"; }

int failure_code(const control::Client &client)
{
    switch (client.failure()) {
    case control::Client::Failure::no_server:
        return exit_no_server;
    case control::Client::Failure::denied:
        return exit_denied;
    default:
        return exit_failed;
    }
}

// One call and its reply; nullopt after the error line, `code` the exit code.
std::optional<json> exchange(control::Client &client, const ControlCommand &cmd, const std::string &method,
                             const json &parameters, int timeout_ms, int &code)
{
    if (!client.connect(cmd.socket) || !client.send(method, parameters)) {
        error_line(client.error());
        code = failure_code(client);
        return std::nullopt;
    }
    auto reply = client.receive(timeout_ms);
    if (!reply) {
        error_line(client.error());
        code = failure_code(client);
        return std::nullopt;
    }
    if (reply->contains("error")) {
        const std::string error = reply->value("error", "");
        const std::string message = reply->value("parameters", json::object()).value("message", "");
        error_line(client.failure() == control::Client::Failure::denied ? client.error()
                   : error == control::errors::no_such_device ? message + " (see devhost status)"
                                                              : cmd.command + ": " + message);
        code = error == control::errors::no_such_device ? exit_no_device : failure_code(client);
        return std::nullopt;
    }
    return reply;
}

std::string field(const json &d, const char *key)
{
    auto it = d.find(key);
    if (it == d.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty()))
        return "-";
    return text::excerpt(it->is_string() ? it->get<std::string>() : it->dump(), 200);
}

// The devices as a table, one row each, columns as wide as their widest cell.
void print_table(const json &devices)
{
    const std::vector<std::pair<const char *, const char *>> columns = {
        {"DEVICE", "device"},         {"CLASS", "class"},       {"STATE", "state"},
        {"GEN", "generation"},        {"LAST SUCCESS", "last_success"}, {"OK", "bodies_ok"},
        {"FAILED", "bodies_failed"}, {"SKIPPED", "ticks_skipped"}, {"MESSAGE", "message"}};
    std::vector<std::vector<std::string>> rows(1);
    for (const auto &[title, key] : columns)
        rows[0].push_back(title);
    for (const auto &d : devices) {
        rows.emplace_back();
        for (const auto &[title, key] : columns)
            rows.back().push_back(field(d, key));
    }
    std::vector<size_t> width(columns.size(), 0);
    for (const auto &r : rows)
        for (size_t i = 0; i < r.size(); i++)
            width[i] = std::max(width[i], r[i].size());
    for (const auto &r : rows) {
        std::string line;
        for (size_t i = 0; i < r.size(); i++)
            line += i + 1 < r.size() ? r[i] + std::string(width[i] - r[i].size() + 2, ' ') : r[i];
        std::cout << line << "\n";
    }
}

int cmd_status(const ControlCommand &cmd)
{
    control::Client client;
    int code = exit_ok;
    auto reply = exchange(client, cmd, control::method_list, json::object(), reply_timeout_ms, code);
    if (!reply)
        return code;
    const json devices = (*reply)["parameters"].value("devices", json::array());
    if (cmd.json)
        std::cout << json{{"devices", devices}}.dump() << "\n";
    else
        print_table(devices);
    return exit_ok;
}

// The records of a call, one JSON line each; 1 when a step failed.
int cmd_call(const ControlCommand &cmd)
{
    control::Client client;
    int code = exit_ok;
    auto reply = exchange(client, cmd, control::method_call, {{"device", cmd.args[0]}}, -1, code);
    if (!reply)
        return code;
    size_t failed = 0;
    for (const auto &r : (*reply)["parameters"].value("records", json::array())) {
        std::cout << r.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
        failed += r.is_object() && r.value("code", 0) != 0;
    }
    if (const json &p = (*reply)["parameters"]; p.is_object() && p.value("records_cut", 0) > 0)
        std::cerr << "devhost: warning: call " << text::excerpt(cmd.args[0]) << ": " << p.value("records_cut", 0)
                  << " more record(s) are in serve's output, not in this reply (it carries at most 512 KiB of them)\n";
    if (failed) {
        error_line("call " + text::excerpt(cmd.args[0]) + ": " + std::to_string(failed) + " step(s) failed");
        return exit_failed;
    }
    return exit_ok;
}

int cmd_reset_or_reload(const ControlCommand &cmd)
{
    control::Client client;
    int code = exit_ok;
    const bool reset = cmd.command == "reset";
    auto reply = exchange(client, cmd, reset ? control::method_reset : control::method_reload,
                          reset ? json{{"device", cmd.args[0]}} : json::object(), reply_timeout_ms, code);
    if (!reply)
        return code;
    std::cout << (reset ? text::excerpt(cmd.args[0]) + ": reset" : std::string("reloaded")) << "\n";
    if (const json *p = reply->contains("parameters") ? &(*reply)["parameters"] : nullptr; p && p->is_object())
        for (const auto &w : p->value("warnings", json::array()))
            if (w.is_string())
                std::cerr << "devhost: warning: " << text::excerpt(w.get<std::string>(), 400) << "\n";
    return exit_ok;
}

// One monitor message for a reader: the devices' states first, then each
// state change as a line, each record as its JSON line.
void print_event(const json &p)
{
    if (p.contains("devices")) {
        for (const auto &d : p["devices"])
            std::cout << field(d, "device") << ": " << field(d, "state") << " (generation " << field(d, "generation")
                      << ")\n";
    } else if (p.value("event", "") == "state") {
        const std::string message = field(p, "message");
        std::cout << field(p, "device") << ": " << field(p, "state") << " (generation " << field(p, "generation")
                  << ")" << (message == "-" ? "" : ": " + message) << "\n";
    } else if (p.value("event", "") == "record") {
        std::cout << p["record"].dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    } else {
        std::cout << p.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    }
}

volatile std::sig_atomic_t monitor_stop = 0;

extern "C" void on_monitor_stop(int) { monitor_stop = 1; }

// Until SIGINT or SIGTERM (exit 0), or the server's end (exit 1).
int cmd_monitor(const ControlCommand &cmd)
{
    struct sigaction sa {};
    sa.sa_handler = on_monitor_stop;  // no SA_RESTART: poll returns
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    control::Client client;
    int code = exit_ok;
    auto reply = exchange(client, cmd, control::method_monitor, json::object(), reply_timeout_ms, code);
    while (reply) {
        const json &p = (*reply)["parameters"];
        if (cmd.json)
            std::cout << p.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
        else
            print_event(p);
        std::cout.flush();
        if (!std::cout)
            return exit_failed;  // nobody reads what we print
        reply = client.receive(-1, &monitor_stop);
        if (!reply && client.failure() == control::Client::Failure::interrupted)
            return exit_ok;
        if (reply && reply->contains("error")) {
            error_line("monitor: " + reply->value("parameters", json::object()).value("message", ""));
            return exit_failed;
        }
    }
    if (code == exit_ok) {  // the stream ended: the server stopped, or dropped us
        error_line(client.error());
        return exit_failed;
    }
    return code;
}

}  // namespace

bool is_control_command(const std::string &command)
{
    return command == "status" || command == "call" || command == "reset" || command == "reload" ||
           command == "monitor";
}

int run_control_command(const ControlCommand &cmd)
{
    const bool takes_device = cmd.command == "call" || cmd.command == "reset";
    if (takes_device && cmd.args.size() != 1) {
        error_line(cmd.command + " needs exactly one DEVICE (see devhost --help)");
        return exit_usage;
    }
    if (!takes_device && !cmd.args.empty()) {
        error_line(cmd.command + " takes no arguments (see devhost --help)");
        return exit_usage;
    }
    if (cmd.socket.empty() || cmd.socket.size() > 107) {
        error_line("--socket: expected a socket path of 1 to 107 bytes");
        return exit_usage;
    }
    if (cmd.json && cmd.command != "status" && cmd.command != "monitor") {
        error_line("--json: only status and monitor print JSON; " + cmd.command + " does not take it");
        return exit_usage;
    }
    if (cmd.command == "status")
        return cmd_status(cmd);
    if (cmd.command == "call")
        return cmd_call(cmd);
    if (cmd.command == "monitor")
        return cmd_monitor(cmd);
    return cmd_reset_or_reload(cmd);
}

}  // namespace devhost
