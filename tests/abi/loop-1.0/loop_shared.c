/*
 * Process-wide state of the loop plugin; see loop_shared.h.
 *
 * Lock waits use a condition variable on CLOCK_MONOTONIC, woken when any name
 * is unlocked, and wake up at least every LOCK_POLL_NS to look at the
 * waiter's cancel handle (an eventfd cannot wake a condition variable).
 */
#include "loop_shared.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOCK_POLL_NS 10000000ull /* 10 ms */

struct loop_name {
    struct loop_name *next;
    char *name;
    unsigned long open_count;   /* devices with this name open */
    char *exclusive_holder;     /* config name of the exclusive opener, or NULL */
    const void *lock_owner;     /* device holding the lock, or NULL */
    const char *lock_owner_name;
};

static pthread_mutex_t table_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lock_released; /* initialised once, on CLOCK_MONOTONIC */
static pthread_once_t lock_released_once = PTHREAD_ONCE_INIT;
static loop_name *table;             /* all open names */
static loop_counters counters;

static void init_lock_released(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&lock_released, &attr);
    pthread_condattr_destroy(&attr);
}

uint64_t loop_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

char *loop_copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

static void free_name(loop_name *entry)
{
    free(entry->name);
    free(entry->exclusive_holder);
    free(entry);
}

/* Caller holds table_mutex. */
static loop_name *find_name(const char *name)
{
    loop_name *e;
    for (e = table; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

devhost_status loop_name_acquire(const char *name, const char *device_name, int exclusive,
                                 loop_name **entry, devhost_error *err)
{
    loop_name *e;
    *entry = NULL;
    pthread_mutex_lock(&table_mutex);
    e = find_name(name);
    if (e && e->exclusive_holder) {
        devhost_status s = devhost_fail(err, DEVHOST_E_BUSY, 0,
                                        "loop:%s is busy: device '%s' has it open exclusively",
                                        name, e->exclusive_holder);
        pthread_mutex_unlock(&table_mutex);
        return s;
    }
    if (e && exclusive) {
        devhost_status s = devhost_fail(err, DEVHOST_E_BUSY, 0,
                                        "loop:%s is busy: an exclusive open needs it unused, "
                                        "but %lu device(s) have it open",
                                        name, e->open_count);
        pthread_mutex_unlock(&table_mutex);
        return s;
    }
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e || !(e->name = loop_copy_string(name))) {
            free(e);
            pthread_mutex_unlock(&table_mutex);
            return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "loop:%s: out of memory", name);
        }
        if (exclusive && !(e->exclusive_holder = loop_copy_string(device_name))) {
            free_name(e);
            pthread_mutex_unlock(&table_mutex);
            return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "loop:%s: out of memory", name);
        }
        e->next = table;
        table = e;
    }
    e->open_count++;
    counters.open++;
    counters.opened_total++;
    pthread_mutex_unlock(&table_mutex);
    *entry = e;
    return DEVHOST_OK;
}

void loop_name_release(loop_name *entry)
{
    loop_name **link;
    pthread_mutex_lock(&table_mutex);
    counters.open--;
    if (--entry->open_count == 0) {
        for (link = &table; *link; link = &(*link)->next) {
            if (*link == entry) {
                *link = entry->next;
                break;
            }
        }
        free_name(entry);
    }
    pthread_mutex_unlock(&table_mutex);
}

/* True when the eventfd has been signalled. Never blocks, never reads it. */
static int cancelled(int cancel_fd)
{
    struct pollfd p;
    if (cancel_fd < 0)
        return 0;
    p.fd = cancel_fd;
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

devhost_status loop_name_lock(loop_name *entry, const void *owner, const char *owner_name,
                              int cancel_fd, uint64_t deadline_ns, devhost_error *err)
{
    pthread_once(&lock_released_once, init_lock_released);
    pthread_mutex_lock(&table_mutex);
    while (entry->lock_owner && entry->lock_owner != owner) {
        uint64_t now = loop_now_ns();
        uint64_t wake;
        struct timespec ts;
        if (cancelled(cancel_fd)) {
            devhost_status s = devhost_fail(err, DEVHOST_E_CANCELLED, 0,
                                            "lock of loop:%s cancelled while device '%s' held it",
                                            entry->name, entry->lock_owner_name);
            pthread_mutex_unlock(&table_mutex);
            return s;
        }
        if (now >= deadline_ns) {
            devhost_status s = devhost_fail(err, DEVHOST_E_TIMEOUT, 0,
                                            "loop:%s is still locked by device '%s'",
                                            entry->name, entry->lock_owner_name);
            pthread_mutex_unlock(&table_mutex);
            return s;
        }
        wake = deadline_ns - now < LOCK_POLL_NS ? deadline_ns : now + LOCK_POLL_NS;
        ts.tv_sec = (time_t)(wake / 1000000000ull);
        ts.tv_nsec = (long)(wake % 1000000000ull);
        pthread_cond_timedwait(&lock_released, &table_mutex, &ts);
    }
    if (!entry->lock_owner) {
        entry->lock_owner = owner;
        entry->lock_owner_name = owner_name;
        counters.locked++;
    }
    pthread_mutex_unlock(&table_mutex);
    return DEVHOST_OK;
}

void loop_name_unlock(loop_name *entry, const void *owner)
{
    pthread_once(&lock_released_once, init_lock_released);
    pthread_mutex_lock(&table_mutex);
    if (entry->lock_owner == owner) {
        entry->lock_owner = NULL;
        entry->lock_owner_name = NULL;
        counters.locked--;
        pthread_cond_broadcast(&lock_released);
    }
    pthread_mutex_unlock(&table_mutex);
}

void loop_count_connected(int delta)
{
    pthread_mutex_lock(&table_mutex);
    if (delta > 0)
        counters.connected++;
    else
        counters.connected--;
    pthread_mutex_unlock(&table_mutex);
}

void loop_counters_get(loop_counters *out)
{
    pthread_mutex_lock(&table_mutex);
    *out = counters;
    pthread_mutex_unlock(&table_mutex);
}
