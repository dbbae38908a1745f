// Blocking hooks: the cancel handle (MUST-6) and the deadline (MUST-7), each
// within 100 ms; a device that disappears (MUST-10). A hook blocks on an
// idle device: a read with nothing to read, a lock another device holds.
#include "suite.hpp"

#include "raw_device.hpp"
#include "runner.hpp"

#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

namespace devhost::conformance {

namespace {

constexpr int64_t tolerance_ms = 100;
constexpr int64_t settle_ms = 150;  // how long a hook runs before the cancel fires

std::string said(const Call &c)
{
    return std::string(devhost_status_name(c.status)) + (c.message.empty() ? "" : ": " + c.message);
}

// One blocking situation: a device (and maybe a second one holding it), and
// the call that should block on it.
struct Blocker {
    std::string name;  // "transfer (read)", "lock"
    std::unique_ptr<RawDevice> device, holder;
    std::function<Call(RawDevice &, int32_t timeout_ms)> call;
};

std::optional<Blocker> read_blocker(const Context &ctx, const std::string &path, std::string &why)
{
    const Plugin &p = *ctx.plugin;
    uint32_t op = 0;
    for (uint32_t o : {DEVHOST_OP_READ, DEVHOST_OP_READ_EXACT, DEVHOST_OP_GET_MESSAGE})
        if (!op && p.supports_op(o))
            op = o;
    if (!op) {
        why = "declares no read op";
        return std::nullopt;
    }
    Blocker b;
    b.name = std::string("transfer (") + (op == DEVHOST_OP_READ ? "read" : op == DEVHOST_OP_READ_EXACT ? "read exact" : "get message") + ")";
    b.device = std::make_unique<RawDevice>(ctx);
    Call c = b.device->open(path);
    if (c.status != DEVHOST_OK || (c = b.device->prepare()).status != DEVHOST_OK) {
        why = "open " + path + ": " + said(c);
        return std::nullopt;
    }
    b.call = [op](RawDevice &d, int32_t timeout_ms) {
        static thread_local uint8_t buf[64];
        devhost_transfer x{};
        x.op = op;
        x.in = buf;
        x.in_capacity = sizeof buf;
        x.timeout_ms = timeout_ms;
        return d.transfer(x);
    };
    return b;
}

std::optional<Blocker> lock_blocker(const Context &ctx, std::string &why)
{
    auto a = ctx.device(0);
    if (!ctx.plugin->has_hook(HookSlot::Lock) || !a || !(ctx.plugin->flags() & DEVHOST_PLUGIN_SHARED_PATHS)) {
        why = "no lock hook, or a class that cannot open one path twice (no DEVHOST_PLUGIN_SHARED_PATHS)";
        return std::nullopt;
    }
    Blocker b;
    b.name = "lock";
    b.holder = std::make_unique<RawDevice>(ctx);
    b.device = std::make_unique<RawDevice>(ctx);
    Call c;
    for (RawDevice *d : {b.holder.get(), b.device.get()})
        if ((c = d->open(*a)).status != DEVHOST_OK ||
            ((ctx.plugin->lock_requires() & DEVHOST_REQUIRES_CONNECTED) && (c = d->connect()).status != DEVHOST_OK)) {
            why = "open " + *a + " twice: " + said(c);
            return std::nullopt;
        }
    if ((c = b.holder->lock(1000)).status != DEVHOST_OK) {
        why = "the first device's lock: " + said(c);
        return std::nullopt;
    }
    b.call = [](RawDevice &d, int32_t timeout_ms) { return d.lock(timeout_ms); };
    return b;
}

// Calls `test` with each blocking situation in turn, one at a time (a read
// blocker may hold the lock a lock blocker needs), and says in why_not why
// one could not be set up.
void each_blocker(const Context &ctx, std::vector<std::string> &why_not, const std::function<void(Blocker &)> &test)
{
    auto path = ctx.device(0);
    if (!path) {
        why_not.push_back(ctx.why_no_device(1));
        return;
    }
    std::string why;
    if (auto b = read_blocker(ctx, *path, why))
        test(*b);
    else
        why_not.push_back("read: " + why);
    if (auto b = lock_blocker(ctx, why))
        test(*b);
    else
        why_not.push_back("lock: " + why);
}

std::string join(const std::vector<std::string> &v)
{
    std::string s;
    for (const auto &x : v)
        s += (s.empty() ? "" : "; ") + x;
    return s;
}

// MUST-6: each blocking hook, with no deadline, returns DEVHOST_E_CANCELLED
// within 100 ms of its cancel handle firing.
Result cancel(const Context &ctx)
{
    std::vector<std::string> why_not;
    Result r;
    int tried = 0;
    std::optional<Result> failed;
    each_blocker(ctx, why_not, [&](Blocker &b) {
        if (failed)
            return;
        Call c;
        int64_t fired = 0, returned = 0;
        bounded(settle_ms + 2000, b.name + " did not return within 2000 ms of its cancel handle firing", [&] {
            std::thread t([&] {
                c = b.call(*b.device, -1);
                returned = now_ms();
            });
            std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
            fired = now_ms();
            b.device->cancel();
            t.join();
        });
        const int64_t latency = returned - fired;
        if (returned < fired) {  // it came back before the cancel: it did not block
            why_not.push_back(b.name + " did not block (" + said(c) + " at once)");
            return;
        }
        tried++;
        if (c.status != DEVHOST_E_CANCELLED)
            failed = Result::fail(b.name + " answered " + said(c) + " when cancelled, not DEVHOST_E_CANCELLED");
        else if (latency > tolerance_ms)
            failed = Result::fail(b.name + " returned " + std::to_string(latency) + " ms after its cancel handle fired");
        else
            r.notes.push_back(b.name + ": DEVHOST_E_CANCELLED " + std::to_string(latency) + " ms after cancel");
    });
    if (failed)
        return *failed;
    if (!tried)
        return Result::skip("no hook blocked on this device (" + join(why_not) + ")");
    return r;
}

// MUST-7: each blocking hook returns DEVHOST_E_TIMEOUT within 100 ms of its
// deadline (300 ms).
Result deadline(const Context &ctx)
{
    constexpr int32_t timeout_ms = 300;
    std::vector<std::string> why_not;
    Result r;
    int tried = 0;
    std::optional<Result> failed;
    each_blocker(ctx, why_not, [&](Blocker &b) {
        if (failed)
            return;
        Call c;
        bounded(timeout_ms + 2000, b.name + " did not return within 2000 ms of its deadline",
                [&] { c = b.call(*b.device, timeout_ms); });
        if (c.status != DEVHOST_E_TIMEOUT && c.elapsed_ms < timeout_ms) {
            why_not.push_back(b.name + " did not block (" + said(c) + " at once)");
            return;
        }
        tried++;
        if (c.status != DEVHOST_E_TIMEOUT)
            failed = Result::fail(b.name + " answered " + said(c) + " at its deadline, not DEVHOST_E_TIMEOUT");
        else if (c.elapsed_ms > timeout_ms + tolerance_ms)
            failed = Result::fail(b.name + " returned " + std::to_string(c.elapsed_ms - timeout_ms) +
                                  " ms after its deadline");
        else if (c.elapsed_ms < timeout_ms - 5)
            failed = Result::fail(b.name + " answered DEVHOST_E_TIMEOUT after " + std::to_string(c.elapsed_ms) +
                                  " ms, before its deadline of " + std::to_string(timeout_ms) + " ms");
        else
            r.notes.push_back(b.name + ": DEVHOST_E_TIMEOUT after " + std::to_string(c.elapsed_ms) + " ms of " +
                              std::to_string(timeout_ms));
    });
    if (failed)
        return *failed;
    if (!tried)
        return Result::skip("no hook blocked on this device (" + join(why_not) + ")");
    return r;
}

// MUST-10: with --unplug CMD, a read blocked on the device (or, for a class
// without reads, the next write) answers DEVHOST_E_REMOVED within 2 s of CMD
// making the device disappear; never a hang.
Result removed(const Context &ctx)
{
    if (ctx.unplug.empty())
        return Result::skip("no --unplug COMMAND: the kit cannot make a device of class '" +
                            ctx.plugin->device_class() + "' disappear by itself");
    auto path = ctx.device(0);
    if (!path)
        return Result::skip(ctx.why_no_device(1));
    std::vector<std::string> why_not;
    std::string why;
    auto b = read_blocker(ctx, *path, why);
    if (!b)
        return Result::skip("no read to block on: " + why);
    Call c;
    int unplugged = -1;
    int64_t unplug_at = 0, returned = 0;
    bounded(settle_ms + 4000, b->name + " did not return within 2000 ms of the device disappearing", [&] {
        std::thread t([&] {
            c = b->call(*b->device, 3000);
            returned = now_ms();
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
        unplug_at = now_ms();
        unplugged = std::system(ctx.unplug.c_str());
        t.join();
    });
    if (unplugged != 0)
        return Result::fail("--unplug '" + ctx.unplug + "' failed (status " + std::to_string(unplugged) + ")");
    Result r;
    if (returned < unplug_at) {
        // The read did not wait (a mode the device is not in): the next write
        // meets the device gone instead.
        if (!ctx.plugin->supports_op(DEVHOST_OP_WRITE))
            return Result::skip(b->name + " did not wait (" + said(c) + ") and the class has no write");
        r.notes.push_back(b->name + " did not wait (" + said(c) + "): a write after the device disappeared");
        b->name = "transfer (write)";
        const uint8_t byte = 0;
        devhost_transfer x{};
        x.op = DEVHOST_OP_WRITE;
        x.out = &byte;
        x.out_len = 1;
        x.timeout_ms = 2000;
        bounded(4000, "a write did not return within 4000 ms of the device disappearing",
                [&] { c = b->device->transfer(x); });
    }
    if (c.status != DEVHOST_E_REMOVED)
        return Result::fail(b->name + " answered " + said(c) + " when the device disappeared, not DEVHOST_E_REMOVED");
    r.notes.push_back(b->name + ": " + said(c));
    return r;
}

}  // namespace

void add_timing_tests(std::vector<Test> &tests)
{
    tests.push_back({"cancel", "MUST-6",
                     "every blocking hook returns DEVHOST_E_CANCELLED within 100 ms of its cancel handle firing",
                     cancel});
    tests.push_back({"deadline", "MUST-7", "every blocking hook returns DEVHOST_E_TIMEOUT within 100 ms of its deadline",
                     deadline});
    tests.push_back({"removed", "MUST-10", "a device that disappears gives DEVHOST_E_REMOVED, never a hang", removed});
}

}  // namespace devhost::conformance
