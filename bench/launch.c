/* devhost-bench-launch COMMAND [ARGS...]: runs COMMAND with stdout and
 * stderr on /dev/null and prints "EXIT WALL_MS MAX_RSS_KIB" for it.
 *
 * Why a separate small program: a child's ru_maxrss starts from its parent's
 * high-water RSS at fork (the kernel copies it and keeps the larger value at
 * exec), so forking the command from the big benchmark process would report
 * the benchmark's own RSS. Forked from this small launcher, the figure is the
 * command's, floored at the launcher's own (about 1 MiB, also reported for
 * /bin/true). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: devhost-bench-launch COMMAND [ARGS...]\n");
        return 2;
    }
    double start = now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        perror("devhost-bench-launch: fork");
        return 2;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int status = 0;
    struct rusage usage;
    while (wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
    }
    double wall = now_ms() - start;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    printf("%d %.3f %ld\n", code, wall, usage.ru_maxrss);
    return 0;
}
