// Loop devices, mounts, transfers, info and log capture for the tests
// (devices.hpp). The ptys are in pty.cpp.
#include "devices.hpp"

#include "devhost_test.hpp"
#include "loader.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

namespace devhost::test {

fs::path find_tool(const std::string &name)
{
    for (const char *dir : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
        fs::path p = fs::path(dir) / name;
        if (access(p.c_str(), X_OK) == 0)
            return p;
    }
    return {};
}

LoopDevice::LoopDevice(const fs::path &image, bool read_only, bool partscan)
{
    fs::path tool = find_tool("losetup");
    if (tool.empty()) {
        reason_ = "losetup is not installed";
        return;
    }
    std::vector<std::string> argv{tool.string(), "--find", "--show"};
    if (read_only)
        argv.push_back("--read-only");
    if (partscan)
        argv.push_back("--partscan");
    argv.push_back(image.string());
    auto r = run_process(argv);
    std::string out = r.out;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
        out.pop_back();
    if (r.exit_code != 0 || out.rfind("/dev/loop", 0) != 0) {
        reason_ = "losetup cannot attach a loop device here: " + (r.err.empty() ? out : r.err);
        return;
    }
    path_ = out;
}

LoopDevice::~LoopDevice()
{
    // Detach even if the test failed half way; an error here (already
    // detached) is fine.
    if (!path_.empty())
        losetup({"-d", path_});
}

int LoopDevice::detach()
{
    int rc = losetup({"-d", path_});
    if (rc == 0)
        path_.clear();
    return rc;
}

int LoopDevice::losetup(const std::vector<std::string> &args) const
{
    std::vector<std::string> argv{find_tool("losetup").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv).exit_code;
}

Mount::Mount(const std::string &device, const fs::path &dir, const std::string &fstype) : dir_(dir)
{
    fs::create_directories(dir);
    if (::mount(device.c_str(), dir.c_str(), fstype.c_str(), 0, nullptr) != 0) {
        reason_ = "cannot mount " + device + " (" + fstype + "): " + std::strerror(errno);
        return;
    }
    mounted_ = true;
}

Mount::~Mount()
{
    if (mounted_)
        ::umount2(dir_.c_str(), MNT_DETACH);
}

std::string mkfs_ext4_unavailable()
{
    return find_tool("mkfs.ext4").empty() ? "mkfs.ext4 (e2fsprogs) is not installed, so no filesystem can be "
                                            "made to mount"
                                          : "";
}

std::string mkfs_ext4(const std::string &target)
{
    auto r = run_process({find_tool("mkfs.ext4").string(), "-q", "-F", target});
    if (r.exit_code == 0)
        return {};
    return r.err.empty() ? "mkfs.ext4 failed" : r.err;
}

MountedExt4::MountedExt4(const fs::path &image, const fs::path &point) : point_(point)
{
    if (reason_ = mkfs_ext4_unavailable(); !reason_.empty())
        return;
    if (auto err = mkfs_ext4(image.string()); !err.empty())
        throw std::runtime_error("mkfs.ext4 " + image.string() + ": " + err);
    loop_ = std::make_unique<LoopDevice>(image);
    if (!loop_->available()) {
        reason_ = loop_->reason();
        return;
    }
    mount_ = std::make_unique<Mount>(loop_->path(), point, "ext4");
    if (!mount_->mounted())
        reason_ = mount_->reason();
}

std::string MountedExt4::where() const
{
    return loop_->path() + " on " + point_.string();
}

FullFifo::FullFifo(const fs::path &file) : path(file)
{
    if (mkfifo(file.c_str(), 0600) != 0)
        throw std::runtime_error("mkfifo " + file.string() + ": " + std::strerror(errno));
    reader = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    int writer = ::open(file.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (reader < 0 || writer < 0) {
        if (reader >= 0)
            ::close(reader);
        throw std::runtime_error("opening the FIFO " + file.string() + ": " + std::strerror(errno));
    }
    fill(writer);
    ::close(writer);
}

FullFifo::~FullFifo()
{
    ::close(reader);
}

void FullFifo::fill(int fd)
{
    const std::string line = std::string(63, 'x') + "\n";
    while (::write(fd, line.data(), line.size()) == ssize_t(line.size())) {
    }
}

BoundSocket::BoundSocket(const fs::path &file) : path(file)
{
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (file.string().size() >= sizeof a.sun_path)
        throw std::runtime_error("socket path too long: " + file.string());
    std::memcpy(a.sun_path, file.c_str(), file.string().size());
    fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr *>(&a), sizeof a) != 0 || ::listen(fd, 4) != 0) {
        const std::string why = std::strerror(errno);
        if (fd >= 0)
            ::close(fd);
        throw std::runtime_error("binding a socket at " + file.string() + ": " + why);
    }
}

BoundSocket::~BoundSocket()
{
    ::close(fd);
}

std::shared_ptr<const Plugin> loaded_plugin(const fs::path &file)
{
    // The registries below outlive the test, and a plugin's unload hook (ABI
    // 1.1) may log while they are destroyed at exit: spdlog's registry is
    // made first so that it is destroyed after them.
    static const auto logger = spdlog::default_logger();
    static std::mutex mutex;
    static std::map<fs::path, std::unique_ptr<PluginRegistry>> registries;
    std::lock_guard lock(mutex);
    auto &registry = registries[file];
    if (!registry)
        registry = std::make_unique<PluginRegistry>();
    for (const auto &plugin : registry->plugins())
        return plugin;  // loaded before
    auto plugin = registry->load_file(file);
    if (!plugin) {
        const auto &refusals = registry->refusals();
        throw std::runtime_error(file.string() + " did not load: " + (refusals.empty() ? "?" : refusals.back().reason));
    }
    return plugin;
}

Outcome open_device(Device &dev, const std::string &path, const std::map<std::string, std::string> &options,
                    bool inherit)
{
    OpenRequest request;
    request.path = path;
    request.options = options;
    request.inherit = inherit;
    return dev.open(request);
}

TransferResult transfer(Device &dev, const Transfer &request)
{
    std::string in(request.capacity, '\0');
    devhost_transfer x{};
    x.op = request.op;
    x.timeout_ms = request.timeout_ms;
    x.out = request.out.empty() ? nullptr : reinterpret_cast<const uint8_t *>(request.out.data());
    x.out_len = request.out.size();
    x.in = in.empty() ? nullptr : reinterpret_cast<uint8_t *>(in.data());
    x.in_capacity = in.size();
    if (!request.delimiter.empty()) {
        x.delimiter = reinterpret_cast<const uint8_t *>(request.delimiter.data());
        x.delimiter_len = request.delimiter.size();
    }
    x.control_code = request.control_code;
    x.message_id = request.message_id;
    if (request.offset) {
        x.flags |= DEVHOST_TRANSFER_HAS_OFFSET;
        x.offset = *request.offset;
    }
    TransferResult r;
    r.outcome = dev.transfer(x);
    r.data = in.substr(0, x.in_len);
    r.out_done = x.out_done;
    r.message_id = x.message_id;
    return r;
}

uint32_t control_code(const Device &dev, const std::string &name)
{
    const ControlSpec *spec = dev.plugin().find_control(name);
    if (!spec)
        throw std::runtime_error("the plugin declares no control named '" + name + "'");
    return spec->code;
}

TransferResult write(Device &dev, const std::string &bytes, int32_t timeout_ms)
{
    return transfer(dev, {.op = DEVHOST_OP_WRITE, .out = bytes, .timeout_ms = timeout_ms});
}

TransferResult read(Device &dev, uint32_t op, size_t capacity, int32_t timeout_ms, const std::string &delimiter)
{
    return transfer(dev, {.op = op, .capacity = capacity, .timeout_ms = timeout_ms, .delimiter = delimiter});
}

TransferResult request(Device &dev, const std::string &bytes, const std::string &delimiter, int32_t timeout_ms,
                       size_t capacity)
{
    return transfer(dev, {.op = DEVHOST_OP_REQUEST, .out = bytes, .capacity = capacity, .timeout_ms = timeout_ms,
                          .delimiter = delimiter});
}

TransferResult control(Device &dev, const std::string &name, const std::string &input, size_t capacity)
{
    return transfer(dev, {.op = DEVHOST_OP_CONTROL, .out = input, .capacity = capacity,
                          .control_code = control_code(dev, name)});
}

std::string info_value(const InfoList &info, const std::string &key)
{
    for (const auto &[k, v] : info)
        if (k == key)
            return v;
    return "<missing " + key + ">";
}

std::string info_value(Device &dev, const std::string &key)
{
    InfoList list;
    Outcome o = dev.info(list);
    if (!o.ok())
        throw std::runtime_error("info failed: " + o.message);
    return info_value(list, key);
}

std::string loop_stats(const std::shared_ptr<const Plugin> &loop)
{
    Device probe(loop, "stats-probe");
    Outcome o = probe.open({.path = "loop:stats-probe"});
    if (!o.ok())
        throw std::runtime_error("cannot open a loop stats probe: " + o.message);
    TransferResult r = control(probe, "stats");
    if (!r.outcome.ok())
        throw std::runtime_error("the loop plugin's stats control failed: " + r.outcome.message);
    return r.data;
}

LogCapture::LogCapture(spdlog::level::level_enum level) : previous_(spdlog::default_logger())
{
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    sink->set_pattern("%l: %v");
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(level);
    spdlog::set_default_logger(logger);
}

LogCapture::~LogCapture()
{
    spdlog::set_default_logger(previous_);
}

namespace {

// The system call a thread sleeps in, from its /proc syscall file, or -1
// ("running", or the thread is gone).
long syscall_of(const fs::path &file)
{
    std::ifstream in(file);
    long nr = -1;
    if (!(in >> nr))
        return -1;
    return nr;
}

}  // namespace

std::vector<pid_t> threads_asleep_waiting(pid_t except)
{
    std::vector<pid_t> tids;
    std::error_code ec;
    for (const auto &task : fs::directory_iterator("/proc/self/task", ec)) {
        const pid_t tid = static_cast<pid_t>(std::stol(task.path().filename().string()));
        if (tid != except && asleep_waiting(tid))
            tids.push_back(tid);
    }
    return tids;
}

bool process_asleep_in(pid_t pid, long nr)
{
    std::error_code ec;
    for (const auto &task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec))
        if (syscall_of(task.path() / "syscall") == nr)
            return true;
    return false;
}

bool asleep_waiting(pid_t tid, bool futex)
{
    const long nr = syscall_of("/proc/self/task/" + std::to_string(tid) + "/syscall");
#ifdef SYS_poll
    if (nr == SYS_poll)
        return true;
#endif
    return nr == SYS_ppoll || (futex && nr == SYS_futex);
}

bool await_asleep_in(pid_t pid, long nr, int ms)
{
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!process_asleep_in(pid, nr)) {
        if (std::chrono::steady_clock::now() > until)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

void await_waiting(pid_t tid, const std::function<bool()> &ready, bool futex)
{
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!(asleep_waiting(tid, futex) && (!ready || ready()))) {
        if (std::chrono::steady_clock::now() > until)
            throw std::runtime_error("the call never came to wait (10 s)");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

}  // namespace devhost::test
