// The step language: one pipeline step per `step =` line of a device.
//
//   open                     connect [context=DATA] [context-size=N] [key=value ...]
//   info                     lock [timeout=D]
//   write DATA [offset=N]    read N | exactly=N | until=DATA [max=N] [expect=DATA] [offset=N]
//   write from=FILE [offset=N]          read N | exactly=N  to=FILE [offset=N]
//   request DATA [until=DATA] [max=N] [expect=DATA]
//   get-message [max=N] [expect=DATA]      reply DATA [id=N]
//   control CODE [DATA] [max=N] [expect=DATA]
//   sleep D                  unlock     disconnect     close
//
// Every step but sleep also takes timeout=D, and every step repeat=N (run it
// N times, one record each; see Step::repeat). DATA is a "C-escaped string"
// or hex:0a0b; D is a duration (250ms, 2s); N an integer (0x allowed).
// from= and to= stream between a file and the device (file_transfer.hpp):
// N may then exceed max_step_buffer.
#pragma once

#include "common/text.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devhost {

enum class StepKind {
    Open, Connect, Info, Lock, Write, Read, Request, GetMessage, Reply, Control, Sleep, Unlock, Disconnect, Close
};

enum class ReadMode { UpTo, Exactly, Until };

// The largest buffer a step may ask for.
inline constexpr size_t max_step_buffer = 16u * 1024 * 1024;
// The buffer for replies, messages and reads until a delimiter, unless max=.
inline constexpr size_t default_step_buffer = 4096;
// The most a read to=FILE may ask for.
inline constexpr uint64_t max_file_transfer = UINT64_MAX >> 1;
// The most repeat=N may ask for.
inline constexpr uint32_t max_step_repeat = 1000000;
// The most step runs (every repetition counted) a device's pipeline may
// have, so that its record numbers (seq, an int) never overflow; check
// refuses a device over it.
inline constexpr uint64_t max_device_step_runs = 100000000;

struct Step {
    StepKind kind = StepKind::Open;
    std::string text;                     // the step as written
    int line = 0;                         // config line, 0 if none
    std::optional<int64_t> timeout_ms;
    text::Bytes data;                     // write, request, reply; control input
    ReadMode read_mode = ReadMode::UpTo;
    size_t count = 0;                     // read N / exactly=N
    std::optional<text::Bytes> until;     // read until=, request until=
    std::optional<text::Bytes> expect;    // reply must contain this
    size_t max = default_step_buffer;     // capacity for what comes back
    std::optional<uint64_t> offset;
    std::optional<uint64_t> message_id;   // reply id=
    std::string control;                  // control CODE as written
    int64_t sleep_ms = 0;
    std::optional<text::Bytes> context;   // connect context=
    std::optional<uint32_t> context_size; // connect context-size=
    std::vector<std::pair<std::string, std::string>> args;  // connect's other pairs
    // write from=FILE, read to=FILE: as written (config.cpp makes a
    // relative from= the config's; a relative to= is the working directory's).
    std::optional<std::string> from_file;
    std::optional<std::string> to_file;
    bool file_transfer() const { return from_file || to_file; }
    // repeat=N: the engine runs the step N times in a row, each repetition
    // a step of its own (its own record, seq, deadline and cancel check);
    // the first that fails ends the pipeline as any failed step does. The
    // records of a step with N > 1 carry `repetition` (1..N).
    uint32_t repeat = 1;
};

// How many steps a pipeline of these steps runs, repetitions counted.
uint64_t step_runs(const std::vector<Step> &steps);

const char *step_name(StepKind kind);

// The host's part of the connect context rule (the plugin judges the rest,
// such as a context with size 0): context-size may differ from the context's
// length, so that a plugin's own checks can be tried, but never claims bytes
// the context does not have. The reason, or nullopt when the pair is fine.
std::optional<std::string> context_size_error(size_t context_len, uint32_t context_size);

// The transfer op a step performs (DEVHOST_OP_*), or 0 for a step that is no
// transfer (open, connect, info, lock, unlock, disconnect, close, sleep).
uint32_t transfer_op(const Step &step);

// Parses one step. On error returns nullopt and sets `error` to one line
// naming the step and what was wrong.
std::optional<Step> parse_step(std::string_view line, std::string &error);

// Splits a step line into words; a double-quoted part (with backslash
// escapes) stays inside its word with its quotes. nullopt on an unterminated
// quote.
std::optional<std::vector<std::string>> split_words(std::string_view line);

}  // namespace devhost
