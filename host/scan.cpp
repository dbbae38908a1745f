#include "scan.hpp"

#include "deadlines.hpp"
#include "logging.hpp"
#include "common/text.hpp"

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

namespace devhost {

namespace {

// What an enumerate running on its own thread reports, shared with the
// caller, which may stop waiting for it.
struct Collected {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    bool truncated = false;
    size_t nonzero_reserved = 0;  // entries left out for a nonzero reserved field
    devhost_status status = DEVHOST_OK;
    std::string message;
    std::optional<std::string> late;
    std::vector<FoundDevice> found;
    std::string device_class;
};

std::string field(const devhost_found_device *f, size_t offset_end, const char *value)
{
    if (f->struct_size < offset_end || !value)
        return "";
    return std::string(value, strnlen(value, 4096));
}

void found_put(void *context, const devhost_found_device *f)
{
    auto *c = static_cast<Collected *>(context);
    if (!f || !DEVHOST_HAS_FIELD(devhost_found_device, f->struct_size, path) || !f->path)
        return;
    std::lock_guard lock(c->mutex);
    if (DEVHOST_HAS_FIELD(devhost_found_device, f->struct_size, reserved) && f->reserved != 0) {
        c->nonzero_reserved++;
        return;
    }
    if (c->found.size() >= max_found_devices) {
        c->truncated = true;
        return;
    }
#define FOUND_FIELD(name) field(f, offsetof(devhost_found_device, name) + sizeof f->name, f->name)
    c->found.push_back({c->device_class, FOUND_FIELD(path), FOUND_FIELD(by_id), FOUND_FIELD(description),
                        FOUND_FIELD(usb_vendor), FOUND_FIELD(usb_product), FOUND_FIELD(usb_serial)});
#undef FOUND_FIELD
}

// Runs on the enumerate's thread: the call, under its deadline.
void run_enumerate(const std::shared_ptr<const Plugin> &plugin, uint32_t flags,
                   const std::shared_ptr<Collected> &c)
{
    devhost_enumerate_params params{};
    params.struct_size = sizeof params;
    params.flags = flags;
    devhost_found_sink sink{};
    sink.struct_size = sizeof sink;
    sink.context = c.get();
    sink.put = found_put;
    devhost_error err{};
    err.struct_size = sizeof err;
    const uint64_t deadline = deadline_after(enumerate_timeout_ms);
    devhost_status status;
    {
        EnumerateDeadline during(deadline);
        status = plugin->hooks().enumerate(&params, &sink, &err);
    }
    std::lock_guard lock(c->mutex);
    c->status = status;
    c->message.assign(err.message, strnlen(err.message, sizeof err.message));
    c->late = overrun(deadline);
    c->done = true;
    c->done_cv.notify_all();
}

}  // namespace

ClassScan scan_class(const std::shared_ptr<const Plugin> &plugin, uint32_t flags, std::chrono::milliseconds grace)
{
    ClassScan scan;
    scan.device_class = plugin->device_class();
    if (!plugin->hooks().enumerate)
        return scan;
    scan.listed = true;
    auto c = std::make_shared<Collected>();
    c->device_class = scan.device_class;
    std::thread worker([plugin, flags, c] { run_enumerate(plugin, flags, c); });
    std::unique_lock lock(c->mutex);
    if (!c->done_cv.wait_for(lock, std::chrono::milliseconds(enumerate_timeout_ms) + grace, [&] { return c->done; })) {
        lock.unlock();
        worker.detach();  // it holds the plugin and `c`: both outlive it
        scan.ok = false;
        scan.abandoned = true;
        scan.error = "enumerate still running " + std::to_string(grace.count()) +
                     " ms after its deadline; abandoned";
        return scan;
    }
    lock.unlock();
    worker.join();
    scan.found = std::move(c->found);
    if (c->late) {
        scan.ok = false;
        scan.error = "enumerate: " + *c->late;
    } else if (c->status != DEVHOST_OK) {
        scan.ok = false;
        scan.error = "enumerate failed: " + std::string(devhost_status_name(c->status)) +
                     (c->message.empty() ? "" : ": " + c->message);
    }
    if (c->nonzero_reserved)
        spdlog::warn("{}: enumerate reported {} device(s) with a nonzero reserved field; they are left out",
                     scan.device_class, c->nonzero_reserved);
    if (c->truncated)
        spdlog::warn("{}: enumerate reported more than {} devices; the rest are left out", scan.device_class,
                     max_found_devices);
    return scan;
}

namespace {

std::string printable(const std::string &s)
{
    return text::to_printable(reinterpret_cast<const uint8_t *>(s.data()), s.size());
}

}  // namespace

void print_scan_text(const std::vector<ClassScan> &scans, std::ostream &out)
{
    for (const auto &scan : scans)
        for (const auto &f : scan.found) {
            out << f.device_class << " " << printable(f.path);
            if (!f.by_id.empty())
                out << " by-id=" << printable(f.by_id);
            if (!f.usb_vendor.empty() || !f.usb_product.empty())
                out << " usb=" << printable(f.usb_vendor) << ":" << printable(f.usb_product);
            if (!f.usb_serial.empty())
                out << " usb-serial=" << printable(f.usb_serial);
            if (!f.description.empty())
                out << " \"" << printable(f.description) << "\"";
            out << "\n";
        }
}

void print_scan_json(const std::vector<ClassScan> &scans, std::ostream &out)
{
    auto value = [](const std::string &s) { return s.empty() ? nlohmann::json() : nlohmann::json(s); };
    nlohmann::json devices = nlohmann::json::array(), classes = nlohmann::json::array();
    for (const auto &scan : scans) {
        for (const auto &f : scan.found)
            devices.push_back({{"class", f.device_class},
                               {"path", f.path},
                               {"by_id", value(f.by_id)},
                               {"description", value(f.description)},
                               {"usb_vendor", value(f.usb_vendor)},
                               {"usb_product", value(f.usb_product)},
                               {"usb_serial", value(f.usb_serial)}});
        classes.push_back({{"class", scan.device_class},
                           {"listed", scan.listed},
                           {"ok", scan.ok},
                           {"error", value(scan.error)}});
    }
    const nlohmann::json doc = {{"devices", devices}, {"classes", classes}};
    // A plugin's bytes need not be UTF-8: replaced, never thrown on.
    out << doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace devhost
