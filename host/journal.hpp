// The journal as the host's log (systemd.exec(5), JOURNAL_STREAM): when
// devhost's stderr is connected to the journal (as under devhost.service),
// log lines go through the journal's native protocol with a priority per
// level (errors as PRIORITY=3, warnings 4, info 6, debug and trace 7) and
// SYSLOG_IDENTIFIER=devhost, instead of as plain stderr lines that the
// journal would all file at the unit's default priority.
#pragma once

#include <spdlog/common.h>

namespace devhost::logging {

// True when $JOURNAL_STREAM ("DEVICE:INODE", decimal) names the file open on
// fd 2; false when it is unset, malformed, or names another file (a stderr
// redirected by the service or the shell).
bool stderr_is_journal();

// A sink sending each line to the journal (sd_journal_send, to
// /run/systemd/journal/socket): MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=devhost.
// When that socket is missing (looked up once, when the sink is made) or the
// journal refuses a line, the line is written to stderr instead, with its
// priority as a "<N>" prefix (sd-daemon(3)), which the journal's stream
// reads: no line is lost.
spdlog::sink_ptr journal_sink();

// "<3>" (sd-daemon(3)'s SD_ERR) when stderr is the journal, else "": the
// prefix of an error line written straight to stderr, so that the journal
// files it as an error.
const char *stderr_error_prefix();

}  // namespace devhost::logging
