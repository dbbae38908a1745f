// Tests that need no device: negotiation (MUST-1), the descriptor (MUST-2),
// the host's state checks (MUST-4).
#include "suite.hpp"

#include "device.hpp"
#include "faults.hpp"
#include "logging.hpp"
#include "options.hpp"

#include <boost/dll/shared_library.hpp>

#include <cstdio>
#include <set>

namespace devhost::conformance {

namespace {

struct Answer {
    devhost_status status = DEVHOST_OK;
    uint32_t version = 0;
    const devhost_plugin_descriptor *descriptor = nullptr;
    std::string message;
};

// Negotiates as a host offering `offered` would, its services table as
// large as that host's.
Answer negotiate_as(const Plugin &plugin, uint32_t offered)
{
    static devhost_host_services services;
    services = *logging::host_services();
    services.host_abi_version = offered;
    if (offered < DEVHOST_MAKE_VERSION(1, 1))
        services.struct_size = static_cast<uint32_t>(offsetof(devhost_host_services, deadline_ns));
    auto entry = plugin.library()->get<devhost_status(devhost_negotiation *)>(DEVHOST_ENTRY_POINT_NAME);
    devhost_error err{};
    err.struct_size = sizeof err;
    devhost_negotiation n{};
    n.struct_size = sizeof n;
    n.host_abi_version = offered;
    n.host_min_abi_version = DEVHOST_MAKE_VERSION(DEVHOST_VERSION_MAJOR(offered), 0);
    n.services = &services;
    n.error = &err;
    Answer a;
    a.status = entry(&n);
    a.version = n.plugin_abi_version;
    a.descriptor = n.descriptor;
    err.message[sizeof err.message - 1] = '\0';
    a.message = err.message;
    return a;
}

// MUST-1: at every minor from 1.0 to the one the plugin claims, an answer no
// newer than offered (or a refusal with a reason); another major refused.
Result negotiation(const Context &ctx)
{
    const Plugin &p = *ctx.plugin;
    Result r;
    const uint32_t claimed = DEVHOST_VERSION_MINOR(p.abi_version());
    for (uint32_t minor = 0; minor <= claimed; minor++) {
        const uint32_t offered = DEVHOST_MAKE_VERSION(1, minor);
        Answer a = negotiate_as(p, offered);
        const std::string at = "offered ABI 1." + std::to_string(minor);
        if (a.status != DEVHOST_OK) {
            if (a.message.empty())
                return Result::fail(at + ": refused with " + devhost_status_name(a.status) + " and no message");
            r.notes.push_back(at + ": refused: " + a.message);
            continue;
        }
        if (a.version > offered || DEVHOST_VERSION_MAJOR(a.version) != 1)
            return Result::fail(at + ": answered " + format_version(a.version) + ", newer than offered");
        if (minor == claimed && a.version != offered)
            return Result::fail(at + ": answered " + format_version(a.version) + ", not the " +
                                format_version(p.abi_version()) + " it answered the loader");
        if (!a.descriptor || !a.descriptor->device_class || p.device_class() != a.descriptor->device_class)
            return Result::fail(at + ": no descriptor, or one of another class");
        r.notes.push_back(at + ": answered " + format_version(a.version));
    }
    Answer foreign = negotiate_as(p, DEVHOST_MAKE_VERSION(2, 0));
    if (foreign.status == DEVHOST_OK)
        return Result::fail("offered ABI 2.0 (another major): accepted, answering " + format_version(foreign.version));
    if (foreign.message.empty())
        return Result::fail("offered ABI 2.0: refused with " + std::string(devhost_status_name(foreign.status)) +
                            " but no message saying why");
    r.notes.push_back("offered ABI 2.0: refused: " + foreign.message);
    return r;
}

std::string hex(uint32_t v)
{
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%x", v);
    return buf;
}

bool one_line(const std::string &s) { return s.find_first_of("\r\n") == std::string::npos; }

// MUST-2: what the loader copied out of the descriptor, checked again here
// (names, uniqueness, defaults, bounds, one-line texts).
Result descriptor(const Context &ctx)
{
    const Plugin &p = *ctx.plugin;
    if (!devhost_identifier_valid(p.device_class().c_str()))
        return Result::fail("class '" + p.device_class() + "' is not [a-z0-9-]");
    if (p.name().empty() || p.version().empty() || !one_line(p.description()))
        return Result::fail("name, version or a one-line description missing");
    std::set<std::string> names;
    for (const auto &o : p.options()) {
        if (!devhost_identifier_valid(o.name.c_str()) || !names.insert(o.name).second)
            return Result::fail("option '" + o.name + "': invalid or repeated name");
        if (devhost_option_name_reserved(o.name.c_str()))
            return Result::fail("option '" + o.name + "': a name the config keeps for itself");
        if (!one_line(o.help))
            return Result::fail("option '" + o.name + "': help is not one line");
        if (o.type == DEVHOST_OPTION_ENUM && o.choices.empty())
            return Result::fail("option '" + o.name + "': an ENUM without choices");
        if (o.type == DEVHOST_OPTION_INT && o.min > o.max)
            return Result::fail("option '" + o.name + "': min > max");
        std::string error;
        if (o.default_value && !parse_option_value(o, *o.default_value, error))
            return Result::fail("option '" + o.name + "': default '" + *o.default_value + "': " + error);
    }
    std::set<std::string> controls;
    std::set<uint32_t> codes;
    for (const auto &c : p.controls()) {
        if (!devhost_identifier_valid(c.name.c_str()) || !controls.insert(c.name).second ||
            !codes.insert(c.code).second)
            return Result::fail("control '" + c.name + "': invalid or repeated name or code");
        if (!one_line(c.help))
            return Result::fail("control '" + c.name + "': help is not one line");
    }
    if ((p.transfer_ops() & DEVHOST_OP_BIT(DEVHOST_OP_CONTROL)) && p.controls().empty())
        return Result::fail("declares the control op but no control codes");
    Result r;
    r.notes.push_back(std::to_string(p.options().size()) + " option(s), " + std::to_string(p.controls().size()) +
                      " control(s), ops " + hex(p.transfer_ops()));
    return r;
}

// MUST-4 on an open device: unlock when not locked, disconnect when not
// connected, and a transfer or lock that needs a connection before it.
Result opened_state_refused(const Context &ctx, const std::string &path, Result r)
{
    const Plugin &p = *ctx.plugin;
    std::vector<std::string> hooks = {"unlock", "disconnect"};
    if (p.transfer_requires())
        hooks.push_back("transfer");
    if (p.lock_requires() & DEVHOST_REQUIRES_CONNECTED)
        hooks.push_back("lock");
    std::vector<Fault> crash;
    for (const auto &hook : hooks) {
        std::string error;
        crash.push_back(*parse_fault(hook + ":crash", error));
    }
    Device d(ctx.plugin, "conformance");
    d.set_faults(FaultSchedule(std::move(crash)));
    OpenRequest request;
    request.path = path;
    request.options = ctx.options;
    request.timeout_ms = 5000;
    Outcome opened = d.open(request);
    if (!opened.ok())
        return Result::fail("open " + path + ": " + devhost_status_name(opened.status) + ": " + opened.message);
    uint8_t byte = 0;
    devhost_transfer xfer{};
    xfer.op = DEVHOST_OP_WRITE;
    xfer.out = &byte;
    xfer.out_len = 1;
    xfer.timeout_ms = 100;
    for (const auto &hook : hooks) {
        Outcome o = hook == "unlock" ? d.unlock(100) : hook == "disconnect" ? d.disconnect(100)
                    : hook == "lock" ? d.lock(100) : d.transfer(xfer);
        if (o.status != DEVHOST_E_STATE && o.status != DEVHOST_E_UNSUPPORTED)
            return Result::fail(hook + " on a device just opened: " + devhost_status_name(o.status) +
                                ", not DEVHOST_E_STATE");
        r.notes.push_back(hook + " after open: " + devhost_status_name(o.status) + ": " + o.message);
    }
    d.close(5000);
    return r;
}

// MUST-4: every hook called in the wrong state is refused by the host with
// DEVHOST_E_STATE (or E_UNSUPPORTED for a hook the plugin leaves out) and
// never reached: every hook of the device is wired to crash the process if
// the host ever called it.
Result state_refused(const Context &ctx)
{
    Device d(ctx.plugin, "conformance");
    std::vector<Fault> crash;
    for (const char *hook : {"open", "connect", "lock", "transfer", "unlock", "disconnect", "close", "info"}) {
        std::string error;
        crash.push_back(*parse_fault(std::string(hook) + ":crash", error));
    }
    d.set_faults(FaultSchedule(std::move(crash)));
    InfoList info;
    uint8_t byte = 0;
    devhost_transfer xfer{};
    xfer.op = DEVHOST_OP_WRITE;
    xfer.out = &byte;
    xfer.out_len = 1;
    xfer.timeout_ms = 100;
    const std::vector<std::pair<std::string, Outcome>> calls = {
        {"connect", d.connect({})},  {"lock", d.lock(100)},         {"transfer", d.transfer(xfer)},
        {"unlock", d.unlock(100)},   {"disconnect", d.disconnect(100)}, {"info", d.info(info, 100)},
        {"close", d.close(100)},
    };
    Result r;
    for (const auto &[name, o] : calls) {
        if (o.status != DEVHOST_E_STATE && o.status != DEVHOST_E_UNSUPPORTED)
            return Result::fail(name + " on a device never opened: " + devhost_status_name(o.status) +
                                ", not DEVHOST_E_STATE");
        r.notes.push_back(name + " before open: " + devhost_status_name(o.status) + ": " + o.message);
    }
    if (auto path = ctx.device(0))
        return opened_state_refused(ctx, *path, std::move(r));
    r.notes.push_back("after open: not checked, " + ctx.why_no_device(1));
    return r;
}

}  // namespace

void add_static_tests(std::vector<Test> &tests)
{
    tests.push_back({"negotiation", "MUST-1",
                     "at each minor the plugin claims, an answer no newer than offered; another major refused",
                     negotiation});
    tests.push_back({"descriptor", "MUST-2", "descriptor, option schema and control table well formed", descriptor});
    tests.push_back({"state-refused", "MUST-4",
                     "hooks called in the wrong state are refused by the host, never reached", state_refused});
}

}  // namespace devhost::conformance
