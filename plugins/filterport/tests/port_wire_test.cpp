// The frame codec on its own: encode/decode round trip and every malformed
// frame refused with its reason.
#include <catch2/catch.hpp>

#include <devhost/port_wire.h>

#include <string>
#include <vector>

namespace {

std::vector<uint8_t> frame(uint32_t type, uint64_t id, const std::string &payload, uint32_t flags = 0,
                           int32_t status = 0)
{
    std::vector<uint8_t> b(DEVHOST_PORT_HEADER_SIZE + payload.size());
    b.resize(devhost_port_frame_encode(b.data(), b.size(), type, flags, status, id, payload.data(),
                                       static_cast<uint32_t>(payload.size())));
    return b;
}

std::string refusal(const std::vector<uint8_t> &b, uint32_t bound = DEVHOST_PORT_MAX_PAYLOAD)
{
    devhost_port_frame f;
    char why[256];
    if (devhost_port_frame_decode(b.data(), b.size(), bound, &f, why, sizeof why) == DEVHOST_OK)
        return "accepted";
    return why;
}

}  // namespace

TEST_CASE("a frame round-trips through encode and decode", "[wire]")
{
    auto b = frame(DEVHOST_PORT_FRAME_REQUEST, 0x1122334455667788ull, "hello");
    REQUIRE(b.size() == DEVHOST_PORT_HEADER_SIZE + 5);
    CHECK(b[0] == 1);
    CHECK(b[1] == DEVHOST_PORT_FRAME_REQUEST);
    CHECK(b[8] == 0x88);  // little-endian id
    CHECK(b[16] == 5);
    devhost_port_frame f;
    REQUIRE(devhost_port_frame_decode(b.data(), b.size(), 100, &f, nullptr, 0) == DEVHOST_OK);
    CHECK(f.type == DEVHOST_PORT_FRAME_REQUEST);
    CHECK(f.id == 0x1122334455667788ull);
    CHECK(std::string(reinterpret_cast<const char *>(f.payload), f.length) == "hello");

    auto r = frame(DEVHOST_PORT_FRAME_RESPONSE, 7, "no", 0, DEVHOST_E_BUSY);
    REQUIRE(devhost_port_frame_decode(r.data(), r.size(), 100, &f, nullptr, 0) == DEVHOST_OK);
    CHECK(f.status == DEVHOST_E_BUSY);
    auto h = frame(DEVHOST_PORT_FRAME_HELLO, 0, "", DEVHOST_PORT_HELLO_SYNC);
    REQUIRE(devhost_port_frame_decode(h.data(), h.size(), 100, &f, nullptr, 0) == DEVHOST_OK);
    CHECK(f.flags == DEVHOST_PORT_HELLO_SYNC);
    CHECK(f.payload == nullptr);
}

TEST_CASE("encode refuses what does not fit", "[wire]")
{
    uint8_t small[10];
    CHECK(devhost_port_frame_encode(small, sizeof small, DEVHOST_PORT_FRAME_REQUEST, 0, 0, 1, nullptr, 0) == 0);
    std::vector<uint8_t> big(DEVHOST_PORT_HEADER_SIZE + DEVHOST_PORT_MAX_PAYLOAD + 1);
    CHECK(devhost_port_frame_encode(big.data(), big.size(), DEVHOST_PORT_FRAME_REQUEST, 0, 0, 1, big.data(),
                                    DEVHOST_PORT_MAX_PAYLOAD + 1) == 0);
}

TEST_CASE("decode refuses every malformed frame with its reason", "[wire]")
{
    auto good = frame(DEVHOST_PORT_FRAME_REQUEST, 1, "abc");
    CHECK(refusal(good) == "accepted");

    CHECK(refusal(std::vector<uint8_t>(good.begin(), good.begin() + 7)) == "short frame: 7 bytes, the header is 20");
    CHECK(refusal({}) == "short frame: 0 bytes, the header is 20");

    auto v = good;
    v[0] = 2;
    CHECK(refusal(v) == "wrong protocol version 2 (expected 1)");

    auto t = good;
    t[1] = 9;
    CHECK(refusal(t) == "unknown frame type 9");
    t[1] = 0;
    CHECK(refusal(t) == "unknown frame type 0");

    auto fl = good;
    fl[2] = 1;
    CHECK(refusal(fl) == "REQUEST frame with unknown flags 0x1");
    CHECK(refusal(frame(DEVHOST_PORT_FRAME_HELLO, 0, "", 2)) == "HELLO frame with unknown flags 0x2");

    auto st = good;
    st[4] = 0xfb;
    CHECK(refusal(st) == "REQUEST frame with invalid status 251");
    CHECK(refusal(frame(DEVHOST_PORT_FRAME_RESPONSE, 1, "", 0, 5)) == "RESPONSE frame with invalid status 5");

    auto len = good;
    len[16] = 4;
    CHECK(refusal(len) == "REQUEST frame length field says 4 bytes but 3 follow the header");
    auto extra = good;
    extra.push_back('x');
    CHECK(refusal(extra) == "REQUEST frame length field says 3 bytes but 4 follow the header");

    CHECK(refusal(good, 2) == "oversized REQUEST frame: payload of 3 bytes, the bound is 2");
    auto huge = good;
    huge[16] = 0xff;
    huge[17] = 0xff;
    huge[18] = 0xff;
    huge[19] = 0xff;
    CHECK(refusal(huge) == "oversized REQUEST frame: payload of 4294967295 bytes, the bound is 65536");

    std::vector<uint8_t> ctx = frame(DEVHOST_PORT_FRAME_HELLO, 0, std::string(65536, 'c'));
    CHECK(refusal(ctx) == "HELLO context of 65536 bytes does not fit in 16 bits");
}

TEST_CASE("decode survives every truncation and byte flip of a frame", "[wire]")
{
    // A poor man's fuzz pass: no crash, and each outcome is OK or PROTOCOL.
    auto good = frame(DEVHOST_PORT_FRAME_MESSAGE, 42, "payload bytes");
    int refused = 0;
    for (size_t cut = 0; cut <= good.size(); cut++)
        for (size_t at = 0; at < good.size(); at++)
            for (int bit = 0; bit < 8; bit++) {
                auto b = good;
                b[at] ^= static_cast<uint8_t>(1u << bit);
                b.resize(cut);
                devhost_port_frame f;
                char why[64];
                devhost_status s = devhost_port_frame_decode(b.data(), b.size(), 64, &f, why, sizeof why);
                REQUIRE((s == DEVHOST_OK || s == DEVHOST_E_PROTOCOL));
                refused += s != DEVHOST_OK;
            }
    CHECK(refused > 0);
}
