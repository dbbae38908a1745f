#include "logging.hpp"

#include "deadlines.hpp"
#include "journal.hpp"
#include "log_file.hpp"

#include <atomic>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <vector>

namespace devhost::logging {

std::optional<spdlog::level::level_enum> parse_level(std::string_view name)
{
    static const std::pair<const char *, spdlog::level::level_enum> table[] = {
        {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
        {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
        {"warning", spdlog::level::warn}, {"error", spdlog::level::err},
        {"off", spdlog::level::off},
    };
    for (const auto &[n, level] : table)
        if (name == n)
            return level;
    return std::nullopt;
}

void setup(const Settings &settings)
{
    std::vector<spdlog::sink_ptr> sinks;
    if (stderr_is_journal()) {
        sinks.push_back(journal_sink());  // under systemd: each line with its priority
    } else {
        auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
        console->set_pattern("devhost: %^%l%$: %v");
        sinks.push_back(console);
    }
    if (settings.file) {
        // The file sink would create missing directories; a mistyped path
        // must not make directories (as root, anywhere).
        const auto parent = settings.file->parent_path();
        std::error_code ec;
        if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
            throw spdlog::spdlog_ex("log file " + settings.file->string() + ": directory '" + parent.string() +
                                     "' does not exist");
        auto file = std::make_shared<LogFileSink>(*settings.file, settings.max_file_size, settings.max_files);
        file->set_pattern("%Y-%m-%dT%H:%M:%S.%f%z %l [%t] %v");
        sinks.push_back(file);
    }
    auto logger = std::make_shared<spdlog::logger>("devhost", sinks.begin(), sinks.end());
    logger->set_level(parse_level(settings.level).value_or(spdlog::level::info));
    logger->flush_on(spdlog::level::warn);
    spdlog::set_default_logger(logger);
}

namespace {

spdlog::level::level_enum to_spdlog(int32_t level)
{
    switch (level) {
    case DEVHOST_LOG_TRACE: return spdlog::level::trace;
    case DEVHOST_LOG_DEBUG: return spdlog::level::debug;
    case DEVHOST_LOG_INFO: return spdlog::level::info;
    case DEVHOST_LOG_WARN: return spdlog::level::warn;
    default: return spdlog::level::err;
    }
}

void plugin_log(const devhost_host_device *device, int32_t level, const char *message)
{
    if (!message)
        return;
    if (device)
        spdlog::log(to_spdlog(level), "{}: {}", device->name, message);
    else
        spdlog::log(to_spdlog(level), "{}", message);
}

uint64_t service_monotonic_ns() { return devhost::monotonic_ns(); }

uint64_t service_deadline_ns(const devhost_host_device *device) { return hook_deadline_ns(device); }

std::atomic<ShareFd> share_fd_handler{nullptr};

// In a worker, the supervisor keeps a reference (worker.cpp); a host that
// runs plugins in its own process keeps none (plugin.h).
devhost_status service_share_fd(const devhost_host_device *device, int32_t fd, const char *role)
{
    const ShareFd handler = share_fd_handler.load();
    return handler ? handler(device, fd, role) : DEVHOST_E_UNSUPPORTED;
}

}  // namespace

void set_share_fd(ShareFd handler) { share_fd_handler = handler; }

namespace {
std::atomic<DropShared> drop_shared_handler{nullptr};
}

void set_drop_shared(DropShared handler) { drop_shared_handler = handler; }

void drop_shared(const devhost_host_device *device)
{
    if (const DropShared handler = drop_shared_handler.load())
        handler(device);
}

const devhost_host_services *host_services()
{
    static const devhost_host_services services = {
        sizeof(devhost_host_services), DEVHOST_ABI_VERSION, plugin_log, service_monotonic_ns,
        service_deadline_ns,           service_share_fd,
    };
    return &services;
}

}  // namespace devhost::logging
