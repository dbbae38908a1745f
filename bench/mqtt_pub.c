/* devhost-bench-mqtt-pub PORT TOPIC FILE COUNT: the mqtt group's baseline
 * (bench/mqtt.cpp). A plain C loop that publishes COUNT messages to
 * 127.0.0.1:PORT on TOPIC at QoS 1 through libmosquitto, the payloads the
 * lines of FILE in turn, the way `mosquitto_pub -l` does: every
 * mosquitto_publish from the one thread, a mosquitto_loop without waiting
 * after each (it sends what the in-flight window lets out and takes the
 * PUBACKs that came), then mosquitto_loop until every PUBACK is in, then
 * DISCONNECT. Everything else is libmosquitto's default, as in devhost's
 * publisher (MQTT 3.1.1, 20 QoS 1 messages in flight, the rest queued in
 * the library): neither side waits for one PUBACK before the next publish.
 *
 * Exit 0 when every message was acknowledged; 1 on an error (said on
 * stderr), 2 on bad arguments. */
#include <mosquitto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

static int acked;

static void on_publish(struct mosquitto *mosq, void *data, int mid)
{
    (void)mosq;
    (void)data;
    (void)mid;
    acked++;
}

/* The lines of `file` (without their newlines) into *lines; their count. */
static int read_lines(const char *file, char ***lines)
{
    FILE *in = fopen(file, "re");
    if (!in)
        return -1;
    int n = 0, cap = 0;
    char *line = NULL;
    size_t size = 0;
    ssize_t len;
    *lines = NULL;
    while ((len = getline(&line, &size, in)) > 0) {
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            *lines = realloc(*lines, (size_t)cap * sizeof **lines);
            if (!*lines)
                return -1;
        }
        (*lines)[n++] = strdup(line);
    }
    free(line);
    fclose(in);
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 5 || atoi(argv[1]) <= 0 || atoi(argv[4]) <= 0) {
        fprintf(stderr, "usage: devhost-bench-mqtt-pub PORT TOPIC FILE COUNT\n");
        return 2;
    }
    const int port = atoi(argv[1]), count = atoi(argv[4]);
    const char *topic = argv[2];
    char **payloads;
    const int lines = read_lines(argv[3], &payloads);
    if (lines <= 0) {
        fprintf(stderr, "devhost-bench-mqtt-pub: no payloads in %s\n", argv[3]);
        return 1;
    }
    mosquitto_lib_init();
    struct mosquitto *mosq = mosquitto_new("devhost-bench-plain", true, NULL);
    if (!mosq)
        return 1;
    mosquitto_publish_callback_set(mosq, on_publish);
    int rc = mosquitto_connect(mosq, "127.0.0.1", port, 30);
    for (int i = 0; rc == MOSQ_ERR_SUCCESS && i < count; i++) {
        const char *p = payloads[i % lines];
        rc = mosquitto_publish(mosq, NULL, topic, (int)strlen(p), p, 1, false);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_loop(mosq, 0, 1);
    }
    const double until = now_s() + 120;
    while (rc == MOSQ_ERR_SUCCESS && acked < count && now_s() < until)
        rc = mosquitto_loop(mosq, 100, 1);
    if (rc != MOSQ_ERR_SUCCESS || acked < count) {
        fprintf(stderr, "devhost-bench-mqtt-pub: %d of %d acknowledged: %s\n", acked, count,
                rc != MOSQ_ERR_SUCCESS ? mosquitto_strerror(rc) : "timed out");
        return 1;
    }
    mosquitto_disconnect(mosq);
    mosquitto_loop(mosq, 100, 1);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    return 0;
}
