#include "libsystemd.hpp"

#include <dlfcn.h>
#include <mutex>

namespace devhost {

const LibSystemd *libsystemd(std::string &error)
{
    static std::once_flag once;
    static LibSystemd lib;
    static const LibSystemd *loaded = nullptr;
    static std::string why;
    std::call_once(once, [] {
        void *handle = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            const char *e = ::dlerror();
            why = std::string("cannot load libsystemd.so.0: ") + (e ? e : "unknown error");
            return;
        }
#define DEVHOST_SD_RESOLVE(name)                                                                                       \
    lib.name = reinterpret_cast<decltype(lib.name)>(::dlsym(handle, #name));                                          \
    if (!lib.name) {                                                                                                   \
        why = "libsystemd.so.0 has no " #name;                                                                         \
        return;                                                                                                        \
    }
        DEVHOST_SD_FUNCTIONS(DEVHOST_SD_RESOLVE)
#undef DEVHOST_SD_RESOLVE
        loaded = &lib;  // the handle stays open for the process
    });
    if (!loaded)
        error = why;
    return loaded;
}

}  // namespace devhost
