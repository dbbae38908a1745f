/*
 * devhost/plugin_util.h as a strict C99 compiler sees it (built with
 * -std=c99 -Wall -Wextra -Wpedantic), and each of its functions at work on
 * real kernel objects: a pipe as the descriptor waited for, an eventfd as
 * the cancel handle, SIGALRM to interrupt a wait. Each check prints what it
 * got on failure; the program exits 1 if any failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <devhost/plugin_util.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int failures;

static void check(int ok, const char *what, long got, long want)
{
    if (!ok) {
        printf("FAILED: %s: got %ld, want %ld\n", what, got, want);
        failures++;
    }
}

static void check_text(const char *got, const char *want, const char *what)
{
    if (strcmp(got, want) != 0) {
        printf("FAILED: %s: got \"%s\", want \"%s\"\n", what, got, want);
        failures++;
    }
}

static long ms_since(uint64_t start) { return (long)((devhost_util_now_ns() - start) / 1000000u); }

/* ---- 1. deadlines ---- */

static void check_deadlines(void)
{
    uint64_t before = devhost_util_now_ns(), d;
    check(devhost_util_deadline_ms(-1) == DEVHOST_DEADLINE_NONE, "timeout -1 is no deadline", 0, 0);
    check(devhost_util_deadline_ms(INT64_MAX) == DEVHOST_DEADLINE_NONE, "an unrepresentable timeout is none", 0, 0);
    d = devhost_util_deadline_ms(0);
    check(d >= before && d <= devhost_util_now_ns(), "timeout 0 is now", (long)(d - before), 0);
    d = devhost_util_deadline_ms(100);
    check(d >= before + 100000000u && d <= devhost_util_now_ns() + 100000000u, "timeout 100 is 100 ms from now",
          (long)((d - before) / 1000000u), 100);
    check(devhost_util_deadline_min(5, 7) == 5 && devhost_util_deadline_min(DEVHOST_DEADLINE_NONE, 7) == 7,
          "deadline_min takes the earlier", 0, 0);
    check(!devhost_util_deadline_passed(DEVHOST_DEADLINE_NONE), "no deadline never passes", 1, 0);
    check(devhost_util_deadline_passed(0) && devhost_util_deadline_passed(before), "a past deadline has passed", 0,
          1);
    check(!devhost_util_deadline_passed(devhost_util_deadline_ms(10000)), "a future deadline has not passed", 1, 0);
    check(devhost_util_poll_timeout(DEVHOST_DEADLINE_NONE) == -1, "poll timeout without a deadline",
          devhost_util_poll_timeout(DEVHOST_DEADLINE_NONE), -1);
    check(devhost_util_poll_timeout(before) == 0, "poll timeout past the deadline", devhost_util_poll_timeout(before),
          0);
    /* 1.5 ms left rounds up to 2: a wait never ends short of its deadline. */
    d = devhost_util_now_ns() + 1500000u;
    check(devhost_util_poll_timeout(d) == 2, "poll timeout rounds up", devhost_util_poll_timeout(d), 2);
    d = devhost_util_now_ns() + (uint64_t)INT_MAX * 1000000u * 4u;
    check(devhost_util_poll_timeout(d) == INT_MAX, "poll timeout is at most INT_MAX", devhost_util_poll_timeout(d),
          INT_MAX);
}

/* ---- 2. waits ---- */

static devhost_error fresh_error(void)
{
    devhost_error err;
    devhost_util_error_init(&err);
    return err;
}

static void on_alarm(int sig) { (void)sig; }

static void check_waits(void)
{
    int p[2], cancel = eventfd(0, EFD_CLOEXEC), bad;
    uint64_t one = 1, start;
    short revents = 0;
    char drain;
    devhost_error err = fresh_error();
    devhost_status s;
    struct sigaction sa;

    if (pipe(p) != 0 || cancel < 0) {
        printf("FAILED: pipe or eventfd: %s\n", strerror(errno));
        failures++;
        return;
    }

    /* Nothing comes: the deadline ends the wait, not before. */
    start = devhost_util_now_ns();
    s = devhost_util_wait(p[0], POLLIN, cancel, devhost_util_deadline_ms(50), &revents, &err, "test: pipe", "reading");
    check(s == DEVHOST_E_TIMEOUT, "an empty pipe times out", (long)s, (long)DEVHOST_E_TIMEOUT);
    check(ms_since(start) >= 50, "the wait lasted until the deadline", ms_since(start), 50);
    check_text(err.message, "test: pipe: timed out reading", "timeout message");
    check(err.os_errno == ETIMEDOUT, "timeout errno", err.os_errno, ETIMEDOUT);

    /* Past the deadline it still looks once: data already there is taken. */
    check(write(p[1], "x", 1) == 1, "write to the pipe", 0, 1);
    err = fresh_error();
    s = devhost_util_wait(p[0], POLLIN, cancel, 0, &revents, &err, "test", "reading");
    check(s == DEVHOST_OK && (revents & POLLIN), "past the deadline, ready data is OK", (long)s, 0);
    check(err.message[0] == '\0', "success leaves the record empty", (long)strlen(err.message), 0);

    /* A fired cancel wins over a ready descriptor. */
    check(write(cancel, &one, sizeof one) == (ssize_t)sizeof one, "signal the eventfd", 0, 0);
    check(devhost_util_cancelled(cancel), "devhost_util_cancelled sees the eventfd", 0, 1);
    s = devhost_util_wait(p[0], POLLIN, cancel, DEVHOST_DEADLINE_NONE, &revents, &err, "test: pipe", "reading");
    check(s == DEVHOST_E_CANCELLED, "cancel wins over ready data", (long)s, (long)DEVHOST_E_CANCELLED);
    check_text(err.message, "test: pipe: cancelled reading", "cancel message");
    check(err.os_errno == ECANCELED, "cancel errno", err.os_errno, ECANCELED);
    check(devhost_util_cancelled(cancel), "the wait did not consume the cancel", 0, 1);
    check(!devhost_util_cancelled(-1), "no cancel handle never fires", 1, 0);

    /* Without a descriptor, a wait is a sleep that cancel cuts short. */
    start = devhost_util_now_ns();
    s = devhost_util_wait(-1, 0, cancel, devhost_util_deadline_ms(5000), NULL, NULL, NULL, NULL);
    check(s == DEVHOST_E_CANCELLED && ms_since(start) < 1000, "a cancelled sleep ends at once", (long)s,
          (long)DEVHOST_E_CANCELLED);
    close(cancel);
    cancel = eventfd(0, EFD_CLOEXEC);
    start = devhost_util_now_ns();
    s = devhost_util_wait(-1, 0, cancel, devhost_util_deadline_ms(30), NULL, NULL, NULL, NULL);
    check(s == DEVHOST_E_TIMEOUT && ms_since(start) >= 30, "a sleep lasts until its deadline", ms_since(start), 30);

    /* A signal does not end the wait early (EINTR is resumed). */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART: poll fails with EINTR */
    check(read(p[0], &drain, 1) == 1, "drain the pipe", 0, 1);
    start = devhost_util_now_ns();
    alarm(1);
    s = devhost_util_wait(p[0], POLLIN, cancel, devhost_util_deadline_ms(1300), &revents, NULL, "test", NULL);
    check(s == DEVHOST_E_TIMEOUT && ms_since(start) >= 1300, "an interrupted wait goes on to its deadline",
          ms_since(start), 1300);

    /* The other end gone: OK with POLLHUP, for the read to tell. */
    close(p[1]);
    s = devhost_util_wait(p[0], POLLIN, cancel, devhost_util_deadline_ms(1000), &revents, NULL, "test", NULL);
    check(s == DEVHOST_OK && (revents & POLLHUP), "a hung-up pipe reports POLLHUP", (long)revents, POLLHUP);

    /* Misuse: nothing to wait for; a cancel handle that is no descriptor. */
    err = fresh_error();
    s = devhost_util_wait(-1, 0, -1, DEVHOST_DEADLINE_NONE, NULL, &err, "test", NULL);
    check(s == DEVHOST_E_INVALID, "no fd, no cancel, no deadline is refused", (long)s, (long)DEVHOST_E_INVALID);
    check_text(err.message, "test: nothing to wait for", "nothing-to-wait-for message");
    bad = dup(p[0]);
    close(bad);
    err = fresh_error();
    s = devhost_util_wait(p[0], POLLIN, bad, DEVHOST_DEADLINE_NONE, NULL, &err, "test", NULL);
    check(s == DEVHOST_E_IO && err.os_errno == EBADF, "a closed cancel handle is an I/O error", (long)s,
          (long)DEVHOST_E_IO);
    close(p[0]);
    close(cancel);
}

/* ---- 3. options by schema index ---- */

enum { OPT_BAUD, OPT_PARITY, OPT_EXCLUSIVE, OPT_LABEL, OPT_COUNT };

static const devhost_option_spec schema[OPT_COUNT] = {
    {sizeof(devhost_option_spec), DEVHOST_OPTION_INT, "baud", "9600", "speed", NULL, 50, 4000000},
    {sizeof(devhost_option_spec), DEVHOST_OPTION_ENUM, "parity", "none", "parity", "none|odd|even", 0, 0},
    {sizeof(devhost_option_spec), DEVHOST_OPTION_BOOL, "exclusive", "true", "lock", NULL, 0, 0},
    {sizeof(devhost_option_spec), DEVHOST_OPTION_STRING, "label", NULL, "a label", NULL, 0, 0},
};

static devhost_option_value value(uint32_t type, const char *name, const char *text, int64_t integer, int set)
{
    devhost_option_value v;
    memset(&v, 0, sizeof v);
    v.struct_size = sizeof v;
    v.type = type;
    v.name = name;
    v.text = text;
    v.integer = integer;
    v.is_set = (uint32_t)set;
    return v;
}

/* A value as a newer host might pass it: a field appended. */
typedef struct newer_value {
    devhost_option_value v1;
    uint64_t appended;
} newer_value;

static void check_options(void)
{
    devhost_option_value values[OPT_COUNT];
    newer_value newer[OPT_COUNT];
    devhost_open_params params;
    int i;
    values[OPT_BAUD] = value(DEVHOST_OPTION_INT, "baud", "115200", 115200, 1);
    values[OPT_PARITY] = value(DEVHOST_OPTION_ENUM, "parity", "even", 2, 1);
    values[OPT_EXCLUSIVE] = value(DEVHOST_OPTION_BOOL, "exclusive", "true", 1, 1);
    values[OPT_LABEL] = value(DEVHOST_OPTION_STRING, "label", "", 0, 0);
    memset(&params, 0, sizeof params);
    params.struct_size = sizeof params;
    params.options = values;
    params.option_count = OPT_COUNT;

    check(devhost_util_option_int(&params, schema, OPT_BAUD, 9600) == 115200, "option by index",
          (long)devhost_util_option_int(&params, schema, OPT_BAUD, 9600), 115200);
    check_text(devhost_util_option_text(&params, schema, OPT_PARITY, "?"), "even", "option text by index");
    check(devhost_util_option(&params, schema, OPT_LABEL) == NULL, "an unset option is NULL", 1, 0);
    check(devhost_util_option_int(&params, schema, OPT_LABEL, 7) == 7, "an unset option gives the fallback", 0, 7);

    /* An ENUM's choice is its integer, within the spec's choices. */
    check(devhost_util_choice_count("none|odd|even") == 3 && devhost_util_choice_count("x") == 1 &&
              devhost_util_choice_count(NULL) == 0,
          "choice_count", devhost_util_choice_count("none|odd|even"), 3);
    check(devhost_util_option_choice(&params, schema, OPT_PARITY, 0) == 2, "a choice by its index",
          devhost_util_option_choice(&params, schema, OPT_PARITY, 0), 2);
    values[OPT_PARITY].integer = 3;
    check(devhost_util_option_choice(&params, schema, OPT_PARITY, 0) == -1, "an index past the choices",
          devhost_util_option_choice(&params, schema, OPT_PARITY, 0), -1);
    values[OPT_PARITY].integer = -1;
    check(devhost_util_option_choice(&params, schema, OPT_PARITY, 0) == -1, "a negative index",
          devhost_util_option_choice(&params, schema, OPT_PARITY, 0), -1);
    values[OPT_PARITY].is_set = 0;
    check(devhost_util_option_choice(&params, schema, OPT_PARITY, 1) == 1, "an unset choice gives the fallback",
          devhost_util_option_choice(&params, schema, OPT_PARITY, 1), 1);

    /* Out of schema order, an option is still found (by name). */
    values[OPT_BAUD] = value(DEVHOST_OPTION_ENUM, "parity", "odd", 1, 1);
    values[OPT_PARITY] = value(DEVHOST_OPTION_INT, "baud", "300", 300, 1);
    check(devhost_util_option_int(&params, schema, OPT_BAUD, 0) == 300, "a misplaced option is found by name",
          (long)devhost_util_option_int(&params, schema, OPT_BAUD, 0), 300);

    /* Fewer values than the schema: the missing one is NULL. */
    params.option_count = 2;
    check(devhost_util_option(&params, schema, OPT_EXCLUSIVE) == NULL, "a missing option is NULL", 1, 0);
    params.option_count = 0;
    params.options = NULL;
    check(devhost_util_option(&params, schema, OPT_BAUD) == NULL, "no options at all", 1, 0);

    /* Values larger than this header's struct are stepped over by their size. */
    for (i = 0; i < OPT_COUNT; i++) {
        newer[i].v1 = value(schema[i].type, schema[i].name, "1", 40 + i, 1);
        newer[i].v1.struct_size = sizeof newer[i];
        newer[i].appended = 0;
    }
    params.options = &newer[0].v1;
    params.option_count = OPT_COUNT;
    check(devhost_util_option_int(&params, schema, OPT_LABEL, 0) == 43, "values of a newer host's size",
          (long)devhost_util_option_int(&params, schema, OPT_LABEL, 0), 43);
}

/* ---- 4. text ---- */

static void check_text_parsing(void)
{
    static const char *const yes[] = {"true", "TRUE", "Yes", "on", "1"};
    static const char *const no[] = {"false", "No", "OFF", "0"};
    static const char *const neither[] = {"", "maybe", "2", "truee", "o"};
    size_t i;
    int out;
    for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        out = -1;
        check(devhost_util_parse_bool(yes[i], &out) && out == 1, yes[i], out, 1);
    }
    for (i = 0; i < sizeof no / sizeof no[0]; i++) {
        out = -1;
        check(devhost_util_parse_bool(no[i], &out) && out == 0, no[i], out, 0);
    }
    for (i = 0; i < sizeof neither / sizeof neither[0]; i++) {
        out = -1;
        check(!devhost_util_parse_bool(neither[i], &out) && out == -1, neither[i], out, -1);
    }
    check(!devhost_util_parse_bool(NULL, &out), "parse_bool(NULL)", 1, 0);

    check(devhost_util_parse_choice("none", "none|odd|even") == 0, "first choice", 0, 0);
    check(devhost_util_parse_choice("EVEN", "none|odd|even") == 2, "last choice, any case",
          devhost_util_parse_choice("EVEN", "none|odd|even"), 2);
    check(devhost_util_parse_choice("od", "none|odd|even") == -1, "a prefix is no choice", 0, -1);
    check(devhost_util_parse_choice("", "none|odd") == -1, "empty text is no choice", 0, -1);
    check(devhost_util_parse_choice("x", "x") == 0, "a single choice", 0, 0);
    check(devhost_util_iequal("Loop", "lOOP") && !devhost_util_iequal("loop", "loops"), "iequal", 0, 1);
}

/* ---- 5. error records, strings ---- */

static void check_strings(void)
{
    devhost_error err = fresh_error();
    char *copy = devhost_util_copy_string("loop:a");

    check(copy && strcmp(copy, "loop:a") == 0, "copy_string copies", 0, 0);
    free(copy);
    check(err.struct_size == sizeof err && err.os_errno == 0 && err.message[0] == '\0', "error_init", 0, 0);
}

int main(void)
{
    check_deadlines();
    check_waits();
    check_options();
    check_text_parsing();
    check_strings();
    if (failures)
        printf("%d plugin_util check(s) failed\n", failures);
    else
        printf("plugin_util.h: deadlines, waits, options, text, strings: all checks passed\n");
    return failures ? 1 : 0;
}
