// The restart ledger, its file and its JSON: see restart_policy.hpp.
#include "restart_policy.hpp"

#include "common/text.hpp"
#include "trusted_dir.hpp"
#include "trusted_file.hpp"

#include <devhost/unique_fd.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace devhost {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int ledger_version = 1;  // the file's "version"; another is not read

std::string mode_text(mode_t m)
{
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
    return buf;
}

// A window as people say it: "30 min", "2 h", "90 s", "1500 ms".
std::string window_text(int64_t ms)
{
    if (ms > 0 && ms % 3600000 == 0)
        return std::to_string(ms / 3600000) + " h";
    if (ms > 0 && ms % 60000 == 0)
        return std::to_string(ms / 60000) + " min";
    if (ms > 0 && ms % 1000 == 0)
        return std::to_string(ms / 1000) + " s";
    return std::to_string(ms) + " ms";
}

std::string deaths_text(int64_t n) { return std::to_string(n) + (n == 1 ? " worker death" : " worker deaths"); }

int64_t to_ms(RestartLedger::Clock::time_point t)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Whether two times (ms) are less than `window` apart, without overflow
// whatever a file held.
bool within(int64_t a, int64_t b, int64_t window)
{
    const uint64_t apart = a > b ? static_cast<uint64_t>(a) - static_cast<uint64_t>(b)
                                 : static_cast<uint64_t>(b) - static_cast<uint64_t>(a);
    return window > 0 && apart < static_cast<uint64_t>(window);
}

// flock(LOCK_EX) on a descriptor while alive. Taken without blocking and
// retried for at most `timeout`: a devhost stopped (SIGSTOP, a debugger)
// with the lock held must not stop this one for ever.
class FileLock {
public:
    FileLock(int fd, std::chrono::milliseconds timeout)
    {
        const auto end = std::chrono::steady_clock::now() + timeout;
        while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if ((errno != EWOULDBLOCK && errno != EINTR) || std::chrono::steady_clock::now() >= end) {
                os_errno_ = errno;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        fd_ = fd;
    }
    ~FileLock()
    {
        if (fd_ >= 0)
            ::flock(fd_, LOCK_UN);
    }
    FileLock(const FileLock &) = delete;
    FileLock &operator=(const FileLock &) = delete;
    explicit operator bool() const { return fd_ >= 0; }
    int os_errno() const { return os_errno_; }

private:
    int fd_ = -1;
    int os_errno_ = 0;
};

bool write_all(int fd, const std::string &text)
{
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        done += static_cast<size_t>(n);
    }
    return true;
}

// The whole file, at most `limit` bytes; false with errno set on a read
// error, or EFBIG when it holds more.
bool read_all(int fd, std::string &out, uint64_t limit)
{
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;
        if (n == 0)
            return true;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > limit)
            return errno = EFBIG, false;
    }
}

// A shape the JSON does not have: the reason a file is not a ledger.
struct NotLedger : std::runtime_error {
    using std::runtime_error::runtime_error;
};

const json &member(const json &object, const char *key)
{
    auto it = object.find(key);
    if (it == object.end())
        throw NotLedger(std::string("no \"") + key + "\"");
    return *it;
}

int64_t integer(const json &object, const char *key)
{
    const json &v = member(object, key);
    if (!v.is_number_integer())
        throw NotLedger(std::string("\"") + key + "\" is not an integer");
    return v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX ? INT64_MAX : v.get<int64_t>();
}

std::string text_of(const json &object, const char *key)
{
    const json &v = member(object, key);
    if (!v.is_string())
        throw NotLedger(std::string("\"") + key + "\" is not a string");
    return v.get<std::string>();
}

const json &of_type(const json &object, const char *key, json::value_t type, const char *what)
{
    const json &v = member(object, key);
    if (v.type() != type)
        throw NotLedger(std::string("\"") + key + "\" is not " + what);
    return v;
}

// A seed for the jitter: from std::random_device, or, where it has no
// source of entropy (it throws), from the clock and the pid: the jitter only
// needs to differ between hosts and classes, not to be secret.
uint64_t seed_jitter()
{
    try {
        std::random_device device;
        return (static_cast<uint64_t>(device()) << 32) ^ device();
    } catch (const std::exception &) {
        return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
               static_cast<uint64_t>(::getpid());
    }
}

}  // namespace

// ---- the file in the state directory

class RestartLedger::Store {
public:
    // Opens and checks the state directory; problem() says why when it
    // cannot be used.
    explicit Store(const fs::path &dir);

    bool usable() const { return static_cast<bool>(dir_); }
    const std::string &problem() const { return problem_; }
    int dir_fd() const { return dir_.fd(); }
    const std::string &dir_shown() const { return dir_shown_; }

    enum class Read { Missing, Ok, Corrupt, Refused };
    // Reads the file into `out` (emptied unless Ok); `problem` says what is
    // wrong with it for Corrupt and Refused.
    Read read(Records &out, std::string &problem) const;
    // Replaces the file whole with `records`; false with `problem` set.
    bool write(const Records &records, std::string &problem) const;

    static std::string to_json(const Records &records);
    // The records of a ledger's text, or nullopt with `why` set.
    static std::optional<Records> from_json(const std::string &text, std::string &why);

private:
    static ClassRecord class_from_json(const json &c);

    trusted_dir::Dir dir_;
    std::string dir_shown_;
    std::string file_shown_;
    std::string problem_;
};

RestartLedger::Store::Store(const fs::path &dir)
    : dir_shown_(dir.string()), file_shown_((dir / file_name).string())
{
    trusted_dir::Error err;
    dir_ = trusted_dir::open(dir.string(), 0700, err);
    if (!dir_) {
        problem_ = err.message;
        return;
    }
    // trusted_dir accepts a sticky directory of root's that others may add
    // to (like /tmp); the ledger's own must be closed to them: there they
    // could plant its names or take them first.
    struct stat st;
    if (::fstat(dir_.fd(), &st) != 0)
        problem_ = "stat " + dir_shown_ + ": " + std::strerror(errno);
    else if (st.st_uid != ::geteuid())
        problem_ = "directory " + dir_shown_ + " is owned by uid " + std::to_string(st.st_uid) + " (not uid " +
                   std::to_string(::geteuid()) + ")";
    else if (st.st_mode & (S_IWGRP | S_IWOTH))
        problem_ = "directory " + dir_shown_ + " is writable by group or others (mode " + mode_text(st.st_mode) + ")";
    if (!problem_.empty())
        dir_.reset();
}

RestartLedger::Store::Read RestartLedger::Store::read(Records &out, std::string &problem) const
{
    out.clear();
    UniqueFd fd(::openat(dir_.fd(), file_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd && errno == ENOENT)
        return Read::Missing;
    if (!fd) {
        problem = errno == ELOOP ? file_shown_ + " is a symbolic link"
                                 : "cannot open " + file_shown_ + ": " + std::strerror(errno);
        return Read::Refused;
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) {
        problem = "stat " + file_shown_ + ": " + std::strerror(errno);
        return Read::Refused;
    }
    if (std::string why = own_file_refusal(st, RestartLedger::max_file_bytes); !why.empty()) {
        problem = file_shown_ + " " + why;
        return Read::Refused;
    }
    std::string text;
    if (!read_all(fd.get(), text, max_file_bytes)) {
        problem = "cannot read " + file_shown_ + ": " + std::strerror(errno);
        return Read::Refused;
    }
    std::string why;
    auto records = from_json(text, why);
    if (!records) {
        problem = file_shown_ + " is not a restart ledger (" + why + ")";
        return Read::Corrupt;
    }
    out = std::move(*records);
    return Read::Ok;
}

// Writes restart-ledger.json.new (made new, 0600 whatever the umask),
// fsyncs it, renames it over the ledger and fsyncs the directory, so that a
// crash at any point leaves the old ledger or the new one whole.
bool RestartLedger::Store::write(const Records &records, std::string &problem) const
{
    const std::string temp = std::string(file_name) + ".new";
    const std::string temp_shown = file_shown_ + ".new";
    const std::string text = to_json(records);
    const char *failed = nullptr;
    if (::unlinkat(dir_.fd(), temp.c_str(), 0) != 0 && errno != ENOENT) {  // a crashed write's
        problem = "cannot remove " + temp_shown + ": " + std::strerror(errno);
        return false;
    }
    UniqueFd fd(::openat(dir_.fd(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                         0600));
    if (!fd)
        failed = "create";
    else if (::fchmod(fd.get(), 0600) != 0)
        failed = "set the mode of";
    else if (!write_all(fd.get(), text) || ::fsync(fd.get()) != 0 || ::close(fd.release()) != 0)
        failed = "write";
    else if (::renameat(dir_.fd(), temp.c_str(), dir_.fd(), file_name) != 0)
        failed = "rename";
    if (failed) {
        const int e = errno;
        fd.reset();
        if (std::strcmp(failed, "create") != 0)
            ::unlinkat(dir_.fd(), temp.c_str(), 0);
        problem = std::string("cannot ") + failed + " " + temp_shown + ": " + std::strerror(e);
        return false;
    }
    ::fsync(dir_.fd());  // the rename itself on disk
    return true;
}

// {"version": 1, "classes": {"serial": {"deaths": [{"at_ms": T, "why": W}],
//  "failed": {"at_ms": T, "deaths": N, "window_ms": W, "why": W}}}}, with
// "failed" only for a latched class. Bytes that are not UTF-8 in a text
// (a class name, a reason) are written as U+FFFD.
std::string RestartLedger::Store::to_json(const Records &records)
{
    json classes = json::object();
    for (const auto &[name, r] : records) {
        json deaths = json::array();
        for (const auto &d : r.deaths)
            deaths.push_back(json{{"at_ms", d.at_ms}, {"why", d.why}});
        json c = json{{"deaths", std::move(deaths)}};
        if (r.latch)
            c["failed"] = json{{"at_ms", r.latch->at_ms},
                               {"deaths", r.latch->deaths},
                               {"window_ms", r.latch->window_ms},
                               {"why", r.latch->why}};
        classes[name] = std::move(c);
    }
    const json doc{{"version", ledger_version}, {"classes", std::move(classes)}};
    return doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

RestartLedger::ClassRecord RestartLedger::Store::class_from_json(const json &c)
{
    if (!c.is_object())
        throw NotLedger("a class is not an object");
    ClassRecord r;
    for (const json &d : of_type(c, "deaths", json::value_t::array, "an array")) {
        if (!d.is_object())
            throw NotLedger("a death is not an object");
        r.deaths.push_back({integer(d, "at_ms"), text::excerpt(text_of(d, "why"), max_why_chars)});
    }
    std::stable_sort(r.deaths.begin(), r.deaths.end(), [](const Death &a, const Death &b) { return a.at_ms < b.at_ms; });
    if (c.contains("failed")) {
        const json &f = of_type(c, "failed", json::value_t::object, "an object");
        r.latch = Latch{integer(f, "at_ms"), static_cast<int>(std::clamp<int64_t>(integer(f, "deaths"), 0, INT32_MAX)),
                        integer(f, "window_ms"), text::excerpt(text_of(f, "why"), max_why_chars)};
    }
    return r;
}

std::optional<RestartLedger::Records> RestartLedger::Store::from_json(const std::string &text, std::string &why)
{
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::parse_error &e) {
        why = "not JSON: a syntax error at byte " + std::to_string(e.byte);
        return std::nullopt;
    } catch (const json::exception &) {
        why = "not JSON";
        return std::nullopt;
    }
    try {
        if (!doc.is_object())
            throw NotLedger("not a JSON object");
        if (const int64_t v = integer(doc, "version"); v != ledger_version)
            throw NotLedger("version " + std::to_string(v) + ", this devhost reads version " +
                            std::to_string(ledger_version));
        Records records;
        for (const auto &[name, c] : of_type(doc, "classes", json::value_t::object, "an object").items())
            records[name] = class_from_json(c);
        return records;
    } catch (const NotLedger &e) {
        why = e.what();
    } catch (const json::exception &) {  // a value out of range
        why = "a value of the wrong type";
    }
    return std::nullopt;
}

// ---- the ledger

RestartLedger::RestartLedger(RestartPolicy policy, std::optional<fs::path> state_dir, Warn warn)
    : policy_(policy), warn_(std::move(warn))
{
    if (!warn_)
        warn_ = [](const std::string &message) { spdlog::warn("{}", message); };
    policy_.budget = std::max(policy_.budget, 1);
    auto engine = std::make_shared<std::mt19937_64>(seed_jitter());
    random_ = [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
    if (!state_dir)
        return;
    store_ = std::make_unique<Store>(*state_dir);
    std::lock_guard lock(mutex_);
    if (!store_->usable()) {
        memory_only_ = true;
        problem_locked(store_->problem(), "deaths are counted in memory only");
        return;
    }
    refresh_locked();
}

RestartLedger::~RestartLedger() = default;

void RestartLedger::set_random(Random random)
{
    std::lock_guard lock(mutex_);
    random_ = std::move(random);
}

// Remembers a problem of the storage and logs it, with what it means, once
// (a query repeated every second must not repeat its warning).
void RestartLedger::problem_locked(const std::string &problem, const std::string &consequence) const
{
    error_ = "restart ledger: " + problem;
    const std::string warning = error_ + "; " + consequence;
    if (warning != last_warning_)
        warn_(warning);
    last_warning_ = warning;
}

RestartLedger::Loaded RestartLedger::load_locked() const
{
    Records fresh;
    std::string problem;
    switch (store_->read(fresh, problem)) {
    case Store::Read::Missing:
    case Store::Read::Ok:
        if (!memory_only_)  // else ours is ahead: the change writes it
            records_ = std::move(fresh);
        return Loaded::Fresh;
    case Store::Read::Corrupt:
        if (!memory_only_)
            records_.clear();
        problem_locked(problem, "treated as empty");
        error_.clear();  // not an error: the next change replaces it
        return Loaded::Corrupt;
    case Store::Read::Refused:
        break;
    }
    memory_only_ = true;
    problem_locked(problem, "not read or replaced (remove it if nothing should be there); deaths are counted in "
                            "memory only");
    return Loaded::Refused;
}

void RestartLedger::refresh_locked() const
{
    if (store_ && store_->usable() && !memory_only_)
        load_locked();
}

void RestartLedger::save_locked()
{
    std::string problem;
    if (store_->write(records_, problem)) {
        memory_only_ = false;
        error_.clear();
        last_warning_.clear();
        return;
    }
    memory_only_ = true;
    problem_locked(problem, "the ledger is kept in memory until a change can be saved");
}

// Runs change(records_, changed) as one read-modify-write of the file: under
// the directory's lock, on the file as it is now, written back when the
// change changed something (or the file was not a ledger).
template <class Change>
auto RestartLedger::update(Change change)
{
    std::lock_guard lock(mutex_);
    bool changed = false;
    if (!store_ || !store_->usable())
        return change(records_, changed);
    FileLock file_lock(store_->dir_fd(), lock_timeout);
    if (!file_lock) {
        const int e = file_lock.os_errno();
        memory_only_ = true;
        problem_locked(e == EWOULDBLOCK ? store_->dir_shown() + " is locked by another process for more than " +
                                              std::to_string(lock_timeout.count() / 1000) + " s"
                                        : "cannot lock " + store_->dir_shown() + ": " + std::strerror(e),
                       "the change is kept in memory only");
        return change(records_, changed);
    }
    const Loaded loaded = load_locked();
    auto result = change(records_, changed);
    if (loaded != Loaded::Refused && (changed || loaded == Loaded::Corrupt || memory_only_))
        save_locked();
    return result;
}

const RestartLedger::ClassRecord *RestartLedger::find_locked(const std::string &device_class) const
{
    auto it = records_.find(device_class);
    return it == records_.end() ? nullptr : &it->second;
}

int RestartLedger::deaths_locked(const ClassRecord &r, int64_t now_ms) const
{
    return static_cast<int>(std::count_if(r.deaths.begin(), r.deaths.end(), [&](const Death &d) {
        return within(d.at_ms, now_ms, policy_.window_ms);
    }));
}

bool RestartLedger::record_death(const std::string &device_class, Clock::time_point now, const std::string &why)
{
    const int64_t now_ms = to_ms(now);
    return update([&](Records &records, bool &changed) {
        ClassRecord &r = records[device_class];
        if (r.latch)
            return true;
        changed = true;
        // Only deaths within the window count, and of those only the last
        // `budget` matter: the ledger keeps no more.
        r.deaths.erase(std::remove_if(r.deaths.begin(), r.deaths.end(),
                                      [&](const Death &d) { return !within(d.at_ms, now_ms, policy_.window_ms); }),
                       r.deaths.end());
        r.deaths.push_back({now_ms, text::excerpt(why, max_why_chars)});
        std::stable_sort(r.deaths.begin(), r.deaths.end(),
                         [](const Death &a, const Death &b) { return a.at_ms < b.at_ms; });
        const size_t keep = static_cast<size_t>(policy_.budget);
        if (r.deaths.size() > keep)
            r.deaths.erase(r.deaths.begin(), r.deaths.end() - static_cast<ptrdiff_t>(keep));
        const int n = deaths_locked(r, now_ms);
        if (n >= policy_.budget)
            r.latch = Latch{now_ms, n, policy_.window_ms, r.deaths.back().why};
        return r.latch.has_value();
    });
}

bool RestartLedger::failed(const std::string &device_class) const
{
    std::lock_guard lock(mutex_);
    refresh_locked();
    const ClassRecord *r = find_locked(device_class);
    return r && r->latch;
}

namespace {

std::string latch_text(int deaths, int64_t window_ms, const std::string &why)
{
    return deaths_text(deaths) + " in " + window_text(window_ms) + ", the last: " + why;
}

}  // namespace

std::string RestartLedger::failed_reason(const std::string &device_class, const std::string &config) const
{
    std::lock_guard lock(mutex_);
    refresh_locked();
    const ClassRecord *r = find_locked(device_class);
    if (!r || !r->latch)
        return {};
    const std::string name = text::excerpt(device_class);
    return "class '" + name + "' failed: " + latch_text(r->latch->deaths, r->latch->window_ms, r->latch->why) +
           "; reset it with: devhost reset-failed " + config + " " + name;
}

int RestartLedger::deaths(const std::string &device_class, Clock::time_point now) const
{
    std::lock_guard lock(mutex_);
    refresh_locked();
    const ClassRecord *r = find_locked(device_class);
    return r ? deaths_locked(*r, to_ms(now)) : 0;
}

std::chrono::milliseconds RestartLedger::backoff(const std::string &device_class, Clock::time_point now) const
{
    std::lock_guard lock(mutex_);
    refresh_locked();
    const ClassRecord *r = find_locked(device_class);
    const int n = r ? deaths_locked(*r, to_ms(now)) : 0;
    if (n == 0)
        return std::chrono::milliseconds(0);
    const int64_t cap = std::max<int64_t>(policy_.backoff_max_ms, 0);
    int64_t base = std::clamp<int64_t>(policy_.backoff_initial_ms, 0, cap);
    for (int i = 1; i < n && base < cap; i++)
        base = base > cap / 2 ? cap : base * 2;
    const double factor = 0.8 + 0.4 * std::clamp(random_(), 0.0, 1.0);
    return std::chrono::milliseconds(std::llround(static_cast<double>(base) * factor));
}

namespace {

template <class ClassRecord>
std::string had_text(const ClassRecord &r)
{
    if (r.latch)
        return "was failed: " + latch_text(r.latch->deaths, r.latch->window_ms, r.latch->why);
    return "had " + deaths_text(static_cast<int64_t>(r.deaths.size())) + ", not failed";
}

}  // namespace

std::optional<std::string> RestartLedger::reset(const std::string &device_class)
{
    return update([&](Records &records, bool &changed) -> std::optional<std::string> {
        auto it = records.find(device_class);
        if (it == records.end())
            return std::nullopt;
        std::string had = had_text(it->second);
        records.erase(it);
        changed = true;
        return had;
    });
}

// One change for all, so that a file that was not a ledger is replaced
// even when there was nothing to reset.
std::vector<std::pair<std::string, std::string>> RestartLedger::reset_all()
{
    return update([&](Records &records, bool &changed) {
        std::vector<std::pair<std::string, std::string>> out;
        for (const auto &[name, r] : records)
            out.emplace_back(name, had_text(r));
        changed = !records.empty();
        records.clear();
        return out;
    });
}

std::vector<std::string> RestartLedger::classes() const
{
    std::lock_guard lock(mutex_);
    refresh_locked();
    std::vector<std::string> out;
    for (const auto &entry : records_)
        out.push_back(entry.first);
    return out;
}

bool RestartLedger::persistent() const
{
    std::lock_guard lock(mutex_);
    return store_ && store_->usable() && !memory_only_;
}

std::string RestartLedger::error() const
{
    std::lock_guard lock(mutex_);
    return error_;
}

}  // namespace devhost
