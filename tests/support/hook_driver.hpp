// A plugin driven hook by hook, without the host: loaded with dlopen, its
// entry point called with a 1.1 negotiation whose services table answers
// deadline_ns with a deadline the test chooses (the in-tree host does not
// fill that service yet), so that a test can check that every hook, those
// without a timeout argument too, keeps to the deadline the host gives it.
//
// Load a plugin here only in a test binary that does not also load it through
// the host's PluginRegistry: both would share the library's one copy of the
// services pointer the plugin keeps from its last negotiation. Header-only;
// a test calls every hook itself (lock and unlock too). The C plugins' 1.1
// tests use it; direct_plugin.hpp of the C++ plugin work does the same with
// device wrappers, and the two can become one.
#pragma once

#include <devhost/plugin.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <filesystem>
#include <map>
#include <string>
#include <time.h>
#include <vector>

namespace devhost::test {

// What the services table answers and what it was asked (one test thread
// drives the hooks).
struct HookHost {
    static inline uint64_t deadline = DEVHOST_DEADLINE_NONE;
    static inline int deadline_calls = 0;
    static inline const devhost_host_device *last_device = nullptr;
    static inline std::vector<std::string> log;

    static uint64_t now_ns()
    {
        timespec ts{};
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
    }
    // deadline_ns answers `ms` from now (negative: DEVHOST_DEADLINE_NONE).
    static void deadline_in(int64_t ms)
    {
        deadline = ms < 0 ? DEVHOST_DEADLINE_NONE : now_ns() + static_cast<uint64_t>(ms) * 1000000u;
    }
    static void log_line(const devhost_host_device *, int32_t, const char *message) { log.emplace_back(message); }
    static uint64_t deadline_ns(const devhost_host_device *device)
    {
        deadline_calls++;
        last_device = device;
        return deadline;
    }
    static devhost_status share_fd(const devhost_host_device *, int32_t, const char *)
    {
        return DEVHOST_E_UNSUPPORTED;
    }
};

// Milliseconds since `start` on the steady clock.
inline int64_t elapsed_ms(std::chrono::steady_clock::time_point start)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
}

inline devhost_error fresh_error()
{
    devhost_error err{};
    err.struct_size = sizeof err;
    return err;
}

class HookPlugin {
public:
    explicit HookPlugin(const std::filesystem::path &file)
    {
        library_ = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
        INFO((library_ ? "" : dlerror()));
        REQUIRE(library_);
        auto negotiate = reinterpret_cast<devhost_negotiate_fn>(dlsym(library_, DEVHOST_ENTRY_POINT_NAME));
        REQUIRE(negotiate);
        services_.struct_size = sizeof services_;
        services_.host_abi_version = DEVHOST_ABI_VERSION;
        services_.log = HookHost::log_line;
        services_.monotonic_ns = HookHost::now_ns;
        services_.deadline_ns = HookHost::deadline_ns;
        services_.share_fd = HookHost::share_fd;
        devhost_negotiation n{};
        n.struct_size = sizeof n;
        n.host_abi_version = DEVHOST_ABI_VERSION;
        n.host_min_abi_version = DEVHOST_MAKE_VERSION(1, 0);
        n.services = &services_;
        n.error = &error_;
        error_.struct_size = sizeof error_;
        REQUIRE(negotiate(&n) == DEVHOST_OK);
        REQUIRE(n.plugin_abi_version == DEVHOST_ABI_VERSION);
        descriptor_ = n.descriptor;
        REQUIRE(descriptor_);
        REQUIRE(descriptor_->hooks);
    }
    ~HookPlugin()
    {
        if (library_)
            dlclose(library_);
    }
    HookPlugin(const HookPlugin &) = delete;
    HookPlugin &operator=(const HookPlugin &) = delete;

    const devhost_plugin_descriptor &descriptor() const { return *descriptor_; }
    const devhost_hooks &hooks() const { return *descriptor_->hooks; }

    // One value per schema entry, in schema order: `options` where given,
    // else the schema's default (is_set 0 when there is none).
    std::vector<devhost_option_value> option_values(const std::map<std::string, std::string> &options)
    {
        std::vector<devhost_option_value> values;
        texts_.clear();
        texts_.reserve(descriptor_->option_count);
        for (uint32_t i = 0; i < descriptor_->option_count; i++) {
            const devhost_option_spec &spec = descriptor_->options[i];
            auto it = options.find(spec.name);
            devhost_option_value v{};
            v.struct_size = sizeof v;
            v.type = spec.type;
            v.name = spec.name;
            v.is_set = it != options.end() || spec.default_value;
            texts_.push_back(it != options.end() ? it->second : spec.default_value ? spec.default_value : "");
            v.text = texts_.back().c_str();
            v.integer = integer_of(spec, texts_.back());
            values.push_back(v);
        }
        return values;
    }

    // Opens `path`; *device is what open left (maybe half-built), to close.
    devhost_status open(const std::string &path, devhost_device **device, devhost_error &err,
                        const std::map<std::string, std::string> &options = {}, int32_t timeout_ms = -1,
                        int cancel_fd = -1, const devhost_host_device *host_device = nullptr)
    {
        auto values = option_values(options);
        devhost_open_params p{};
        p.struct_size = sizeof p;
        p.device_name = "direct";
        p.path = path.c_str();
        p.configured_path = path.c_str();
        p.options = values.data();
        p.option_count = static_cast<uint32_t>(values.size());
        p.timeout_ms = timeout_ms;
        p.cancel_fd = cancel_fd;
        p.host_device = host_device ? host_device : token();
        *device = nullptr;
        return hooks().open(&p, device, &err);
    }

    // A host_device token for this test (opaque to the plugin).
    static const devhost_host_device *token()
    {
        static char token;
        return reinterpret_cast<const devhost_host_device *>(&token);
    }

private:
    static int64_t integer_of(const devhost_option_spec &spec, const std::string &text)
    {
        switch (spec.type) {
        case DEVHOST_OPTION_BOOL:
            return text == "true" || text == "yes" || text == "on" || text == "1";
        case DEVHOST_OPTION_ENUM: {
            std::string choices = spec.choices ? spec.choices : "";
            int64_t index = 0;
            for (size_t at = 0;; index++) {
                size_t bar = choices.find('|', at);
                if (choices.substr(at, bar == std::string::npos ? std::string::npos : bar - at) == text)
                    return index;
                if (bar == std::string::npos)
                    return -1;
                at = bar + 1;
            }
        }
        case DEVHOST_OPTION_DURATION: {
            char *end = nullptr;
            int64_t n = std::strtoll(text.c_str(), &end, 10);
            std::string unit = end ? end : "";
            return unit == "s" ? n * 1000 : unit == "m" ? n * 60000 : unit == "h" ? n * 3600000 : n;
        }
        case DEVHOST_OPTION_INT:
            return std::strtoll(text.c_str(), nullptr, 0);
        default:
            return 0;
        }
    }

    void *library_ = nullptr;
    devhost_host_services services_{};
    devhost_error error_{};
    const devhost_plugin_descriptor *descriptor_ = nullptr;
    std::vector<std::string> texts_;
};

}  // namespace devhost::test
