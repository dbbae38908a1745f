// DirectPlugin and DirectDevice: see direct_plugin.hpp.
#include "direct_plugin.hpp"

#include "common/text.hpp"
#include "options.hpp"

#include <devhost/plugin_util.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace devhost::test {

namespace {

// The services table's state: one DirectPlugin at a time.
std::atomic<uint64_t> g_deadline{DEVHOST_DEADLINE_NONE};
std::atomic<unsigned> g_asked{0};
std::atomic<const devhost_host_device *> g_asked_for{nullptr};
std::mutex g_log_mutex;
std::vector<std::string> g_log;

void log_line(const devhost_host_device *, int32_t level, const char *message)
{
    std::lock_guard<std::mutex> lock(g_log_mutex);
    g_log.push_back(std::to_string(level) + " " + message);
}

uint64_t deadline_ns(const devhost_host_device *device)
{
    g_asked_for = device;
    g_asked++;
    return g_deadline.load();
}

// share_fd's state: its answer, its calls, and the copies it holds (as a
// supervisor would) by device and role.
std::mutex g_share_mutex;
devhost_status g_share_answer = DEVHOST_E_UNSUPPORTED;
std::vector<DirectPlugin::ShareCall> g_share_calls;
std::map<std::pair<const devhost_host_device *, std::string>, int> g_held;

// Closes the copies held for `device` (nullptr: all); g_share_mutex held.
void drop_locked(const devhost_host_device *device)
{
    for (auto it = g_held.begin(); it != g_held.end();) {
        if (device && it->first.first != device) {
            ++it;
            continue;
        }
        ::close(it->second);
        it = g_held.erase(it);
    }
}

devhost_status share_fd(const devhost_host_device *device, int32_t fd, const char *role)
{
    std::lock_guard<std::mutex> lock(g_share_mutex);
    DirectPlugin::ShareCall call;
    call.device = device;
    call.fd = fd;
    call.role = role ? role : "";
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        call.described = true;
        call.dev = st.st_dev;
        call.ino = st.st_ino;
        call.rdev = st.st_rdev;
        call.mode = st.st_mode;
        call.status_flags = fcntl(fd, F_GETFL);
    }
    call.answer = g_share_answer;
    if (call.answer == DEVHOST_OK) {
        const auto key = std::make_pair(device, call.role);
        if (!devhost_identifier_valid(role) || (fd >= 0 && !call.described) || fd < -1) {
            call.answer = DEVHOST_E_INVALID;
        } else {
            auto it = g_held.find(key);
            if (it != g_held.end()) {
                ::close(it->second);
                g_held.erase(it);
            }
            if (fd >= 0)
                g_held[key] = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        }
    }
    g_share_calls.push_back(call);
    return call.answer;
}

const devhost_host_services g_services = {sizeof(devhost_host_services), DEVHOST_ABI_VERSION, log_line,
                                          devhost_util_now_ns, deadline_ns, share_fd};

devhost_error error_record()
{
    devhost_error err;
    devhost_util_error_init(&err);
    return err;
}

Outcome outcome(devhost_status status, const devhost_error &err)
{
    Outcome o;
    o.status = status;
    if (status != DEVHOST_OK) {
        o.message.assign(err.message, strnlen(err.message, sizeof err.message));
        o.os_errno = err.os_errno;
    }
    return o;
}

// The host's view of one option spec, for its parser.
OptionSpec spec_of(const devhost_option_spec &s)
{
    OptionSpec spec;
    spec.name = s.name;
    spec.type = s.type;
    if (s.default_value)
        spec.default_value = s.default_value;
    if (s.choices)
        spec.choices = text::split(s.choices, '|');
    spec.min = s.min;
    spec.max = s.max;
    return spec;
}

// One value per schema entry, in schema order: the configured text where
// given, else the default (is_set 0 when there is neither), each parsed
// by the host's parser. `texts` keeps the strings the values point into.
std::vector<devhost_option_value> option_values(const devhost_plugin_descriptor &d,
                                                const std::map<std::string, std::string> &options,
                                                std::vector<std::string> &texts)
{
    texts.assign(d.option_count, std::string());
    std::vector<devhost_option_value> values(d.option_count);
    for (uint32_t i = 0; i < d.option_count; i++) {
        const devhost_option_spec &s = d.options[i];
        devhost_option_value &v = values[i];
        v.struct_size = sizeof v;
        v.type = s.type;
        v.name = s.name;
        auto it = options.find(s.name);
        std::optional<std::string> text = it != options.end() ? std::optional(it->second)
                                          : s.default_value ? std::optional<std::string>(s.default_value)
                                                            : std::nullopt;
        if (text) {
            std::string why;
            auto parsed = parse_option_value(spec_of(s), *text, why);
            if (!parsed)
                throw std::runtime_error(std::string("option ") + s.name + ": " + why);
            texts[i] = *text;
            v.integer = *parsed;
            v.is_set = 1;
        }
    }
    for (uint32_t i = 0; i < d.option_count; i++)
        values[i].text = texts[i].c_str();
    return values;
}

// What the host answers for a hook the plugin left NULL.
Outcome no_hook(const char *name)
{
    return Outcome{DEVHOST_E_UNSUPPORTED, std::string("no ") + name + " hook", 0};
}

}  // namespace

DirectPlugin::DirectPlugin(const std::filesystem::path &file)
{
    library_ = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!library_)
        throw std::runtime_error("dlopen " + file.string() + ": " + dlerror());
    auto negotiate = reinterpret_cast<devhost_negotiate_fn>(dlsym(library_, DEVHOST_ENTRY_POINT_NAME));
    if (!negotiate)
        throw std::runtime_error(file.string() + " has no entry point");
    devhost_error err = error_record();
    devhost_negotiation n{};
    n.struct_size = sizeof n;
    n.host_abi_version = DEVHOST_ABI_VERSION;
    n.host_min_abi_version = DEVHOST_MAKE_VERSION(1, 0);
    n.services = &g_services;
    n.error = &err;
    devhost_status status = negotiate(&n);
    if (status != DEVHOST_OK || !n.descriptor)
        throw std::runtime_error(file.string() + " refused the negotiation: " + err.message);
    descriptor_ = n.descriptor;
    abi_version_ = n.plugin_abi_version;
    set_deadline(DEVHOST_DEADLINE_NONE);
}

DirectPlugin::~DirectPlugin()
{
    if (descriptor_ && DEVHOST_HAS_FIELD(devhost_hooks, hooks().struct_size, unload) && hooks().unload)
        hooks().unload();
    dlclose(library_);
    set_share_answer(DEVHOST_E_UNSUPPORTED);
}

std::vector<std::string> DirectPlugin::path_patterns() const
{
    std::vector<std::string> out;
    if (!DEVHOST_HAS_FIELD(devhost_plugin_descriptor, descriptor_->struct_size, path_patterns))
        return out;
    for (const char *const *p = descriptor_->path_patterns; p && *p; p++)
        out.emplace_back(*p);
    return out;
}

const devhost_option_spec *DirectPlugin::option(const std::string &name) const
{
    for (uint32_t i = 0; i < descriptor_->option_count; i++)
        if (name == descriptor_->options[i].name)
            return &descriptor_->options[i];
    return nullptr;
}

std::vector<std::string> DirectPlugin::warnings()
{
    const std::string prefix = std::to_string(DEVHOST_LOG_WARN) + " ";
    std::vector<std::string> out;
    for (const auto &line : log_lines())
        if (line.rfind(prefix, 0) == 0)
            out.push_back(line.substr(prefix.size()));
    return out;
}

void DirectPlugin::clear_log()
{
    std::lock_guard<std::mutex> lock(g_log_mutex);
    g_log.clear();
}

void DirectPlugin::set_share_answer(devhost_status answer)
{
    std::lock_guard<std::mutex> lock(g_share_mutex);
    drop_locked(nullptr);
    g_share_calls.clear();
    g_share_answer = answer;
}

std::vector<DirectPlugin::ShareCall> DirectPlugin::share_calls()
{
    std::lock_guard<std::mutex> lock(g_share_mutex);
    return g_share_calls;
}

int DirectPlugin::held(const devhost_host_device *device, const std::string &role)
{
    std::lock_guard<std::mutex> lock(g_share_mutex);
    auto it = g_held.find(std::make_pair(device, role));
    return it == g_held.end() ? -1 : it->second;
}

void DirectPlugin::drop_held(const devhost_host_device *device)
{
    std::lock_guard<std::mutex> lock(g_share_mutex);
    drop_locked(device);
}

void DirectPlugin::set_deadline(uint64_t deadline_ns)
{
    g_deadline = deadline_ns;
    g_asked = 0;
    g_asked_for = nullptr;
}

void DirectPlugin::set_deadline_in(std::chrono::milliseconds in)
{
    set_deadline(devhost_util_deadline_ms(in.count()));
}

unsigned DirectPlugin::deadline_asked() { return g_asked.load(); }

const devhost_host_device *DirectPlugin::deadline_asked_for() { return g_asked_for.load(); }

std::vector<std::string> DirectPlugin::log_lines()
{
    std::lock_guard<std::mutex> lock(g_log_mutex);
    return g_log;
}

Outcome DirectPlugin::enumerate(uint32_t flags, std::vector<Found> &found) const
{
    if (!DEVHOST_HAS_FIELD(devhost_hooks, hooks().struct_size, enumerate) || !hooks().enumerate)
        return Outcome{DEVHOST_E_UNSUPPORTED, "no enumerate hook", 0};
    devhost_enumerate_params params{};
    params.struct_size = sizeof params;
    params.flags = flags;
    devhost_found_sink sink{};
    sink.struct_size = sizeof sink;
    sink.context = &found;
    sink.put = [](void *context, const devhost_found_device *d) {
        auto text = [](const char *s) { return s ? std::optional<std::string>(s) : std::nullopt; };
        static_cast<std::vector<Found> *>(context)->push_back(Found{text(d->path), text(d->by_id),
                                                                    text(d->description), text(d->usb_vendor),
                                                                    text(d->usb_product), text(d->usb_serial)});
    };
    devhost_error err = error_record();
    return outcome(hooks().enumerate(&params, &sink, &err), err);
}

DirectDevice::DirectDevice(const DirectPlugin &plugin, const std::string &path,
                           const std::map<std::string, std::string> &options, int32_t timeout_ms)
    : plugin_(plugin)
{
    std::vector<std::string> texts;
    std::vector<devhost_option_value> values = option_values(plugin.descriptor(), options, texts);
    open(path, values, timeout_ms);
}

DirectDevice::DirectDevice(const DirectPlugin &plugin, const std::string &path, Forged,
                           std::vector<devhost_option_value> values, int32_t timeout_ms)
    : plugin_(plugin)
{
    for (auto &v : values)
        v.struct_size = sizeof v;
    open(path, values, timeout_ms);
}

void DirectDevice::open(const std::string &path, std::vector<devhost_option_value> &values, int32_t timeout_ms)
{
    const devhost_hooks &hooks = plugin_.hooks();
    cancel_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    devhost_open_params p{};
    p.struct_size = sizeof p;
    p.device_name = "direct";
    p.path = path.c_str();
    p.configured_path = path.c_str();
    p.options = values.empty() ? nullptr : values.data();
    p.option_count = static_cast<uint32_t>(values.size());
    p.timeout_ms = timeout_ms;
    p.cancel_fd = cancel_fd_;
    p.host_device = token();
    devhost_error err = error_record();
    devhost_status status = hooks.open(&p, &handle_, &err);
    opened_ = outcome(status, err);
    if (status != DEVHOST_OK && handle_) {
        devhost_error ignored = error_record();
        hooks.close(handle_, &ignored);
        handle_ = nullptr;
        DirectPlugin::drop_held(token());
    }
}

DirectDevice::~DirectDevice()
{
    close();
    if (cancel_fd_ >= 0)
        ::close(cancel_fd_);
}

const devhost_host_device *DirectDevice::token() const
{
    return reinterpret_cast<const devhost_host_device *>(&token_);
}

Outcome DirectDevice::info(InfoList &out)
{
    if (!plugin_.hooks().info)
        return no_hook("info");
    devhost_info_sink sink{};
    sink.struct_size = sizeof sink;
    sink.context = &out;
    sink.put = [](void *context, const char *key, const char *value) {
        static_cast<InfoList *>(context)->emplace_back(key, value);
    };
    devhost_error err = error_record();
    return outcome(plugin_.hooks().info(handle_, &sink, &err), err);
}

Outcome DirectDevice::transfer(devhost_transfer &xfer)
{
    if (!plugin_.hooks().transfer)
        return no_hook("transfer");
    xfer.struct_size = sizeof xfer;
    devhost_error err = error_record();
    return outcome(plugin_.hooks().transfer(handle_, &xfer, &err), err);
}

Outcome DirectDevice::connect(const devhost_connect_params &params)
{
    if (!plugin_.hooks().connect)
        return no_hook("connect");
    devhost_error err = error_record();
    return outcome(plugin_.hooks().connect(handle_, &params, &err), err);
}

Outcome DirectDevice::disconnect()
{
    if (!plugin_.hooks().disconnect)
        return no_hook("disconnect");
    devhost_error err = error_record();
    return outcome(plugin_.hooks().disconnect(handle_, &err), err);
}

Outcome DirectDevice::lock(int32_t timeout_ms)
{
    if (!plugin_.hooks().lock)
        return no_hook("lock");
    devhost_error err = error_record();
    return outcome(plugin_.hooks().lock(handle_, timeout_ms, &err), err);
}

Outcome DirectDevice::unlock()
{
    if (!plugin_.hooks().unlock)
        return no_hook("unlock");
    devhost_error err = error_record();
    return outcome(plugin_.hooks().unlock(handle_, &err), err);
}

Outcome DirectDevice::close()
{
    if (!handle_)
        return Outcome{};
    devhost_error err = error_record();
    devhost_status status = plugin_.hooks().close(handle_, &err);
    handle_ = nullptr;
    DirectPlugin::drop_held(token());
    return outcome(status, err);
}

int lose_other_descriptors(int copy, const std::vector<int> &keep)
{
    struct stat target;
    if (fstat(copy, &target) != 0)
        throw std::runtime_error("lose_other_descriptors: descriptor " + std::to_string(copy) + " is not open");
    std::vector<int> lose;
    std::error_code ec;
    for (const auto &entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
        int fd = std::stoi(entry.path().filename().string());
        struct stat st;
        if (fd == copy || std::find(keep.begin(), keep.end(), fd) != keep.end() || fstat(fd, &st) != 0)
            continue;
        if (st.st_dev == target.st_dev && st.st_ino == target.st_ino)
            lose.push_back(fd);
    }
    if (ec)
        throw std::runtime_error("lose_other_descriptors: /proc/self/fd: " + ec.message());
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0)
        throw std::runtime_error("lose_other_descriptors: /dev/null: " + std::string(std::strerror(errno)));
    for (int fd : lose)
        dup3(null_fd, fd, O_CLOEXEC);
    ::close(null_fd);
    return static_cast<int>(lose.size());
}

}  // namespace devhost::test
