// The MQTT spool (issue 16, item 2): every DDATA (step records, state
// changes) and NDATA message of devhost serve waits here until the broker
// confirmed it (QoS 1 and 2: PUBACK/PUBCOMP; QoS 0: written to the socket),
// so nothing is lost while the broker is away, nor across a restart of
// devhost. Each message gets a record sequence number, "rseq", that counts
// on from the spool's last one (it survives restarts); the publisher sends
// the oldest first.
//
// On disk (when a directory is given: [host] state-dir/mqtt-spool):
//   seg-NNNNNNNNNNNNNNNNNNNN.jsonl   append-only segments, named by the rseq
//       of their first line; one JSON line a message:
//       {"rseq":N,"t":MS,"topic":"...","body":"{...}"[,"reports":N]}
//   committed   "N\n": every rseq up to N is confirmed or dropped.
//   bdseq       "N\n": the bdSeq of the node's last connection (its will's),
//       so that the next serve's births count on from it (written before
//       each connection is tried, to bdseq.tmp, fsync'd, renamed over it).
// A segment all of whose lines are committed is removed; a new segment is
// started when the current one reaches a quarter of max_bytes, and at each
// open (so a torn last line of a crash is never appended to). Reading
// stops at the first line of a segment that does not parse (a torn write).
//
// fsync policy: a line is write()n before the message is handed to the
// broker, so a kill -9 or crash of devhost loses nothing (the page cache
// outlives the process); segments and the committed file are fsync'd when a
// segment is closed and at close(), not per message (a power cut may lose
// the last moments' messages, or send some confirmed ones again: the
// consumer drops an rseq it has seen).
//
// Security (devhost runs as root): the directory is opened through
// trusted_dir::open (created 0700), must be owned by the effective uid and
// not writable by group or others, and is flock'd (one serve per spool);
// every file is opened relative to its descriptor with O_NOFOLLOW, created
// 0600 whatever the umask (fchmod), and read only when it is a regular
// file of ours with one link and no group or other write bit.
//
// Bounds: the unconfirmed messages' bytes at most max_bytes, each at most
// max_age old (but for those in flight, handed to the broker on this
// connection: at most the publisher's window of them more); a message over
// a bound drops the oldest not in flight, counted (dropped()
// and take_dropped(), which the publisher turns into a log line and an
// NDATA {"event":"dropped","dropped":N}, itself spooled: when that notice
// is dropped in turn, the next one reports its N too, and it). So the rseq
// a consumer never sees add up to the N of the notices it sees (but for
// drops not yet reported when devhost was killed). Not thread-safe: the
// publisher locks.
#pragma once

#include <devhost/unique_fd.hpp>

#include "trusted_dir.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace devhost {

// What the metrics want of the spool.
struct SpoolStats {
    uint64_t depth = 0;    // messages not yet confirmed
    uint64_t bytes = 0;    // their bytes
    uint64_t dropped = 0;  // dropped (over a bound) since devhost started
};

class MqttSpool {
public:
    struct Entry {
        uint64_t rseq = 0;
        int64_t t_ms = 0;  // when it was spooled (wall clock)
        std::string topic;
        std::string body;  // a JSON object, without "seq" and "rseq"
        bool confirmed = false;
        uint64_t size = 0;  // its line's bytes
        uint64_t reports = 0;  // a drop notice: the drops it reports
    };

    static constexpr const char *dir_name = "mqtt-spool";

    // A spool in memory only (no state directory).
    MqttSpool(uint64_t max_bytes, int64_t max_age_ms);
    // Over the directory `dir` (created if missing); nullptr with `error`
    // (one line naming the directory or file) when it cannot be used.
    static std::unique_ptr<MqttSpool> open(const std::string &dir, uint64_t max_bytes, int64_t max_age_ms,
                                           std::string &error);
    ~MqttSpool();
    MqttSpool(const MqttSpool &) = delete;
    MqttSpool &operator=(const MqttSpool &) = delete;

    // Spools one message; its rseq. Drops the oldest to stay in the bounds.
    // A write error is logged (once until one succeeds) and the message kept
    // in memory. `reports`: the message is a drop notice for that many
    // (when it is dropped in turn, they are to report again, with it).
    uint64_t append(const std::string &topic, const std::string &body, int64_t now_ms, uint64_t reports = 0);
    // The broker confirmed `rseq`; false if it is not spooled (dropped).
    bool confirm(uint64_t rseq);
    // Drops what is older than max_age.
    void expire(int64_t now_ms);

    // The unconfirmed entry with this rseq, or nullptr.
    const Entry *find(uint64_t rseq) const;
    // The oldest unconfirmed rseq at or after `from`, or 0 when none.
    uint64_t next_at_or_after(uint64_t from) const;

    // The messages below `rseq` are handed to the broker (this connection):
    // they are not dropped (0 when the connection ends: none is).
    void set_in_flight_below(uint64_t rseq) { in_flight_below_ = rseq; }

    // Dropped since the last call (to report), and in all.
    uint64_t take_dropped();
    uint64_t unreported() const { return dropped_unreported_; }
    SpoolStats stats() const;
    bool on_disk() const { return static_cast<bool>(dir_); }

    // Sparkplug's bdSeq across restarts: the last connection's, as the
    // bdseq file kept it (read at open); nullopt in memory or when none was
    // kept. keep_bd_seq makes `bd_seq` the last before its connection is
    // tried (so a will the broker may announce after a kill -9 is never
    // reused); false, logged, when it cannot be written (in memory: true,
    // nothing kept).
    std::optional<uint64_t> last_bd_seq() const { return last_bd_seq_; }
    bool keep_bd_seq(uint64_t bd_seq);
    // Flushes the committed file and the open segment to disk.
    void sync();

private:
    MqttSpool(uint64_t max_bytes, int64_t max_age_ms, trusted_dir::Dir dir);
    bool load(std::string &error);
    bool load_bd_seq(std::string &error);
    bool load_segment(uint64_t first, std::string &error);
    void gone(Entry &e);  // confirmed or dropped
    void drop_while(const std::function<bool(const Entry &)> &more);
    void advance();  // pops the confirmed front, writes committed, removes segments
    void write_committed();
    bool roll(uint64_t first);
    void remove_segments();
    void problem(const std::string &what);

    uint64_t max_bytes_;
    int64_t max_age_ms_;
    trusted_dir::Dir dir_;
    std::deque<Entry> entries_;  // rseq consecutive from the front
    uint64_t bytes_ = 0;
    uint64_t unconfirmed_ = 0;
    uint64_t in_flight_below_ = 0;
    uint64_t committed_ = 0;     // every rseq <= it is confirmed or dropped
    uint64_t next_rseq_ = 1;
    uint64_t dropped_total_ = 0, dropped_unreported_ = 0;
    std::deque<uint64_t> segments_;  // first rseq of each segment on disk, oldest first
    UniqueFd segment_;               // the one appended to
    uint64_t segment_bytes_ = 0;
    UniqueFd committed_fd_;
    bool failing_ = false;  // a write error was logged
    std::optional<uint64_t> last_bd_seq_;
    bool bd_seq_failing_ = false;  // a bdseq write error was logged
};

}  // namespace devhost
