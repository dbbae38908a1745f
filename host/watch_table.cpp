#include "watch_table.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <algorithm>
#include <new>
#include <sys/mman.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace devhost {

namespace {

constexpr uint64_t table_magic = 0x6465766877617463ULL;  // "devhwatc"

struct Header {
    uint64_t magic;
    uint64_t slots;
    pthread_mutex_t records_lock;
};

constexpr size_t slots_offset = (sizeof(Header) + alignof(HookWatch) - 1) / alignof(HookWatch) * alignof(HookWatch);

[[noreturn]] void fail(const char *what)
{
    throw std::system_error(errno, std::generic_category(), std::string("watch table: ") + what);
}

}  // namespace

void HookWatch::begin(int32_t h, uint64_t deadline)
{
    deadline_ns.store(deadline == UINT64_MAX ? 0 : deadline, std::memory_order_relaxed);
    hook.store(h, std::memory_order_relaxed);
    calls.fetch_add(1, std::memory_order_release);
}

void HookWatch::end()
{
    hook.store(-1, std::memory_order_relaxed);
    deadline_ns.store(0, std::memory_order_release);
}

WatchTable WatchTable::create(size_t slots)
{
    const size_t bytes = slots_offset + std::max<size_t>(slots, 1) * sizeof(HookWatch);
    UniqueFd fd(memfd_create("devhost-watch", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd)
        fail("memfd_create");
    if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0)
        fail("ftruncate");
    // Its size is fixed: a worker cannot shrink it under the supervisor.
    if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        fail("sealing");
    void *map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (map == MAP_FAILED)
        fail("mmap");
    auto *header = new (map) Header{table_magic, slots, {}};
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&header->records_lock, &attr);
    pthread_mutexattr_destroy(&attr);
    auto *first = reinterpret_cast<HookWatch *>(static_cast<char *>(map) + slots_offset);
    for (size_t i = 0; i < slots; i++)
        new (first + i) HookWatch();
    return WatchTable(std::move(fd), map, bytes, slots);
}

WatchTable WatchTable::attach(UniqueFd fd)
{
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        fail("fstat");
    const size_t bytes = static_cast<size_t>(st.st_size);
    if (bytes < slots_offset) {
        errno = EINVAL;
        fail("too small");
    }
    void *map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (map == MAP_FAILED)
        fail("mmap");
    const auto *header = static_cast<const Header *>(map);
    const uint64_t slots = header->magic == table_magic ? header->slots : 0;
    WatchTable table(std::move(fd), map, bytes, slots);
    if (header->magic != table_magic || slots_offset + slots * sizeof(HookWatch) > bytes) {
        errno = EINVAL;
        fail("not a watch table");
    }
    return table;
}

WatchTable::WatchTable(WatchTable &&other) noexcept
    : fd_(std::move(other.fd_)), map_(other.map_), bytes_(other.bytes_), slots_(other.slots_)
{
    other.map_ = nullptr;
}

WatchTable::~WatchTable()
{
    if (map_)
        ::munmap(map_, bytes_);
}

size_t WatchTable::size() const { return slots_; }

HookWatch &WatchTable::slot(size_t i) const
{
    return reinterpret_cast<HookWatch *>(static_cast<char *>(map_) + slots_offset)[i];
}

pthread_mutex_t *WatchTable::records_lock() const { return &static_cast<Header *>(map_)->records_lock; }

SharedLock::SharedLock(pthread_mutex_t *mutex, int64_t patience_ms) : mutex_(mutex)
{
    if (!mutex_)
        return;
    int rc;
    if (patience_ms < 0) {
        rc = pthread_mutex_lock(mutex_);
    } else {
        timespec until{};
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += patience_ms / 1000;
        until.tv_nsec += (patience_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        rc = pthread_mutex_timedlock(mutex_, &until);
    }
    if (rc == EOWNERDEAD)
        pthread_mutex_consistent(mutex_);  // its holder died; the record it wrote is whole or absent
    else if (rc != 0)
        mutex_ = nullptr;  // not held: nothing to unlock
}

SharedLock::~SharedLock()
{
    if (mutex_)
        pthread_mutex_unlock(mutex_);
}

}  // namespace devhost
