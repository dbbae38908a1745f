// Tests on an open device: close of a half-opened device (MUST-3), transfer
// bounds (MUST-5), 1,000 open/close cycles (MUST-8), two devices from two
// threads (MUST-9).
#include "suite.hpp"

#include "guarded_buffer.hpp"
#include "raw_device.hpp"
#include "runner.hpp"

#include <malloc.h>

#include <atomic>
#include <cstring>
#include <thread>

namespace devhost::conformance {

namespace {

std::string said(const Call &c)
{
    return std::string(devhost_status_name(c.status)) + (c.message.empty() ? "" : ": " + c.message);
}

// MUST-3: opens that fail (no such path, the cancel handle already fired, a
// timeout of 0) leave NULL or a half-built device that close takes; nothing
// is left behind.
Result close_half_open(const Context &ctx)
{
    Result r;
    const int fds = open_fd_count();
    auto attempt = [&](const std::string &what, const std::string &path, bool cancelled, int32_t timeout) {
        RawDevice d(ctx);
        if (cancelled)
            d.cancel();
        Call c;
        bounded(5000, "open (" + what + ") did not return within 5 s", [&] { c = d.open(path, timeout); });
        r.notes.push_back("open " + what + ": " + said(c) + (d.has_handle() && c.status != DEVHOST_OK ? ", half-built device closed" : ""));
        bounded(5000, "close after open (" + what + ") did not return within 5 s", [&] { d.close(); });
    };
    attempt("of a path that does not exist", "/nonexistent/devhost-conformance", false, 1000);
    if (auto path = ctx.device(0)) {
        attempt("with the cancel handle fired", *path, true, 1000);
        attempt("with a timeout of 0 ms", *path, false, 0);
    } else {
        r.notes.push_back("opens of a real device not tried: " + ctx.why_no_device(1));
    }
    const int after = open_fd_count();
    if (after != fds)
        return Result::fail(std::to_string(after - fds) + " descriptor(s) left open after the opens were closed");
    return r;
}

// MUST-5: a write's out_done within out_len (all of it on OK); a read's
// in_len within in_capacity, and not one byte written past it (a guard
// page); with --loopback, what is read back is what was written.
Result transfer_bounds(const Context &ctx)
{
    auto path = ctx.device(0);
    if (!path)
        return Result::skip(ctx.why_no_device(1));
    const Plugin &p = *ctx.plugin;
    if (!p.has_hook(HookSlot::Transfer))
        return Result::skip("the plugin has no transfer hook");
    RawDevice d(ctx);
    Call c = d.open(*path);
    if (c.status != DEVHOST_OK)
        return Result::fail("open " + *path + ": " + said(c));
    if ((c = d.prepare()).status != DEVHOST_OK)
        return Result::fail("connect/lock before transfers: " + said(c));
    Result r;
    if (p.supports_op(DEVHOST_OP_WRITE)) {
        GuardedBuffer out(64);
        for (size_t i = 0; i < out.size(); i++)
            out.data()[i] = static_cast<uint8_t>('a' + i % 26);
        devhost_transfer x{};
        x.op = DEVHOST_OP_WRITE;
        x.out = out.data();
        x.out_len = out.size();
        x.timeout_ms = 1000;
        c = d.transfer(x);
        if (x.out_done > x.out_len)
            return Result::fail("write of 64 bytes reported out_done " + std::to_string(x.out_done));
        if (c.status == DEVHOST_OK && x.out_done != x.out_len)
            return Result::fail("write of 64 bytes answered DEVHOST_OK having sent " + std::to_string(x.out_done));
        r.notes.push_back("write 64: " + said(c) + ", out_done " + std::to_string(x.out_done));
    }
    size_t read_so_far = 0;  // of the 64 bytes written, with --loopback
    for (uint32_t op : {DEVHOST_OP_READ, DEVHOST_OP_READ_EXACT}) {
        if (!p.supports_op(op))
            continue;
        GuardedBuffer in(16);
        devhost_transfer x{};
        x.op = op;
        x.in = in.data();
        x.in_capacity = in.size();
        x.timeout_ms = 300;
        c = d.transfer(x);
        const std::string what = std::string(op == DEVHOST_OP_READ ? "read" : "read exact") + " into 16 bytes";
        if (x.in_len > x.in_capacity)
            return Result::fail(what + " reported in_len " + std::to_string(x.in_len));
        if (c.status == DEVHOST_OK && op == DEVHOST_OP_READ_EXACT && x.in_len != x.in_capacity)
            return Result::fail(what + " answered DEVHOST_OK with in_len " + std::to_string(x.in_len));
        if (ctx.loopback && c.status == DEVHOST_OK)
            for (size_t i = 0; i < x.in_len; i++)
                if (in.data()[i] != static_cast<uint8_t>('a' + (read_so_far + i) % 26))
                    return Result::fail(what + ": byte " + std::to_string(i) + " is not the one written");
        read_so_far += x.in_len;
        r.notes.push_back(what + ": " + said(c) + ", in_len " + std::to_string(x.in_len));
    }
    return r;
}

// MUST-8: 1,000 open/close cycles leave no descriptor and no memory behind
// (/proc/self/fd, mallinfo2 after 20 cycles to warm up).
Result open_close_cycles(const Context &ctx)
{
    auto path = ctx.device(0);
    if (!path)
        return Result::skip(ctx.why_no_device(1));
    auto cycle = [&](int n) -> std::optional<Result> {
        for (int i = 0; i < n; i++) {
            RawDevice d(ctx);
            Call c = d.open(*path);
            if (c.status != DEVHOST_OK)
                return Result::fail("cycle " + std::to_string(i) + ": open: " + said(c));
            c = d.close();
            if (c.status != DEVHOST_OK)
                return Result::fail("cycle " + std::to_string(i) + ": close: " + said(c));
        }
        return std::nullopt;
    };
    if (auto failed = cycle(20))
        return *failed;
    const int fds = open_fd_count();
    const size_t held = mallinfo2().uordblks + mallinfo2().hblkhd;
    if (auto failed = cycle(1000))
        return *failed;
    const int fds_after = open_fd_count();
    const size_t held_after = mallinfo2().uordblks + mallinfo2().hblkhd;
    if (fds_after != fds)
        return Result::fail(std::to_string(fds_after - fds) + " descriptor(s) left after 1000 open/close cycles");
    constexpr size_t limit = 16 * 1024;
    if (held_after > held + limit)
        return Result::fail(std::to_string(held_after - held) + " bytes of heap held after 1000 open/close cycles");
    Result r;
    r.notes.push_back("descriptors " + std::to_string(fds) + " before and after; heap " + std::to_string(held) +
                      " -> " + std::to_string(held_after) + " bytes");
    return r;
}

// MUST-9: two devices open at once, each driven from its own thread.
Result two_devices(const Context &ctx)
{
    auto a = ctx.device(0), b = ctx.device(1);
    if (!a || !b)
        return Result::skip(ctx.why_no_device(2));
    const Plugin &p = *ctx.plugin;
    std::string failure[2];
    auto drive = [&](const std::string &path, int who) {
        RawDevice d(ctx);
        Call c = d.open(path);
        if (c.status != DEVHOST_OK || (c = d.prepare()).status != DEVHOST_OK) {
            failure[who] = path + ": open: " + said(c);
            return;
        }
        for (int i = 0; i < 200 && p.supports_op(DEVHOST_OP_WRITE); i++) {
            uint8_t out[8], in[8] = {};
            for (auto &byte : out)
                byte = static_cast<uint8_t>('A' + who);
            devhost_transfer x{};
            x.op = DEVHOST_OP_WRITE;
            x.out = out;
            x.out_len = sizeof out;
            x.timeout_ms = 1000;
            if ((c = d.transfer(x)).status != DEVHOST_OK) {
                failure[who] = path + ": write " + std::to_string(i) + ": " + said(c);
                return;
            }
            if (!ctx.loopback || !p.supports_op(DEVHOST_OP_READ_EXACT))
                continue;
            devhost_transfer y{};
            y.op = DEVHOST_OP_READ_EXACT;
            y.in = in;
            y.in_capacity = sizeof in;
            y.timeout_ms = 1000;
            if ((c = d.transfer(y)).status != DEVHOST_OK || memcmp(in, out, sizeof in) != 0) {
                failure[who] = path + ": read back " + std::to_string(i) + ": " + said(c) + " or other bytes";
                return;
            }
        }
        if ((c = d.close()).status != DEVHOST_OK)
            failure[who] = path + ": close: " + said(c);
    };
    bounded(30000, "two devices driven from two threads did not finish within 30 s", [&] {
        std::thread ta(drive, *a, 0), tb(drive, *b, 1);
        ta.join();
        tb.join();
    });
    for (const auto &f : failure)
        if (!f.empty())
            return Result::fail(f);
    Result r;
    r.notes.push_back(*a + " and " + *b + ": 200 writes each" + (ctx.loopback ? ", read back" : ""));
    return r;
}

}  // namespace

void add_device_tests(std::vector<Test> &tests)
{
    tests.push_back({"close-half-open", "MUST-3", "close takes what a failed open leaves; nothing leaks",
                     close_half_open});
    tests.push_back({"transfer-bounds", "MUST-5",
                     "transfers never write past in_capacity and report what they moved (OK: all of it)",
                     transfer_bounds});
    tests.push_back({"open-close-cycles", "MUST-8", "no descriptor or memory left after 1,000 open/close cycles",
                     open_close_cycles});
    tests.push_back({"two-devices", "MUST-9", "two devices at once, each driven from its own thread", two_devices});
}

}  // namespace devhost::conformance
