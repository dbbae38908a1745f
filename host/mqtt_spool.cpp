#include "mqtt_spool.hpp"

#include "trusted_file.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <functional>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace devhost {

namespace {

using json = nlohmann::json;

std::string segment_name(uint64_t first)
{
    char name[64];
    std::snprintf(name, sizeof name, "seg-%020" PRIu64 ".jsonl", first);
    return name;
}

// The first rseq of a segment's name, or 0 when it is not one.
uint64_t segment_first(const char *name)
{
    uint64_t first = 0;
    char tail[16] = {};
    if (std::strlen(name) != 4 + 20 + 6 || std::sscanf(name, "seg-%20" SCNu64 "%8s", &first, tail) != 2 ||
        std::strcmp(tail, ".jsonl") != 0)
        return 0;
    return first;
}

bool write_all(int fd, const std::string &text)
{
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        done += static_cast<size_t>(n);
    }
    return true;
}

// Opens `name` in `dir` (O_NOFOLLOW) and checks it; -1 with `error` set.
UniqueFd open_checked(const trusted_dir::Dir &dir, const std::string &name, int flags, std::string &error)
{
    const std::string shown = dir.path() + "/" + name;
    UniqueFd fd(::openat(dir.fd(), name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600));
    if (!fd) {
        error = errno == ELOOP ? shown + " is a symbolic link" : "cannot open " + shown + ": " + std::strerror(errno);
        return fd;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        error = "cannot stat " + shown + ": " + std::strerror(errno);
        return UniqueFd();
    }
    if (std::string why = own_file_refusal(st); !why.empty()) {
        error = shown + " " + why;
        return UniqueFd();
    }
    if ((flags & O_CREAT) && ::fchmod(fd.get(), 0600) != 0) {  // whatever the umask
        error = "cannot set the mode of " + shown + ": " + std::strerror(errno);
        return UniqueFd();
    }
    return fd;
}

bool read_all(int fd, std::string &out)
{
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;
        if (n == 0)
            return true;
        out.append(buf, static_cast<size_t>(n));
    }
}

}  // namespace

MqttSpool::MqttSpool(uint64_t max_bytes, int64_t max_age_ms) : max_bytes_(max_bytes), max_age_ms_(max_age_ms) {}

MqttSpool::MqttSpool(uint64_t max_bytes, int64_t max_age_ms, trusted_dir::Dir dir)
    : max_bytes_(max_bytes), max_age_ms_(max_age_ms), dir_(std::move(dir))
{
}

MqttSpool::~MqttSpool() { sync(); }

std::unique_ptr<MqttSpool> MqttSpool::open(const std::string &path, uint64_t max_bytes, int64_t max_age_ms,
                                           std::string &error)
{
    trusted_dir::Error err;
    trusted_dir::Dir dir = trusted_dir::open(path, 0700, err);
    if (!dir) {
        error = err.message;
        return nullptr;
    }
    // Like the restart ledger's: in a directory others could write, they
    // could plant or take the spool's names.
    struct stat st {};
    if (::fstat(dir.fd(), &st) != 0 || st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        error = "the spool directory " + path + " must be owned by uid " + std::to_string(::geteuid()) +
                " and writable by nobody else";
        return nullptr;
    }
    if (::flock(dir.fd(), LOCK_EX | LOCK_NB) != 0) {
        error = "the spool directory " + path + " is in use by another devhost serve";
        return nullptr;
    }
    std::unique_ptr<MqttSpool> spool(new MqttSpool(max_bytes, max_age_ms, std::move(dir)));
    if (!spool->load(error))
        return nullptr;
    return spool;
}

// The committed file, then every segment, oldest first.
bool MqttSpool::load(std::string &error)
{
    committed_fd_ = open_checked(dir_, "committed", O_RDWR | O_CREAT, error);
    if (!committed_fd_)
        return false;
    std::string text;
    if (!read_all(committed_fd_.get(), text)) {
        error = "cannot read " + dir_.path() + "/committed: " + std::strerror(errno);
        return false;
    }
    committed_ = std::strtoull(text.c_str(), nullptr, 10);  // torn or empty: 0 (sent again, not lost)
    if (!load_bd_seq(error))
        return false;
    std::vector<uint64_t> firsts;
    UniqueFd copy(::openat(dir_.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    DIR *d = copy ? ::fdopendir(copy.get()) : nullptr;
    if (!d) {
        error = "cannot list " + dir_.path() + ": " + std::strerror(errno);
        return false;
    }
    (void)copy.release();  // closedir closes it
    while (const dirent *e = ::readdir(d))
        if (uint64_t first = segment_first(e->d_name))
            firsts.push_back(first);
    ::closedir(d);
    std::sort(firsts.begin(), firsts.end());
    for (uint64_t first : firsts)
        if (!load_segment(first, error))
            return false;
    next_rseq_ = std::max(next_rseq_, committed_ + 1);
    remove_segments();
    return true;
}

// One segment's lines, up to the first that does not parse (a torn write).
bool MqttSpool::load_segment(uint64_t first, std::string &error)
{
    const std::string name = segment_name(first);
    UniqueFd fd = open_checked(dir_, name, O_RDONLY, error);
    std::string text;
    if (!fd)
        return false;
    if (!read_all(fd.get(), text)) {
        error = "cannot read " + dir_.path() + "/" + name + ": " + std::strerror(errno);
        return false;
    }
    segments_.push_back(first);
    size_t at = 0, torn = 0;
    while (at < text.size()) {
        const size_t end = text.find('\n', at);
        const json j = json::parse(text.substr(at, end == std::string::npos ? std::string::npos : end - at), nullptr,
                                   false);
        const bool ok = end != std::string::npos && j.is_object() && j.value("rseq", uint64_t{0}) >= next_rseq_ &&
                        j.contains("topic") && j["topic"].is_string() && j.contains("body") &&
                        j["body"].is_string() && j.contains("t") && j["t"].is_number_integer();
        if (!ok) {
            torn = text.size() - at;
            break;
        }
        Entry e{j["rseq"].get<uint64_t>(), j["t"].get<int64_t>(), j["topic"].get<std::string>(),
                j["body"].get<std::string>(), false, end + 1 - at, j.value("reports", uint64_t{0})};
        next_rseq_ = e.rseq + 1;
        if (e.rseq > committed_) {
            bytes_ += e.size;
            unconfirmed_++;
            entries_.push_back(std::move(e));
        }
        at = end + 1;
    }
    if (torn)
        spdlog::warn("mqtt: spool {}/{}: {} byte(s) of a torn last line ignored", dir_.path(), name, torn);
    return true;
}

uint64_t MqttSpool::append(const std::string &topic, const std::string &body, int64_t now_ms, uint64_t reports)
{
    Entry e{next_rseq_++, now_ms, topic, body, false, 0, reports};
    json j = {{"rseq", e.rseq}, {"t", now_ms}, {"topic", topic}, {"body", body}};
    if (reports)
        j["reports"] = reports;
    const std::string line = j.dump() + "\n";
    e.size = line.size();
    expire(now_ms);
    drop_while([&](const Entry &) { return bytes_ + line.size() > max_bytes_; });
    if (dir_) {
        if (!segment_ || segment_bytes_ >= std::max<uint64_t>(max_bytes_ / 4, 1024))
            roll(e.rseq);
        if (segment_ && write_all(segment_.get(), line)) {
            segment_bytes_ += line.size();
            failing_ = false;
        } else {
            problem("cannot write a spool segment: " + std::string(std::strerror(errno)));
        }
    }
    bytes_ += line.size();
    unconfirmed_++;
    entries_.push_back(std::move(e));
    return entries_.back().rseq;
}

void MqttSpool::problem(const std::string &what)
{
    if (!failing_)
        spdlog::error("mqtt: spool {}: {} (kept in memory)", dir_.path(), what);
    failing_ = true;
}

// Closes the segment appended to (fsync'd) and starts seg-FIRST.
bool MqttSpool::roll(uint64_t first)
{
    if (segment_)
        ::fsync(segment_.get());
    segment_.reset();
    segment_bytes_ = 0;
    const std::string name = segment_name(first);
    ::unlinkat(dir_.fd(), name.c_str(), 0);  // only a torn line's, when it exists
    segments_.erase(std::remove(segments_.begin(), segments_.end(), first), segments_.end());
    std::string error;
    segment_ = open_checked(dir_, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, error);
    if (!segment_) {
        problem(error);
        return false;
    }
    segments_.push_back(first);
    ::fsync(dir_.fd());
    return true;
}

bool MqttSpool::confirm(uint64_t rseq)
{
    auto it = std::lower_bound(entries_.begin(), entries_.end(), rseq,
                               [](const Entry &e, uint64_t r) { return e.rseq < r; });
    if (it == entries_.end() || it->rseq != rseq || it->confirmed)
        return false;
    gone(*it);
    advance();
    return true;
}

void MqttSpool::advance()
{
    const uint64_t before = committed_;
    while (!entries_.empty() && entries_.front().confirmed) {
        committed_ = entries_.front().rseq;
        entries_.pop_front();
    }
    if (entries_.empty())
        committed_ = next_rseq_ - 1;
    if (committed_ != before) {
        write_committed();
        remove_segments();
    }
}

void MqttSpool::gone(Entry &e)
{
    e.confirmed = true;
    unconfirmed_--;
    bytes_ -= e.size;
}

// Messages handed to the broker and awaiting its confirmation are not
// dropped (they may well arrive: counting them would report a loss that
// is none); of the others, the oldest first, while `more` says so.
void MqttSpool::drop_while(const std::function<bool(const Entry &)> &more)
{
    bool any = false;
    for (auto &e : entries_) {
        if (e.confirmed || e.rseq < in_flight_below_)
            continue;
        if (!more(e))
            break;
        gone(e);
        dropped_total_++;
        dropped_unreported_ += 1 + e.reports;
        any = true;
    }
    if (any)
        advance();
}

void MqttSpool::expire(int64_t now_ms)
{
    drop_while([&](const Entry &e) { return e.t_ms < now_ms - max_age_ms_; });
}

// The bdseq file, when there is one: a regular file of ours (like every
// spool file), "N\n". Missing: none kept (a first start, or a spool from
// before bdseq was kept); unreadable text: none, with a warning.
bool MqttSpool::load_bd_seq(std::string &error)
{
    struct stat st {};
    if (::fstatat(dir_.fd(), "bdseq", &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
        return true;
    const UniqueFd fd = open_checked(dir_, "bdseq", O_RDONLY, error);  // what is there must be ours
    if (!fd)
        return false;
    std::string text;
    if (!read_all(fd.get(), text)) {
        error = "cannot read " + dir_.path() + "/bdseq: " + std::strerror(errno);
        return false;
    }
    if (text.size() < 2 || text.size() > 21 || text.back() != '\n' ||
        text.find_first_not_of("0123456789") != text.size() - 1) {
        spdlog::warn("mqtt: spool {}: bdseq holds no number: the node's bdSeq starts from 0 again", dir_.path());
        return true;
    }
    last_bd_seq_ = std::strtoull(text.c_str(), nullptr, 10);
    return true;
}

bool MqttSpool::keep_bd_seq(uint64_t bd_seq)
{
    if (!dir_)
        return true;
    const auto failed = [&](const std::string &what) {
        if (!bd_seq_failing_)
            spdlog::error("mqtt: spool {}: cannot keep the bdSeq ({}): the next serve may use it again", dir_.path(),
                          what);
        bd_seq_failing_ = true;
        return false;
    };
    std::string error;
    const UniqueFd fd = open_checked(dir_, "bdseq.tmp", O_WRONLY | O_CREAT | O_TRUNC, error);
    if (!fd)
        return failed(error);
    char text[32];
    const int n = std::snprintf(text, sizeof text, "%" PRIu64 "\n", bd_seq);
    if (::write(fd.get(), text, static_cast<size_t>(n)) != n || ::fsync(fd.get()) != 0)
        return failed("writing " + dir_.path() + "/bdseq.tmp: " + std::strerror(errno));
    if (::renameat(dir_.fd(), "bdseq.tmp", dir_.fd(), "bdseq") != 0)
        return failed("renaming " + dir_.path() + "/bdseq.tmp: " + std::strerror(errno));
    last_bd_seq_ = bd_seq;
    bd_seq_failing_ = false;
    return true;
}

// "N\n" at offset 0, one pwrite: a crash leaves it whole or as it was.
void MqttSpool::write_committed()
{
    if (!committed_fd_)
        return;
    char text[32];
    const int n = std::snprintf(text, sizeof text, "%020" PRIu64 "\n", committed_);
    if (::pwrite(committed_fd_.get(), text, static_cast<size_t>(n), 0) != n)
        problem("cannot write " + dir_.path() + "/committed: " + std::strerror(errno));
}

// Segments every line of which is committed.
void MqttSpool::remove_segments()
{
    if (!dir_)
        return;
    while (!segments_.empty()) {
        const bool last = segments_.size() == 1;
        const uint64_t end = last ? next_rseq_ : segments_[1];  // one past its last line
        if (end - 1 > committed_ || (last && segment_))
            break;
        ::unlinkat(dir_.fd(), segment_name(segments_.front()).c_str(), 0);
        segments_.pop_front();
    }
}

const MqttSpool::Entry *MqttSpool::find(uint64_t rseq) const
{
    auto it = std::lower_bound(entries_.begin(), entries_.end(), rseq,
                               [](const Entry &e, uint64_t r) { return e.rseq < r; });
    return it != entries_.end() && it->rseq == rseq && !it->confirmed ? &*it : nullptr;
}

uint64_t MqttSpool::next_at_or_after(uint64_t from) const
{
    auto it = std::lower_bound(entries_.begin(), entries_.end(), from,
                               [](const Entry &e, uint64_t r) { return e.rseq < r; });
    while (it != entries_.end() && it->confirmed)
        ++it;
    return it == entries_.end() ? 0 : it->rseq;
}

uint64_t MqttSpool::take_dropped() { return std::exchange(dropped_unreported_, 0); }

SpoolStats MqttSpool::stats() const
{
    return {unconfirmed_, bytes_, dropped_total_};
}

void MqttSpool::sync()
{
    if (segment_)
        ::fsync(segment_.get());
    if (committed_fd_)
        ::fsync(committed_fd_.get());
}

}  // namespace devhost
