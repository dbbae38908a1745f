// How parallel reads its ENUM options: as the choice's index the host parsed
// the text to, which is the value of the plugin's enum for it (`mode`: the
// VPORT_MODE_* of <devhost/vport_wire.h>, `write-method`: PAR_WRITE_*),
// never by comparing the text again. C has no compile-time check that a
// choices string and an enum agree, so this test is that check: each choice,
// parsed by the host's parser, does what its name says against a real
// devhost-vdev peer. Values are also forged (tests/support/direct_plugin.hpp)
// with a text and an index that disagree: the index wins.
#include "devhost_test.hpp"
#include "direct_plugin.hpp"
#include "vport_peer.hpp"

#include <catch2/catch.hpp>

#include <devhost/vport_wire.h>

#include <string>
#include <vector>

using namespace devhost;
using namespace devhost::test;

namespace {

fs::path parallel_so() { return plugin_dir() / "parallel.so"; }

// The choices of the plugin's option `name`, in order.
std::vector<std::string> choices_of(const DirectPlugin &plugin, const std::string &name)
{
    const devhost_option_spec *spec = plugin.option(name);
    REQUIRE(spec);
    REQUIRE(spec->type == DEVHOST_OPTION_ENUM);
    std::vector<std::string> out;
    std::string all = spec->choices;
    for (size_t at = 0;;) {
        size_t bar = all.find('|', at);
        out.push_back(all.substr(at, bar == std::string::npos ? std::string::npos : bar - at));
        if (bar == std::string::npos)
            return out;
        at = bar + 1;
    }
}

devhost_option_value enum_value(const char *name, const char *text, int64_t index)
{
    devhost_option_value v{};
    v.type = DEVHOST_OPTION_ENUM;
    v.name = name;
    v.text = text;
    v.integer = index;
    v.is_set = 1;
    return v;
}

std::string info_of(DirectDevice &dev, const std::string &key)
{
    InfoList info;
    Outcome o = dev.info(info);
    INFO(o.message);
    REQUIRE(o.ok());
    for (const auto &[k, v] : info)
        if (k == key)
            return v;
    return "(none)";
}

// connect with no mode= argument: the option's mode.
Outcome connect_default(DirectDevice &dev)
{
    devhost_connect_params p{};
    p.struct_size = sizeof p;
    p.timeout_ms = 2000;
    return dev.connect(p);
}

// Writes one byte to a peripheral that stays busy: the message tells the
// method (handshake: "before byte 0", the driver's write: "at byte 0").
std::string busy_write_message(DirectDevice &dev)
{
    REQUIRE(dev.lock(2000).ok());
    const uint8_t byte = 'x';
    devhost_transfer x{};
    x.op = DEVHOST_OP_WRITE;
    x.timeout_ms = 300;
    x.out = &byte;
    x.out_len = 1;
    Outcome o = dev.transfer(x);
    CHECK(o.status == DEVHOST_E_TIMEOUT);
    CHECK(dev.unlock().ok());
    return o.message;
}

}  // namespace

TEST_CASE("parallel's mode choices are the VPORT_MODE_* values in order: each is the mode connect negotiates",
          "[parallel]")
{
    VPort port("modes", {"--modes=compat,nibble,byte,ecp,epp"});
    DirectPlugin plugin(parallel_so());
    const auto choices = choices_of(plugin, "mode");
    REQUIRE(choices.size() == VPORT_MODE_COUNT);
    CHECK(choices[VPORT_MODE_COMPAT] == "compat");
    CHECK(choices[VPORT_MODE_NIBBLE] == "nibble");
    CHECK(choices[VPORT_MODE_BYTE] == "byte");
    CHECK(choices[VPORT_MODE_ECP] == "ecp");
    CHECK(choices[VPORT_MODE_EPP] == "epp");
    for (const auto &mode : choices) {
        INFO("mode=" << mode);
        DirectDevice dev(plugin, port.path(), {{"mode", mode}}, 2000);
        REQUIRE(dev.opened().ok());
        Outcome o = connect_default(dev);
        INFO(o.message);
        REQUIRE(o.ok());
        CHECK(info_of(dev, "mode") == mode);
        CHECK(dev.disconnect().ok());
    }
}

TEST_CASE("parallel's write-method choices are the PAR_WRITE_* values in order: each writes its own way",
          "[parallel]")
{
    VPort port("busy", {"--fault=busy-forever"});
    DirectPlugin plugin(parallel_so());
    CHECK(choices_of(plugin, "write-method") == std::vector<std::string>{"handshake", "driver"});
    DirectDevice handshake(plugin, port.path(), {{"write-method", "handshake"}}, 2000);
    REQUIRE(handshake.opened().ok());
    CHECK_THAT(busy_write_message(handshake), Catch::Contains("stayed busy") && Catch::Contains("before byte 0"));
    DirectDevice driver(plugin, port.path(), {{"write-method", "driver"}}, 2000);
    REQUIRE(driver.opened().ok());
    CHECK_THAT(busy_write_message(driver), Catch::Contains("stayed busy") && Catch::Contains("at byte 0"));
}

TEST_CASE("parallel takes an ENUM option's index, not its text", "[parallel]")
{
    SECTION("mode: text compat, index 1 is nibble")
    {
        VPort port("forged-mode", {"--modes=compat,nibble"});
        DirectPlugin plugin(parallel_so());
        DirectDevice dev(plugin, port.path(), DirectDevice::Forged{}, {enum_value("mode", "compat", 1)}, 2000);
        REQUIRE(dev.opened().ok());
        REQUIRE(connect_default(dev).ok());
        CHECK(info_of(dev, "mode") == "nibble");
    }
    SECTION("write-method: text handshake, index 1 is the driver's write")
    {
        VPort port("forged-write", {"--fault=busy-forever"});
        DirectPlugin plugin(parallel_so());
        DirectDevice dev(plugin, port.path(), DirectDevice::Forged{}, {enum_value("write-method", "handshake", 1)},
                         2000);
        REQUIRE(dev.opened().ok());
        CHECK_THAT(busy_write_message(dev), Catch::Contains("at byte 0"));
    }
    SECTION("an index outside the choices keeps the default, as an unknown text did")
    {
        VPort port("forged-range", {"--modes=compat,nibble"});
        DirectPlugin plugin(parallel_so());
        DirectDevice dev(plugin, port.path(), DirectDevice::Forged{}, {enum_value("mode", "nibble", 9)}, 2000);
        REQUIRE(dev.opened().ok());
        REQUIRE(connect_default(dev).ok());
        CHECK(info_of(dev, "mode") == "compat");
    }
}
