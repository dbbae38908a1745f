// A plugin written in C++ through devhost/plugin.hpp whose members report
// the C way (a status returned, the host's error record filled), as code
// written against plugin.h does, so that tests can check plugin.hpp passes
// those through, still catches what they throw, and builds the descriptor
// with set_options/set_controls. Class "reporting". Built as C++17.
//
//   open      path "reporting:NAME"; "reporting:missing" fails through
//             devhost::check (DEVHOST_E_NOT_FOUND, ENOENT, the record's
//             message); "reporting:close-fails" opens, but close reports E_IO
//   lock      devhost_status lock(int32_t, devhost_error &): E_BUSY, EBUSY
//   info      void info(info_sink &): "path" through put(const char *, ...)
//             and "sink" through the C sink (c_sink())
//   transfer  WRITE: out_done = out_len, OK; READ: E_TIMEOUT with a message;
//             REQUEST: returns 7 (no status: must come out as E_IO);
//             CONTROL: throws std::runtime_error("thrown from a C-style member")
//   connect, disconnect, unlock: absent, NULL hooks
// Since ABI 1.1:
//   enumerate a free function (list_reporting) the class names with a
//             static member pointer, reporting the C way: "reporting:a"
//             with every identity field, "reporting:hidden" only with
//             DEVHOST_ENUMERATE_ALL; E_TIMEOUT once deadline(nullptr) passed
//   info      also "deadline" (devhost::deadline(host_device)) and
//             "deadline-or-1h" (devhost::deadline(host_device, 3600000))
//   options   "exclusive" carries DEVHOST_OPTION_EXCLUSIVE; path patterns
//             "reporting:*" and "/dev/reporting[0-9]*"
#include <devhost/plugin.hpp>

#include <cerrno>
#include <stdexcept>
#include <string>

namespace {

// A C-style helper the constructor calls, as a backend written in C would be.
devhost_status find_device(const char *path, devhost_error *err)
{
    if (std::string(path) == "reporting:missing")
        return devhost_fail(err, DEVHOST_E_NOT_FOUND, ENOENT, "no reporting device at %s", path);
    return DEVHOST_OK;
}

// enumerate, the C way: a free function the class names.
devhost_status list_reporting(const devhost_enumerate_params &params, devhost::found_sink &sink, devhost_error &err)
{
    if (devhost_util_deadline_passed(devhost::deadline(nullptr)))
        return devhost_fail(&err, DEVHOST_E_TIMEOUT, ETIMEDOUT, "reporting: the enumerate deadline has passed");
    sink.put({"reporting:a", "/dev/disk/by-id/reporting-a", "a reporting device", "1d6b", "0002", "S1"});
    if (params.flags & DEVHOST_ENUMERATE_ALL)
        sink.put({"reporting:hidden", "", "", "", "", ""});
    return DEVHOST_OK;
}

class Reporting {
public:
    static constexpr auto enumerate = &list_reporting;

    explicit Reporting(const devhost_open_params &params) : path_(params.path), host_device_(params.host_device)
    {
        devhost_error err = devhost::error_record();
        devhost::check(find_device(params.path, &err), err);
    }

    devhost_status lock(int32_t, devhost_error &err)
    {
        return devhost_fail(&err, DEVHOST_E_BUSY, EBUSY, "%s is held", path_.c_str());
    }

    void info(devhost::info_sink &sink)
    {
        sink.put("path", path_.c_str());
        const devhost_info_sink &c = sink.c_sink();
        c.put(c.context, "sink", "c");
        sink.put("deadline", std::to_string(devhost::deadline(host_device_)));
        sink.put("deadline-or-1h", std::to_string(devhost::deadline(host_device_, 3600000)));
    }

    devhost_status transfer(devhost_transfer &x, devhost_error &err)
    {
        switch (x.op) {
        case DEVHOST_OP_WRITE:
            x.out_done = x.out_len;
            return DEVHOST_OK;
        case DEVHOST_OP_READ:
            return devhost_fail(&err, DEVHOST_E_TIMEOUT, ETIMEDOUT, "nothing to read from %s", path_.c_str());
        case DEVHOST_OP_REQUEST:
            return 7;
        default:
            throw std::runtime_error("thrown from a C-style member");
        }
    }

    devhost_status close(devhost_error &err)
    {
        if (path_ == "reporting:close-fails")
            return devhost_fail(&err, DEVHOST_E_IO, EIO, "could not restore %s", path_.c_str());
        return DEVHOST_OK;
    }

private:
    std::string path_;
    const devhost_host_device *host_device_;
};

const devhost_option_spec options[] = {
    {sizeof(devhost_option_spec), DEVHOST_OPTION_BOOL, "quiet", "false", "an option", nullptr, 0, 0},
    {sizeof(devhost_option_spec), DEVHOST_OPTION_BOOL, "exclusive", "true", "false: devices may share a path",
     nullptr, 0, 0, DEVHOST_OPTION_EXCLUSIVE, 0},
};
constexpr auto paths = devhost::path_patterns("reporting:*", "/dev/reporting[0-9]*");
const devhost_control_spec controls[] = {
    {sizeof(devhost_control_spec), 1, "poke", "a control", 0},
    {sizeof(devhost_control_spec), 2, "prod", "another", DEVHOST_CONTROL_MODIFIES},
};

const devhost_plugin_descriptor descriptor = [] {
    auto d = devhost::describe<Reporting>("reporting", "reporting", "1.0.0", "test plugin whose members report");
    devhost::set_options(d, options);
    devhost::set_controls(d, controls);
    devhost::set_path_patterns(d, paths);
    d.transfer_ops = DEVHOST_OP_BIT(DEVHOST_OP_WRITE) | DEVHOST_OP_BIT(DEVHOST_OP_READ) |
                     DEVHOST_OP_BIT(DEVHOST_OP_REQUEST) | DEVHOST_OP_BIT(DEVHOST_OP_CONTROL);
    return d;
}();

}  // namespace

DEVHOST_PLUGIN_ENTRY(descriptor)
