// Identity paths (identity.hpp): their form, checked by devhost check, and
// their resolution at attach. by-id: and by-path: are resolved in a /dev of
// the test's own (udev does not run here to make /dev/*/by-id), whose links
// lead to real device nodes; usb: goes through sd-device over the machine's
// sysfs, where no USB device has the ids asked for.
#include "devhost_test.hpp"
#include "identity.hpp"

#include <catch2/catch.hpp>

using namespace devhost;

TEST_CASE("identity paths: what is one, and the form of each", "[identity]")
{
    CHECK(is_identity("by-id:usb-FTDI_FT232R_A1-if00-port0"));
    CHECK(is_identity("by-path:pci-0000:00:14.0-usb-0:2:1.0-port0"));
    CHECK(is_identity("usb:0403:6001"));
    CHECK_FALSE(is_identity("/dev/ttyUSB0"));
    CHECK_FALSE(is_identity("loop:a"));

    CHECK(identity_syntax_error("usb:0403:6001") == "");
    CHECK(identity_syntax_error("usb:0403:6001:A1B2") == "");
    CHECK(identity_syntax_error("usb:0403:60") ==
          "'usb:0403:60': expected usb:VID:PID[:SERIAL], VID and PID four hex digits each (usb:0403:6001)");
    CHECK(identity_syntax_error("usb:0403") != "");
    CHECK(identity_syntax_error("usb:0403:6001:") != "");  // an empty serial
    CHECK(identity_syntax_error("usb:04g3:6001") != "");
    CHECK(identity_syntax_error("by-id:") == "'by-id:': expected by-id:NAME, NAME a link's name in /dev/*/by-id (no '/')");
    CHECK(identity_syntax_error("by-path:../../etc/passwd") != "");
    CHECK(identity_syntax_error("by-id:..") != "");
}

TEST_CASE("identity paths: by-id and by-path resolve to the one node their link names", "[identity]")
{
    test::TempDir dev;
    std::filesystem::create_directories(dev / "serial/by-id");
    std::filesystem::create_directories(dev / "disk/by-path");
    std::filesystem::create_symlink("/dev/null", dev / "serial/by-id/usb-Acme_Scale_42-if00");
    std::filesystem::create_symlink("/dev/zero", dev / "disk/by-path/pci-0000:00:1f.2-ata-1");
    std::string error;
    CHECK(resolve_identity("by-id:usb-Acme_Scale_42-if00", error, dev.path()) == "/dev/null");
    CHECK(resolve_identity("by-path:pci-0000:00:1f.2-ata-1", error, dev.path()) == "/dev/zero");

    CHECK_FALSE(resolve_identity("by-id:usb-Acme_Scale_43-if00", error, dev.path()));
    CHECK(error == "by-id:usb-Acme_Scale_43-if00: no device matches it (no by-id link 'usb-Acme_Scale_43-if00' in " +
                       (dev / "*/by-id").string() + "; udev makes them)");

    // The same name in two directories, for two devices: not one device.
    std::filesystem::create_directories(dev / "disk/by-id");
    std::filesystem::create_symlink("/dev/zero", dev / "disk/by-id/usb-Acme_Scale_42-if00");
    CHECK_FALSE(resolve_identity("by-id:usb-Acme_Scale_42-if00", error, dev.path()));
    CHECK(error.find("by-id:usb-Acme_Scale_42-if00: 2 devices match it (") == 0);
    CHECK(error.find("-> /dev/null") != std::string::npos);
    CHECK(error.find("-> /dev/zero") != std::string::npos);
    CHECK(error.find("an identity must name one device") != std::string::npos);

    // A link whose device is gone matches nothing.
    std::filesystem::create_symlink(dev / "gone", dev / "serial/by-id/usb-Gone");
    CHECK_FALSE(resolve_identity("by-id:usb-Gone", error, dev.path()));
    CHECK(error.find("no device matches it") != std::string::npos);
}

TEST_CASE("identity paths: usb: with ids no device has matches nothing, and says what it looked for", "[identity]")
{
    std::string error;
    CHECK_FALSE(resolve_identity("usb:fffe:0001:NOPE", error));
    CHECK(error == "usb:fffe:0001:NOPE: no device matches it (no tty, whole disk or usbmisc device of USB fffe:0001 "
                   "serial 'NOPE')");
    CHECK_FALSE(resolve_identity("usb:0403", error));
    CHECK(error.find("expected usb:VID:PID[:SERIAL]") != std::string::npos);
}
