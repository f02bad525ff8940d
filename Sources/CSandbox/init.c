// init.c — PID 1 of the sandbox, and the command's last steps before execve.
//
// Assumes: spawn.c finished every setup step; this process is PID 1 of the
// sandbox PID namespace, unprivileged, seccomp-filtered, with every signal
// blocked. Init forks the command, reaps every zombie reparented to it,
// forwards termination signals to the command, and when the command exits
// reports its wait status (and which scratch tmpfs is full) and exits — the
// kernel then kills whatever else is left in the namespace (double-forked
// daemons included).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static int attach_stdio(const struct cs_spawn_config *c) {
    // All three are >= 3 (the parent guarantees it), so no dup2 clobbers
    // another source.
    if (dup2(c->stdin_fd, 0) < 0) return -errno;
    if (dup2(c->stdout_fd, 1) < 0) return -errno;
    if (dup2(c->stderr_fd, 2) < 0) return -errno;
    return 0;
}

// CLOEXEC rather than close: the report pipe must stay usable to report an
// execve failure, and execve closes everything but 0, 1 and 2.
static int cloexec_rest(void) {
    return close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0 ? -errno : 0;
}

static int change_dir(const char *dir) {
    return chdir(dir) < 0 ? -errno : 0;
}

static int unblock_signals(void) {
    sigset_t none;
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL) < 0 ? -errno : 0;
}

// Like execvp without malloc: the parent resolved PATH into candidates.
static int exec_command(const struct cs_spawn_config *c) {
    int err = ENOENT;
    int seen_eacces = 0;
    for (int i = 0; i < c->exec_path_count; i++) {
        execve(c->exec_paths[i], c->argv, c->envp);
        err = errno;
        if (err == EACCES) seen_eacces = 1;
        else if (err != ENOENT && err != ENOTDIR) break;
    }
    if (seen_eacces && (err == ENOENT || err == ENOTDIR)) err = EACCES;
    return -err;
}

static _Noreturn void command_main(const struct cs_spawn_config *c) {
    // A session of its own: job-control signals stay inside the sandbox.
    if (setsid() < 0) cs_fail(c, CS_STEP_SETSID, errno, -1);
    int r = attach_stdio(c);
    if (r < 0) cs_fail(c, CS_STEP_DUP2, r, -1);
    r = cloexec_rest();
    if (r < 0) cs_fail(c, CS_STEP_CLOSE_RANGE, r, -1);
    r = change_dir(c->cwd);
    if (r < 0) cs_fail(c, CS_STEP_CHDIR, r, -1);
    r = unblock_signals();
    if (r < 0) cs_fail(c, CS_STEP_SIGNALS, r, -1);
    r = exec_command(c);
    cs_report_write(c->report_fd, CS_STEP_EXECVE, -r, -1);
    _exit(127);
}

// Which scratch filesystems (the tmp_bytes-sized tmpfs at /tmp and
// /workspace) are full now: no block or no inode left. Read by init after the
// command ended, while the mounts still exist; the daemon reports it as the
// tmp_bytes violation. statfs is a plain system call: async-signal-safe.
static int32_t scratch_full(void) {
    static const struct {
        const char *path;
        int32_t bit;
    } scratch[] = {{"/tmp", CS_SCRATCH_TMP_FULL}, {"/workspace", CS_SCRATCH_WORKSPACE_FULL}};
    int32_t full = 0;
    for (size_t i = 0; i < sizeof scratch / sizeof scratch[0]; i++) {
        struct statfs st;
        if (statfs(scratch[i].path, &st) == 0 && (st.f_bavail == 0 || st.f_ffree == 0)) full |= scratch[i].bit;
    }
    return full;
}

// The command's stack until execve: it shares init's memory (CLONE_VM) and
// init waits (CLONE_VFORK), so nothing else uses it meanwhile.
static char command_stack[64 * 1024] __attribute__((aligned(64)));

static int command_entry(void *arg) {
    command_main(arg);
}

void cs_init_main(const struct cs_spawn_config *c) {
    // vfork-style: no copy of init's address space (the whole daemon image
    // in the zygote's case), init resumes once the command has exec'd or
    // failed. glibc's clone() is a bare syscall wrapper: no atfork handlers,
    // no locks.
    int pid = clone(command_entry, command_stack + sizeof command_stack, CLONE_VM | CLONE_VFORK | SIGCHLD,
                    (void *)c);
    if (pid < 0) cs_fail(c, CS_STEP_FORK, errno, -1);

    // Init needs none of the command's descriptors.
    close(c->stdin_fd);
    close(c->stdout_fd);
    close(c->stderr_fd);

    sigset_t waited;
    sigemptyset(&waited);
    static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(&waited, forwarded[i]);
    sigaddset(&waited, SIGCHLD);
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&waited, &info);
        if (sig < 0) {
            if (errno == EINTR) continue;
            cs_fail(c, CS_STEP_WAIT, errno, -1);
        }
        if (sig != SIGCHLD) {
            (void)kill((pid_t)pid, sig);
            continue;
        }
        // SIGCHLD coalesces: reap everything that is ready.
        for (;;) {
            int status = 0;
            pid_t done = waitpid(-1, &status, WNOHANG | __WALL);
            if (done <= 0) break;
            if (done == pid) {
                cs_report_write(c->report_fd, CS_STEP_EXITED, status, scratch_full());
                _exit(0);
            }
        }
    }
}
