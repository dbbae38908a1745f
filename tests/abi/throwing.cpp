// A plugin written in C++ through devhost/plugin.hpp whose members throw, so
// that tests can check each exception turns into a status and a message at
// the ABI boundary and the host survives. Class "throwing". Built as C++17
// to prove the helper header needs no more.
//
//   open      path "throwing:NAME"; "throwing:missing" throws devhost::error
//             (DEVHOST_E_NOT_FOUND, ENOENT); "throwing:no-memory" throws
//             std::bad_alloc; "throwing:close-fails" opens, but close() throws
//   connect   arg throw=system: std::system_error(ECONNREFUSED);
//             throw=bad-alloc: std::bad_alloc; otherwise succeeds
//   lock      throws devhost::error(DEVHOST_E_BUSY, EBUSY, ...)
//   info      throws an int
//   transfer  WRITE: sets out_done = 1, then throws std::runtime_error("boom");
//             READ: throws devhost::error with DEVHOST_OK (a plugin bug: must
//             still come out as a failure)
//   disconnect and unlock are absent: NULL hooks.
// Since ABI 1.1:
//   enumerate (a static member) puts "throwing:one"; with
//             DEVHOST_ENUMERATE_ALL it then throws std::runtime_error
//   unload    throws std::runtime_error (logged, never passed on)
#include <devhost/plugin.hpp>

#include <cerrno>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

namespace {

class Throwing {
public:
    static void enumerate(const devhost_enumerate_params &params, devhost::found_sink &sink)
    {
        sink.put({"throwing:one", "", "the first", "", "", ""});
        if (params.flags & DEVHOST_ENUMERATE_ALL)
            throw std::runtime_error("enumerate failed after one device");
    }

    static void unload() { throw std::runtime_error("unload threw"); }

    explicit Throwing(const devhost_open_params &params) : path_(params.path)
    {
        if (path_ == "throwing:missing")
            throw devhost::error(DEVHOST_E_NOT_FOUND, ENOENT, "no throwing device at " + path_);
        if (path_ == "throwing:no-memory")
            throw std::bad_alloc();
        devhost::log(params.host_device, DEVHOST_LOG_DEBUG, "opened " + path_);
    }

    void connect(const devhost_connect_params &params)
    {
        for (uint32_t i = 0; i < params.arg_count; i++) {
            std::string key = params.args[i].key, value = params.args[i].value;
            if (key == "throw" && value == "system")
                throw std::system_error(ECONNREFUSED, std::generic_category(), "connect to " + path_);
            if (key == "throw" && value == "bad-alloc")
                throw std::bad_alloc();
        }
    }

    void lock(int32_t)
    {
        throw devhost::error(DEVHOST_E_BUSY, EBUSY, path_ + " is held by the test");
    }

    void info(devhost::info_sink &)
    {
        throw 42;
    }

    void transfer(devhost_transfer &x)
    {
        if (x.op == DEVHOST_OP_WRITE) {
            x.out_done = x.out_len ? 1 : 0;
            throw std::runtime_error("boom");
        }
        throw devhost::error(DEVHOST_OK, "a failure reported with DEVHOST_OK");
    }

    void close()
    {
        if (path_ == "throwing:close-fails")
            throw std::runtime_error("could not restore " + path_);
    }

private:
    std::string path_;
};

// A class with only a constructor gets NULL for every optional hook.
struct Bare {
    explicit Bare(const devhost_open_params &) {}
};
static_assert(!devhost::hooks_for<Bare>()->connect && !devhost::hooks_for<Bare>()->disconnect &&
              !devhost::hooks_for<Bare>()->lock && !devhost::hooks_for<Bare>()->unlock &&
              !devhost::hooks_for<Bare>()->info && !devhost::hooks_for<Bare>()->transfer &&
              !devhost::hooks_for<Bare>()->enumerate && !devhost::hooks_for<Bare>()->unload);

const devhost_plugin_descriptor descriptor = [] {
    auto d = devhost::describe<Throwing>("throwing", "throwing", "1.0.0", "test plugin whose hooks throw");
    d.transfer_ops = DEVHOST_OP_BIT(DEVHOST_OP_WRITE) | DEVHOST_OP_BIT(DEVHOST_OP_READ);
    return d;
}();

}  // namespace

DEVHOST_PLUGIN_ENTRY(descriptor)
