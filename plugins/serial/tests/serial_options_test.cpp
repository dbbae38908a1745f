// How serial reads its ENUM options (parity, flow, dtr, rts, hupcl): as the
// choice's index the host parsed the text to, which is the value of the
// plugin's enum for it (serial_private.hpp; plugin.cpp checks the schema's
// choices against the enums at compile time), never by comparing the text
// again. The values are forged here (tests/support/direct_plugin.hpp) so
// that text and index disagree, as no checking host would pass them.
#include "devhost_test.hpp"
#include "devices.hpp"
#include "direct_plugin.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace devhost;
using namespace devhost::test;

namespace {

DirectPlugin &plugin()
{
    static DirectPlugin p(plugin_dir() / "serial.so");
    return p;
}

// An ENUM value whose text says one thing and whose index another.
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
    REQUIRE(dev.info(info).ok());
    for (const auto &[k, v] : info)
        if (k == key)
            return v;
    return "(none)";
}

}  // namespace

TEST_CASE("serial takes an ENUM option's index, not its text")
{
    Pty pty;
    SECTION("flow: text none, index 2 is xonxoff")
    {
        DirectDevice dev(plugin(), pty.path, DirectDevice::Forged{}, {enum_value("flow", "none", 2)});
        INFO(dev.opened().message);
        REQUIRE(dev.opened().ok());
        CHECK(info_of(dev, "flow") == "xonxoff");
    }
    SECTION("parity: text odd (which a pty refuses), index 0 is none")
    {
        DirectDevice dev(plugin(), pty.path, DirectDevice::Forged{}, {enum_value("parity", "odd", 0)});
        INFO(dev.opened().message);
        REQUIRE(dev.opened().ok());
        CHECK(info_of(dev, "parity") == "none");
    }
}

TEST_CASE("serial refuses an ENUM index outside the option's choices, naming the option")
{
    Pty pty;
    for (int64_t index : {3, -1}) {
        DirectDevice dev(plugin(), pty.path, DirectDevice::Forged{}, {enum_value("flow", "xonxoff", index)});
        CHECK(dev.opened().status == DEVHOST_E_INVALID);
        CHECK(dev.opened().message ==
              "serial: flow: choice " + std::to_string(index) + " is not one of none|rtscts|xonxoff");
        CHECK_FALSE(dev.is_open());
    }
}
