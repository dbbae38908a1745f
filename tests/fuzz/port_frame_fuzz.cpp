// Fuzz target: the filter-port frame decoder (devhost/port_wire.h), the
// first code that sees every datagram a port server or client receives. The
// input is one datagram. Besides not crashing, the decoder must keep its
// contract; a broken rule aborts, so the fuzzer and the regression run both
// report it:
//  - it answers OK or E_PROTOCOL, and E_PROTOCOL comes with a non-empty,
//    terminated reason in any buffer size (also when `why` is tiny or NULL);
//  - an accepted frame is exactly the datagram: version 1, a known type,
//    the length field equal to the bytes after the header, the payload
//    pointing into the datagram (NULL when empty), and encoding the decoded
//    fields gives back the same bytes;
//  - a larger payload bound never refuses what a smaller one accepted.
#include <devhost/port_wire.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

void require(bool ok)
{
    if (!ok)
        std::abort();
}

devhost_status decode_checked(const uint8_t *data, size_t size, uint32_t bound, devhost_port_frame &f)
{
    char why[160];
    std::memset(why, 'x', sizeof why);
    devhost_status st = devhost_port_frame_decode(data, size, bound, &f, why, sizeof why);
    require(st == DEVHOST_OK || st == DEVHOST_E_PROTOCOL);
    require(std::memchr(why, '\0', sizeof why) != nullptr);
    if (st != DEVHOST_OK) {
        require(why[0] != '\0');
        // Same verdict with a truncating buffer, or none at all.
        char tiny[4];
        require(devhost_port_frame_decode(data, size, bound, nullptr, tiny, sizeof tiny) == st);
        require(std::memchr(tiny, '\0', sizeof tiny) != nullptr);
        require(devhost_port_frame_decode(data, size, bound, nullptr, nullptr, 0) == st);
        return st;
    }
    require(size >= DEVHOST_PORT_HEADER_SIZE);
    require(f.version == DEVHOST_PORT_WIRE_VERSION);
    require(f.type >= DEVHOST_PORT_FRAME_HELLO && f.type <= DEVHOST_PORT_FRAME_LAST);
    require(std::strcmp(devhost_port_frame_type_name(f.type), "UNKNOWN") != 0);
    require(size_t{f.length} == size - DEVHOST_PORT_HEADER_SIZE);
    require(f.length <= DEVHOST_PORT_MAX_PAYLOAD);
    require(f.length == 0 ? f.payload == nullptr : f.payload == data + DEVHOST_PORT_HEADER_SIZE);

    std::vector<uint8_t> again(size);
    size_t n = devhost_port_frame_encode(again.data(), again.size(), f.type, f.flags, f.status, f.id, f.payload,
                                         f.length);
    require(n == size && std::memcmp(again.data(), data, size) == 0);
    // One byte short of room: encode refuses instead of writing past it.
    require(devhost_port_frame_encode(again.data(), size - 1, f.type, f.flags, f.status, f.id, f.payload,
                                      f.length) == 0);
    return st;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t bounds[] = {0, 16, DEVHOST_PORT_MAX_TEXT, 4096, DEVHOST_PORT_MAX_PAYLOAD, UINT32_MAX};
    bool accepted = false;
    for (uint32_t bound : bounds) {
        devhost_port_frame f{};
        devhost_status st = decode_checked(data, size, bound, f);
        require(!accepted || st == DEVHOST_OK);
        accepted = st == DEVHOST_OK;
    }
    return 0;
}
