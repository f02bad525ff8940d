// spawn.c — clone the sandbox init and list its setup, in order.
//
// Runs in the daemon (multi-threaded, host root). The clone has no CLONE_VM:
// the child works on a copy-on-write copy of the daemon, in which only the
// calling thread exists, so from here to execve it runs nothing but the
// async-signal-safe C below. Every setup step either succeeds or ends the
// child with a cs_report naming the step and errno (fail closed).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

// Set by the zygote: its handlers are all SIG_DFL (posix_spawn reset them)
// but the two it ignores, so a clone of it need reset only those.
int cs_zygote_signals_known = 0;

// Handlers are inherited from the daemon; SIG_IGN would even survive execve.
// All signals stay blocked (the parent blocked them around clone) until the
// command unblocks them right before execve.
static int reset_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    if (cs_zygote_signals_known) {
        (void)sigaction(SIGCHLD, &sa, NULL);
        (void)sigaction(SIGPIPE, &sa, NULL);
        return 0;
    }
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        // glibc refuses its two internal signals (EINVAL); those are never SIG_IGN.
        (void)sigaction(sig, &sa, NULL);
    }
    return 0;
}

static int new_session(void) {
    return setsid() < 0 ? -errno : 0;
}

static int die_with_parent(void) {
    return prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 ? -errno : 0;
}

// The child got a copy of every daemon fd (sockets, other sandboxes' pipes,
// pooled namespaces). Keep only ours: a leaked pipe write end would delay
// another execution's EOF for as long as this sandbox lives.
static int close_foreign_fds(const struct cs_spawn_config *c) {
    int keep[5];
    int n = 0;
    int cand[5] = {c->stdin_fd, c->stdout_fd, c->stderr_fd, c->report_fd, c->netns_fd};
    for (int i = 0; i < 5; i++) {
        if (cand[i] < 0) continue;
        // insertion sort, skipping duplicates
        int j = n;
        while (j > 0 && keep[j - 1] > cand[i]) j--;
        if (j > 0 && keep[j - 1] == cand[i]) continue;
        for (int k = n; k > j; k--) keep[k] = keep[k - 1];
        keep[j] = cand[i];
        n++;
    }
    unsigned int from = 0;
    for (int i = 0; i < n; i++) {
        if ((unsigned int)keep[i] > from && close_range(from, (unsigned int)keep[i] - 1, 0) < 0) return -errno;
        from = (unsigned int)keep[i] + 1;
    }
    if (close_range(from, ~0U, 0) < 0) return -errno;
    return 0;
}

static int new_cgroup_namespace(void) {
    return unshare(CLONE_NEWCGROUP) < 0 ? -errno : 0;
}

static int join_netns(int fd) {
    int r = setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
    close(fd);
    return r;
}

static int set_hostname(const char *name) {
    return sethostname(name, strlen(name)) < 0 ? -errno : 0;
}

static int no_new_privs(void) {
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
}

static struct timespec clone_time;

// Set before the clone, read by the child in its copy: clone3 put it in its
// cgroup already.
static int placed_by_clone = 0;

static void trace(const struct cs_spawn_config *c, int32_t step) {
    if (!c->trace_steps) return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t us = (now.tv_sec - clone_time.tv_sec) * 1000000 + (now.tv_nsec - clone_time.tv_nsec) / 1000;
    cs_report_write(c->report_fd, CS_STEP_TRACE, (int32_t)us, step);
}

#define STEP(step, call)                                  \
    do {                                                  \
        int r_ = (call);                                  \
        if (r_ < 0) cs_fail(c, (step), r_, -1);           \
        trace(c, (step));                                 \
    } while (0)

// The whole child setup, one step a line. The order is the design:
static _Noreturn void child_main(const struct cs_spawn_config *c) {
    // Nothing inherited may run or be ignored behind our back.
    STEP(CS_STEP_SIGNALS, reset_signal_handlers());
    // Out of the daemon's session and process group (terminal signals).
    STEP(CS_STEP_SETSID, new_session());
    // If the daemon dies, init dies, and the kernel kills the PID namespace.
    // (Credential changes clear it; it is set again before the fork.)
    STEP(CS_STEP_PDEATHSIG, die_with_parent());
    // First, so no daemon descriptor lives on even if a later step fails.
    STEP(CS_STEP_CLOSE_FDS, close_foreign_fds(c));
    // Into the execution's cgroup before anything is allocated or forked, so
    // every page and process of the sandbox is counted and limited.
    if (!placed_by_clone) STEP(CS_STEP_CGROUP, cs_cgroup_join(c));
    // After joining: the sandbox's cgroup becomes the namespace's root.
    STEP(CS_STEP_UNSHARE_CGROUP, new_cgroup_namespace());
    // Network and hostname need host root (CAP_SYS_ADMIN over the namespace
    // owners), so they come before the credential drop.
    if (c->netns_fd >= 0) {
        STEP(CS_STEP_SETNS_NET, join_netns(c->netns_fd));
    } else if (c->new_netns) {
        STEP(CS_STEP_LOOPBACK, cs_loopback_up());
    }
    STEP(CS_STEP_SETHOSTNAME, set_hostname(c->hostname));
    // Mounts: private first, then the plan (root tmpfs, binds, /proc, /dev,
    // /tmp, /workspace, root read-only), then pivot_root and detaching the
    // old root. Needs host root and our PID namespace (for /proc).
    STEP(CS_STEP_MOUNT_PRIVATE, cs_mount_make_private());
    {
        int32_t op = -1;
        int r = cs_mount_plan(c, &op);
        if (r < 0) cs_fail(c, CS_STEP_MOUNT, r, op);
        trace(c, CS_STEP_MOUNT);
    }
    STEP(CS_STEP_PIVOT_ROOT, cs_pivot_root(c->root_dir));
    STEP(CS_STEP_UMOUNT_OLD_ROOT, cs_detach_old_root());
    // Hard limits while still host root (unprivileged code can only lower).
    STEP(CS_STEP_RLIMIT, cs_set_rlimits(c));
    // Host root -> sandbox host uid/gid -> new user namespace mapping only
    // <inside uid> to it -> no capabilities at all.
    {
        int32_t step = CS_STEP_NONE;
        int r = cs_drop_to_host_user(c, &step);
        if (r == 0) r = cs_enter_user_namespace(c, &step);
        if (r == 0) r = cs_drop_capabilities(c, &step);
        if (r < 0) cs_fail(c, step, r, -1);
        trace(c, CS_STEP_CAPSET);
    }
    // Required for an unprivileged seccomp filter; also stops setuid gains.
    STEP(CS_STEP_NO_NEW_PRIVS, no_new_privs());
    STEP(CS_STEP_PDEATHSIG, die_with_parent());
    // Last: the filter need not allow anything the steps above use.
    STEP(CS_STEP_SECCOMP, cs_seccomp_load(c->seccomp_prog));
    // A prepared sandbox stops here, confined, until it is given a command.
    if (c->warm) cs_warm_wait(c);
    cs_init_main(c);
}

pid_t cs_spawn(const struct cs_spawn_config *c, int *pidfd, int *placed) {
    unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD;
    if (c->netns_fd < 0 && c->new_netns) flags |= CLONE_NEWNET;
    // Block every signal across clone so no daemon handler runs in the child.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int fd = -1;
    if (c->trace_steps) clock_gettime(CLOCK_MONOTONIC, &clone_time);
    // Exit signal 0: no SIGCHLD to the daemon, and a waitpid(-1) elsewhere in
    // the daemon cannot reap it (needs __WALL); we wait on the pidfd.
    long pid = -1;
    int err = ENOSYS;
    int cgroup_fd = c->cgroup_dir != NULL ? open(c->cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (cgroup_fd >= 0) {
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.flags = flags | CLONE_INTO_CGROUP;
        args.pidfd = (uint64_t)(uintptr_t)&fd;
        args.exit_signal = (uint64_t)(c->exit_signal & 0xff);
        args.cgroup = (uint64_t)cgroup_fd;
        placed_by_clone = 1;
        pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0) child_main(c);
        err = errno;
        close(cgroup_fd);
    }
    // No clone3 or no CLONE_INTO_CGROUP (older kernels: ENOSYS, E2BIG,
    // EINVAL), or v1: a plain clone, and the child joins by itself.
    if (pid < 0 && (cgroup_fd < 0 || err == ENOSYS || err == E2BIG || err == EINVAL)) {
        placed_by_clone = 0;
        pid = syscall(SYS_clone, flags | (unsigned long)(c->exit_signal & 0xff), NULL, &fd, NULL, NULL);
        if (pid == 0) child_main(c);
        err = errno;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) return -err;
    *pidfd = fd;
    if (placed != NULL) *placed = placed_by_clone;
    return (pid_t)pid;
}

int cs_pidfd_send_signal(int pidfd, int sig) {
    return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

int cs_pidfd_open(pid_t pid) {
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : (int)fd;
}

int cs_pidfd_wait(int pidfd, int nohang, int *status) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int options = WEXITED | __WALL | (nohang ? WNOHANG : 0);
    int r;
    do {
        r = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, options);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    if (info.si_pid == 0) return 1;
    switch (info.si_code) {
    case CLD_EXITED: *status = (info.si_status & 0xff) << 8; break;
    case CLD_KILLED: *status = info.si_status & 0x7f; break;
    case CLD_DUMPED: *status = (info.si_status & 0x7f) | 0x80; break;
    default: *status = 0; break;
    }
    return 0;
}

int cs_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int cs_seqpacket_pair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds);
}

int cs_eventfd(void) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}
