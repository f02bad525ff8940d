// SpawnFloor: the kernel's floor under any sandbox with toold's namespaces, for
// scripts/bench. Each call clones a child into new user, PID, mount, network,
// UTS, IPC and cgroup namespaces, the child execs /bin/true, the parent waits
// for it — nothing else: no mounts, no cgroup, no seccomp, no daemon, no IPC.
// A sandbox that meets the isolation requirements does at least this much work
// per execution (and tears the namespaces down), so its throughput sits below
// this program's, and bwrap's ratio to it says how much room the rest leaves.
//
// Usage: SpawnFloor WORKERS CALLS
//   WORKERS processes (fork), each making CALLS calls one after another.
// Prints one JSON line: {"workers", "calls", "seconds", "latencies_ms": [...]}
// (every call's clone-to-reaped time). Exits 1 when a clone fails (not root,
// user namespaces off).
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char child_stack[64 << 10] __attribute__((aligned(16)));

static int child(void *unused) {
    (void)unused;
    char *argv[] = {"/bin/true", NULL};
    char *envp[] = {NULL};
    execve("/bin/true", argv, envp);
    _exit(127);
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: SpawnFloor WORKERS CALLS\n");
        return 2;
    }
    int workers = atoi(argv[1]);
    int calls = atoi(argv[2]);
    if (workers < 1 || workers > 256 || calls < 1 || calls > 100000) {
        fprintf(stderr, "SpawnFloor: WORKERS 1-256, CALLS 1-100000\n");
        return 2;
    }
    const int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC |
                      CLONE_NEWCGROUP | SIGCHLD;
    size_t total = (size_t)workers * (size_t)calls;
    // Shared with the workers: each writes its own slice of latencies; -1 marks a failed clone.
    double *latencies = mmap(NULL, total * sizeof(double), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (latencies == MAP_FAILED) {
        perror("SpawnFloor: mmap");
        return 1;
    }
    double started = now_ms();
    for (int w = 0; w < workers; w++) {
        pid_t worker = fork();
        if (worker < 0) {
            perror("SpawnFloor: fork");
            return 1;
        }
        if (worker > 0) continue;
        for (int i = 0; i < calls; i++) {
            double t0 = now_ms();
            pid_t pid = clone(child, child_stack + sizeof child_stack, flags, NULL);
            int status = 0;
            if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                if (pid < 0) fprintf(stderr, "SpawnFloor: clone: %s\n", strerror(errno));
                latencies[(size_t)w * calls + i] = -1;
                _exit(1);
            }
            latencies[(size_t)w * calls + i] = now_ms() - t0;
        }
        _exit(0);
    }
    int failed = 0, status;
    while (wait(&status) > 0) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    }
    double seconds = (now_ms() - started) / 1e3;
    if (failed) return 1;
    printf("{\"workers\": %d, \"calls\": %d, \"seconds\": %.6f, \"latencies_ms\": [", workers, calls, seconds);
    for (size_t i = 0; i < total; i++) printf(i ? ", %.4f" : "%.4f", latencies[i]);
    printf("]}\n");
    return 0;
}
