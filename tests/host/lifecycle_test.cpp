// The device lifecycle is one table (host/lifecycle.hpp): `devhost check`
// and Device must agree on it for every pipeline. The property test drives
// every sequence of up to four steps through both, on a real test plugin
// built for each class rule the table knows (lifecycle_plugin.c), and
// asserts that check finds its first mistake at exactly the step where Device
// first refuses a call, with the refusal's status.
#include "check.hpp"
#include "config.hpp"
#include "devhost_test.hpp"
#include "device.hpp"
#include "lifecycle.hpp"
#include "steps.hpp"

#include <catch2/catch.hpp>

using namespace devhost;

namespace {

// Every hook, a data step each way (a read and a write: every other data step
// is a transfer under the same rule) and sleep, which calls no hook.
const char *const step_texts[] = {"open",   "connect",    "info",  "lock",      "write \"x\"",
                                  "read 1", "unlock", "disconnect", "close", "sleep 1ms"};

std::shared_ptr<const Plugin> lifecycle_plugin(PluginRegistry &registry, const std::string &name)
{
    auto plugin = registry.load_file(test::binary_dir() / "tests/lifecycle-plugins" / (name + ".so"));
    REQUIRE(plugin);
    return plugin;
}

// Runs one step on the device as the engine would; the host's refusals
// happen before the plugin (whose every hook succeeds) is called.
Outcome run_step(Device &d, const Step &s)
{
    switch (s.kind) {
    case StepKind::Open: return d.open({.path = "/lifecycle"});
    case StepKind::Connect: return d.connect({});
    case StepKind::Info: {
        InfoList info;
        return d.info(info);
    }
    case StepKind::Lock: return d.lock(100);
    case StepKind::Unlock: return d.unlock();
    case StepKind::Disconnect: return d.disconnect();
    case StepKind::Close: return d.close();
    case StepKind::Sleep: return {};  // no hook: never refused
    default: {
        uint8_t in[1];
        devhost_transfer x{};
        x.op = transfer_op(s);
        x.out = s.data.data();
        x.out_len = s.data.size();
        x.in = in;
        x.in_capacity = s.kind == StepKind::Read ? sizeof in : 0;
        x.timeout_ms = 100;
        return d.transfer(x);
    }
    }
}

struct Verdict {
    int first_error = 0;  // 1-based step index, 0: none
    devhost_status status = DEVHOST_OK;
};

Verdict through_device(const std::shared_ptr<const Plugin> &plugin, const std::vector<Step> &steps)
{
    Device d(plugin, "p");
    for (size_t i = 0; i < steps.size(); i++) {
        Outcome o = run_step(d, steps[i]);
        if (!o.ok())
            return {static_cast<int>(i + 1), o.status};
    }
    return {};
}

Verdict through_check(const PluginRegistry &registry, const std::string &cls, const std::vector<Step> &steps)
{
    Config config;
    config.file = "lifecycle.ini";
    DeviceConfig d;
    d.name = "p";
    d.class_name = {"class", cls, 1};
    d.path = {"path", "/lifecycle", 2};
    d.steps = steps;
    config.devices.push_back(d);
    std::vector<Diagnostic> diags;
    check_config(config, registry, diags);
    if (diags.empty())
        return {};
    int first = diags.front().line;
    for (const auto &diag : diags)
        first = std::min(first, diag.line);
    return {first, DEVHOST_E_STATE};
}

}  // namespace

TEST_CASE("check and Device agree on every step sequence of length up to 4, for every class rule", "[lifecycle]")
{
    const std::vector<std::string> variants = {"plain", "lock_needs_connect", "transfer_needs_connect",
                                               "transfer_needs_lock", "transfer_needs_both", "all_rules",
                                               "few_hooks"};
    std::vector<Step> vocabulary;
    for (const char *text : step_texts) {
        std::string error;
        auto s = parse_step(text, error);
        REQUIRE(s);
        vocabulary.push_back(*s);
    }

    for (const auto &variant : variants) {
        PluginRegistry registry;
        auto plugin = lifecycle_plugin(registry, variant);
        const std::string cls = plugin->device_class();
        size_t sequences = 0, refused = 0;
        std::vector<size_t> index;  // odometer over the vocabulary
        for (size_t length = 1; length <= 4; length++) {
            index.assign(length, 0);
            for (;;) {
                std::vector<Step> steps;
                for (size_t i = 0; i < length; i++) {
                    steps.push_back(vocabulary[index[i]]);
                    steps.back().line = static_cast<int>(i + 1);
                }
                const Verdict by_device = through_device(plugin, steps);
                const Verdict by_check = through_check(registry, cls, steps);
                sequences++;
                if (by_device.first_error != by_check.first_error) {
                    std::string seq;
                    for (const auto &s : steps)
                        seq += (seq.empty() ? "" : ", ") + s.text;
                    INFO("class " << cls << ": " << seq);
                    CHECK(by_device.first_error == by_check.first_error);
                }
                if (by_device.first_error) {
                    refused++;
                    // Every hook of the test plugin succeeds: a refusal is
                    // the host's, by state or because the hook is missing.
                    const bool missing_hook = variant == "few_hooks" && by_device.status == DEVHOST_E_UNSUPPORTED;
                    CHECK((by_device.status == DEVHOST_E_STATE || missing_hook));
                }
                size_t pos = length;
                while (pos > 0 && ++index[pos - 1] == vocabulary.size())
                    index[--pos] = 0;
                if (pos == 0)
                    break;
            }
        }
        INFO("class " << cls);
        CHECK(sequences == 10 + 100 + 1000 + 10000);  // every sequence of the vocabulary
        CHECK(refused > 0);
        CHECK(refused < sequences);
    }
}

TEST_CASE("the unwind order releases what is held, each release allowed when it comes", "[lifecycle]")
{
    const ClassRules plain{0, 0}, lock_in_connection{DEVHOST_REQUIRES_CONNECTED, 0};
    using V = std::vector<Hook>;
    const DeviceState all{.open = true, .connected = true, .locked = true};

    // The parallel device's seed: disconnect, unlock, close.
    CHECK(unwind_order(all, plain) == V{Hook::Disconnect, Hook::Unlock, Hook::Close});
    // A lock that needs the connection is released first.
    CHECK(unwind_order(all, lock_in_connection) == V{Hook::Unlock, Hook::Disconnect, Hook::Close});
    CHECK(unwind_order({.open = true, .locked = true}, plain) == V{Hook::Unlock, Hook::Close});
    CHECK(unwind_order({.open = true}, plain) == V{Hook::Close});
    CHECK(unwind_order({}, plain).empty());
    CHECK(unwind_order({.closed = true}, plain).empty());

    for (const ClassRules &rules : {plain, lock_in_connection})
        for (int bits = 0; bits < 8; bits++) {
            DeviceState s{.open = (bits & 1) != 0, .connected = (bits & 2) != 0, .locked = (bits & 4) != 0};
            if (!s.open && (s.connected || s.locked))
                continue;  // not a state a device can be in
            for (Hook h : unwind_order(s, rules)) {
                INFO("bits " << bits << ", " << hook_name(h));
                CHECK(needs(h, s, rules) == Need::None);
                apply(h, true, s);
            }
            CHECK_FALSE(s.open);
            CHECK_FALSE(s.connected);
            CHECK_FALSE(s.locked);
        }
}

TEST_CASE("a release leaves the state released even when the plugin fails it", "[lifecycle]")
{
    DeviceState s{.open = true, .connected = true, .locked = true};
    apply(Hook::Unlock, false, s);
    CHECK_FALSE(s.locked);
    apply(Hook::Disconnect, false, s);
    CHECK_FALSE(s.connected);
    apply(Hook::Close, false, s);
    CHECK(s.closed);
    CHECK_FALSE(s.open);
    // An acquire that failed leaves nothing held.
    DeviceState t{.open = true};
    apply(Hook::Lock, false, t);
    apply(Hook::Connect, false, t);
    CHECK_FALSE(t.locked);
    CHECK_FALSE(t.connected);
}
