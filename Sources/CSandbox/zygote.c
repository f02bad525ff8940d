// zygote.c — a small single-threaded process that clones sandboxes for the
// daemon (design option 1), so no execution copies the daemon's address space.
//
// Start: the daemon posix_spawns the small toold-sandbox-zygote executable
// (Sources/ToolZygote; or, when it is not installed, its own executable,
// /proc/self/exe) with argv[0] "toold-sandbox-zygote" and
// TOOLD_SANDBOX_ZYGOTE_FD=3. The constructor below runs before the program's
// main, recognises both, and never returns: the process becomes the zygote.
// Its address space is a fresh exec — with the small executable a few pages,
// not the daemon's image and heap — so each clone copies little, and the
// daemon's own threads never fork.
//
// Protocol (SOCK_SEQPACKET socketpair, one request at a time, the daemon side
// serialised by a mutex): request header {body size, fd count} carrying the
// fds (stdin, stdout, stderr, report[, netns]) as SCM_RIGHTS, then the body in
// records of at most 64 KiB: the cs_spawn_config flattened, pointers as
// offsets. Reply {pid or -errno} carrying init's pidfd.
//
// Prepared sandboxes (cs_spawn_config.warm): the same request, with a
// control socket as the report fd. Init runs every setup step, reports
// CS_STEP_READY, and waits on the control socket for the per-command part
// (cs_warm_start / cs_warm_wait below): stdio and report descriptors, argv,
// envp, cwd, PATH candidates and the file size limit.
//
// The zygote ignores SIGCHLD, so the kernel reaps each sandbox init as it
// exits; the daemon learns of the exit by polling the pidfd and of the
// command's status from the report pipe. The zygote exits when the daemon's
// end of the socket closes; each init's PR_SET_PDEATHSIG then kills it.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

#define ZYGOTE_ARGV0 "toold-sandbox-zygote"
#define ZYGOTE_ENV "TOOLD_SANDBOX_ZYGOTE_FD"
#define ZYGOTE_FD 3
#define ZYGOTE_MAGIC 0x7a79676f746f6f6cULL  // "toolgozy"
#define RECORD_MAX 65536
#define MAX_FDS 5

// The hello a zygote sends: the magic mixed with this build's identity (the
// compile time of this file and the size of the config it parses), so a
// zygote executable from another build (a package upgrade while the daemon
// runs, then a restart) is refused rather than fed a config it may read
// differently. toold and toold-sandbox-zygote link the same object of this
// file, so within one build the two always agree.
uint64_t cs_zygote_hello(void) {
    static const char build[] = __DATE__ " " __TIME__;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < sizeof build - 1; i++) h = (h ^ (unsigned char)build[i]) * 0x100000001b3ULL;
    h = (h ^ (uint64_t)sizeof(struct cs_spawn_config)) * 0x100000001b3ULL;
    return ZYGOTE_MAGIC ^ h;
}

struct request_header {
    uint64_t body_size;
    int32_t fd_count;
    int32_t reserved;
};

struct reply {
    int64_t result;
    int32_t placed;   // 1: clone3 placed init in its cgroup (CLONE_INTO_CGROUP)
    int32_t reserved;
};

// ---------------------------------------------------------------- flattening
// Daemon side: the config and everything it points to in one buffer; every
// pointer replaced by (offset + 1), 0 for NULL.

struct writer {
    char *buf;
    size_t len;
    size_t cap;
    int failed;
};

static size_t put(struct writer *w, const void *data, size_t n) {
    size_t offset = (w->len + 7) & ~(size_t)7;
    if (offset + n > w->cap) {
        size_t cap = w->cap ? w->cap : 16384;
        while (offset + n > cap) cap *= 2;
        char *grown = realloc(w->buf, cap);
        if (grown == NULL) {
            w->failed = 1;
            return 0;
        }
        w->buf = grown;
        w->cap = cap;
    }
    if (data != NULL) memcpy(w->buf + offset, data, n);
    else memset(w->buf + offset, 0, n);
    w->len = offset + n;
    return offset;
}

static uintptr_t put_string(struct writer *w, const char *s) {
    if (s == NULL) return 0;
    return put(w, s, strlen(s) + 1) + 1;
}

// An array of strings; count < 0 means NULL-terminated (the NULL is kept).
static uintptr_t put_strings(struct writer *w, const char *const *strings, int count) {
    if (strings == NULL) return 0;
    size_t n = 0;
    if (count < 0) {
        while (strings[n] != NULL) n++;
    } else {
        n = (size_t)count;
    }
    size_t table = put(w, NULL, (n + 1) * sizeof(uintptr_t));
    for (size_t i = 0; i < n && !w->failed; i++) {
        uintptr_t s = put_string(w, strings[i]);
        ((uintptr_t *)(w->buf + table))[i] = s;
    }
    if (!w->failed) ((uintptr_t *)(w->buf + table))[n] = 0;
    return table + 1;
}

#define CFG(w) ((struct cs_spawn_config *)((w)->buf))
#define AS_PTR(type, v) ((type)(uintptr_t)(v))

static int flatten(const struct cs_spawn_config *c, struct writer *w) {
    put(w, c, sizeof *c);
    uintptr_t v;
    v = put_strings(w, c->cgroup_procs, c->cgroup_procs_count);
    if (!w->failed) CFG(w)->cgroup_procs = AS_PTR(const char *const *, v);
    v = put_string(w, c->cgroup_dir);
    if (!w->failed) CFG(w)->cgroup_dir = AS_PTR(const char *, v);
    v = put_string(w, c->hostname);
    if (!w->failed) CFG(w)->hostname = AS_PTR(const char *, v);
    v = put_string(w, c->root_dir);
    if (!w->failed) CFG(w)->root_dir = AS_PTR(const char *, v);
    size_t ops = put(w, c->mounts, sizeof(struct cs_mount_op) * (size_t)c->mount_count);
    for (int i = 0; i < c->mount_count && !w->failed; i++) {
        uintptr_t src = put_string(w, c->mounts[i].source);
        uintptr_t dst = put_string(w, c->mounts[i].target);
        uintptr_t data = put_string(w, c->mounts[i].data);
        if (w->failed) break;
        struct cs_mount_op *op = (struct cs_mount_op *)(w->buf + ops) + i;
        op->source = AS_PTR(const char *, src);
        op->target = AS_PTR(const char *, dst);
        op->data = AS_PTR(const char *, data);
    }
    if (!w->failed) CFG(w)->mounts = AS_PTR(const struct cs_mount_op *, ops + 1);
    v = put_string(w, c->uid_map);
    if (!w->failed) CFG(w)->uid_map = AS_PTR(const char *, v);
    v = put_string(w, c->gid_map);
    if (!w->failed) CFG(w)->gid_map = AS_PTR(const char *, v);
    if (c->seccomp_prog != NULL) {
        const struct sock_fprog *prog = c->seccomp_prog;
        size_t p = put(w, prog, sizeof *prog);
        size_t f = put(w, prog->filter, sizeof(struct sock_filter) * prog->len);
        if (!w->failed) {
            ((struct sock_fprog *)(w->buf + p))->filter = AS_PTR(struct sock_filter *, f + 1);
            CFG(w)->seccomp_prog = AS_PTR(const void *, p + 1);
        }
    }
    v = put_strings(w, c->exec_paths, c->exec_path_count);
    if (!w->failed) CFG(w)->exec_paths = AS_PTR(const char *const *, v);
    v = put_strings(w, (const char *const *)c->argv, -1);
    if (!w->failed) CFG(w)->argv = AS_PTR(char *const *, v);
    v = put_strings(w, (const char *const *)c->envp, -1);
    if (!w->failed) CFG(w)->envp = AS_PTR(char *const *, v);
    v = put_string(w, c->cwd);
    if (!w->failed) CFG(w)->cwd = AS_PTR(const char *, v);
    return w->failed ? -ENOMEM : 0;
}

// Zygote side: offsets back to pointers, each checked against the buffer.
struct reader {
    char *base;
    size_t size;
    int bad;
};

static void *fix(struct reader *r, const void *field, size_t need) {
    uintptr_t v = (uintptr_t)field;
    if (v == 0) return NULL;
    if (v - 1 > r->size || need > r->size - (v - 1)) {
        r->bad = 1;
        return NULL;
    }
    return r->base + (v - 1);
}

static const char *fix_string(struct reader *r, const void *field) {
    const char *s = fix(r, field, 1);
    if (s != NULL && memchr(s, 0, r->size - (size_t)(s - r->base)) == NULL) {
        r->bad = 1;
        return NULL;
    }
    return s;
}

static void *fix_strings(struct reader *r, const void *field, int count) {
    uintptr_t *table = fix(r, field, sizeof(uintptr_t));
    if (table == NULL) return NULL;
    size_t max = (r->size - (size_t)((char *)table - r->base)) / sizeof(uintptr_t);
    for (size_t i = 0; i < max; i++) {
        if (table[i] == 0) {
            if (count >= 0 && i != (size_t)count) r->bad = 1;
            return table;
        }
        table[i] = (uintptr_t)fix_string(r, (const void *)table[i]);
    }
    r->bad = 1;
    return NULL;
}

static int unflatten(char *buf, size_t size, struct cs_spawn_config **out) {
    if (size < sizeof(struct cs_spawn_config)) return -EINVAL;
    struct reader r = {buf, size, 0};
    struct cs_spawn_config *c = (struct cs_spawn_config *)buf;
    c->cgroup_procs = fix_strings(&r, c->cgroup_procs, c->cgroup_procs_count);
    c->cgroup_dir = fix_string(&r, c->cgroup_dir);
    c->hostname = fix_string(&r, c->hostname);
    c->root_dir = fix_string(&r, c->root_dir);
    if (c->mount_count < 0 || (size_t)c->mount_count > size / sizeof(struct cs_mount_op)) return -EINVAL;
    struct cs_mount_op *ops = fix(&r, c->mounts, sizeof(struct cs_mount_op) * (size_t)c->mount_count);
    for (int i = 0; ops != NULL && i < c->mount_count; i++) {
        ops[i].source = fix_string(&r, ops[i].source);
        ops[i].target = fix_string(&r, ops[i].target);
        ops[i].data = fix_string(&r, ops[i].data);
    }
    c->mounts = ops;
    c->uid_map = fix_string(&r, c->uid_map);
    c->gid_map = fix_string(&r, c->gid_map);
    struct sock_fprog *prog = fix(&r, c->seccomp_prog, sizeof(struct sock_fprog));
    if (prog != NULL) prog->filter = fix(&r, prog->filter, sizeof(struct sock_filter) * prog->len);
    c->seccomp_prog = prog;
    c->exec_paths = fix_strings(&r, c->exec_paths, c->exec_path_count);
    c->argv = fix_strings(&r, c->argv, -1);
    c->envp = fix_strings(&r, c->envp, -1);
    c->cwd = fix_string(&r, c->cwd);
    if (r.bad || c->argv == NULL || c->envp == NULL || c->cwd == NULL || c->root_dir == NULL) return -EINVAL;
    *out = c;
    return 0;
}

// ---------------------------------------------------------------- messages

static int send_with_fds(int sock, const void *data, size_t len, const int *fds, int nfds) {
    struct iovec iov = {(void *)data, len};
    union {
        char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t n;
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    return (size_t)n == len ? 0 : -EIO;
}

// Receives one record; fds (O_CLOEXEC) into fds[0..*nfds). Returns its length,
// 0 at EOF, or -errno.
static ssize_t recv_with_fds(int sock, void *data, size_t len, int *fds, int *nfds) {
    struct iovec iov = {data, len};
    union {
        char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    int got = 0;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *received = (int *)CMSG_DATA(cmsg);
        for (int i = 0; i < count; i++) {
            if (fds != NULL && got < *nfds) fds[got++] = received[i];
            else close(received[i]);
        }
    }
    if (nfds != NULL) *nfds = got;
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        for (int i = 0; fds != NULL && i < got; i++) close(fds[i]);
        if (nfds != NULL) *nfds = 0;
        return -EMSGSIZE;
    }
    return n;
}

// ---------------------------------------------------------------- daemon side

static pthread_mutex_t zygote_lock = PTHREAD_MUTEX_INITIALIZER;

int cs_zygote_start(const char *path, int *sock_out, pid_t *pid_out) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return -errno;
    // adddup2 onto the same number would keep O_CLOEXEC on older glibc.
    if (sv[1] == ZYGOTE_FD) {
        int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, ZYGOTE_FD + 1);
        close(sv[1]);
        if (moved < 0) {
            close(sv[0]);
            return -errno;
        }
        sv[1] = moved;
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, sv[1], ZYGOTE_FD);
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {ZYGOTE_ARGV0, NULL};
    char *envp[] = {ZYGOTE_ENV "=3", NULL};
    pid_t pid;
    int e = posix_spawn(&pid, path != NULL ? path : "/proc/self/exe", &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(sv[1]);
    if (e != 0) {
        close(sv[0]);
        return -e;
    }
    // The zygote says hello; anything else (or silence) means this executable
    // did not become a zygote — kill it before it does anything else.
    struct pollfd p = {sv[0], POLLIN, 0};
    uint64_t magic = 0;
    int r = poll(&p, 1, 10000);
    ssize_t n = r == 1 ? recv(sv[0], &magic, sizeof magic, 0) : -1;
    if (n != (ssize_t)sizeof magic || magic != cs_zygote_hello()) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        close(sv[0]);
        return r == 0 ? -ETIMEDOUT : -EPROTO;
    }
    *sock_out = sv[0];
    *pid_out = pid;
    return 0;
}

pid_t cs_zygote_spawn(int sock, const struct cs_spawn_config *c, int *pidfd, int *placed) {
    struct writer w = {NULL, 0, 0, 0};
    int r = flatten(c, &w);
    if (r < 0) {
        free(w.buf);
        return r;
    }
    int fds[MAX_FDS] = {c->stdin_fd, c->stdout_fd, c->stderr_fd, c->report_fd, c->netns_fd};
    int nfds = c->netns_fd >= 0 ? 5 : 4;
    struct request_header header = {.body_size = w.len, .fd_count = nfds, .reserved = 0};
    struct reply reply = {-EIO, 0, 0};
    int fd = -1;
    pthread_mutex_lock(&zygote_lock);
    r = send_with_fds(sock, &header, sizeof header, fds, nfds);
    for (size_t off = 0; r == 0 && off < w.len; off += RECORD_MAX) {
        size_t chunk = w.len - off < RECORD_MAX ? w.len - off : RECORD_MAX;
        r = send_with_fds(sock, w.buf + off, chunk, NULL, 0);
    }
    if (r == 0) {
        // Gone now: ECONNRESET means it exited with part of the request
        // unread (it never had it: retry); end of file or a short reply
        // means it read everything and may have cloned first (see the header).
        int got = 1;
        ssize_t n = recv_with_fds(sock, &reply, sizeof reply, &fd, &got);
        if (n < 0) r = (int)n;
        else if (n != (ssize_t)sizeof reply) r = -EOWNERDEAD;
        else if (reply.result > 0 && got != 1) r = -EPROTO;
        if (got != 1) fd = -1;
    }
    pthread_mutex_unlock(&zygote_lock);
    free(w.buf);
    if (r < 0) {
        if (fd >= 0) close(fd);
        return r;
    }
    if (reply.result <= 0) {
        if (fd >= 0) close(fd);
        return reply.result < 0 ? (pid_t)reply.result : -EPROTO;
    }
    *pidfd = fd;
    if (placed != NULL) *placed = reply.placed;
    return (pid_t)reply.result;
}

// ---------------------------------------------------------------- prepared sandboxes

static int flatten_call(const struct cs_call *call, struct writer *w) {
    put(w, call, sizeof *call);
    uintptr_t v;
    v = put_strings(w, call->exec_paths, call->exec_path_count);
    if (!w->failed) ((struct cs_call *)w->buf)->exec_paths = AS_PTR(const char *const *, v);
    v = put_strings(w, (const char *const *)call->argv, -1);
    if (!w->failed) ((struct cs_call *)w->buf)->argv = AS_PTR(char *const *, v);
    v = put_strings(w, (const char *const *)call->envp, -1);
    if (!w->failed) ((struct cs_call *)w->buf)->envp = AS_PTR(char *const *, v);
    v = put_string(w, call->cwd);
    if (!w->failed) ((struct cs_call *)w->buf)->cwd = AS_PTR(const char *, v);
    return w->failed ? -ENOMEM : 0;
}

static int unflatten_call(char *buf, size_t size, struct cs_call **out) {
    if (size < sizeof(struct cs_call)) return -EINVAL;
    struct reader r = {buf, size, 0};
    struct cs_call *call = (struct cs_call *)buf;
    call->exec_paths = fix_strings(&r, call->exec_paths, call->exec_path_count);
    call->argv = fix_strings(&r, call->argv, -1);
    call->envp = fix_strings(&r, call->envp, -1);
    call->cwd = fix_string(&r, call->cwd);
    if (r.bad || call->exec_paths == NULL || call->argv == NULL || call->envp == NULL || call->cwd == NULL) return -EINVAL;
    *out = call;
    return 0;
}

// Daemon side. Each prepared sandbox has its own control socket: no lock.
int cs_warm_start(int control, const struct cs_call *call) {
    struct writer w = {NULL, 0, 0, 0};
    int r = flatten_call(call, &w);
    if (r == 0) {
        int fds[4] = {call->stdin_fd, call->stdout_fd, call->stderr_fd, call->report_fd};
        struct request_header header = {.body_size = w.len, .fd_count = 4, .reserved = 0};
        r = send_with_fds(control, &header, sizeof header, fds, 4);
        for (size_t off = 0; r == 0 && off < w.len; off += RECORD_MAX) {
            size_t chunk = w.len - off < RECORD_MAX ? w.len - off : RECORD_MAX;
            r = send_with_fds(control, w.buf + off, chunk, NULL, 0);
        }
    }
    free(w.buf);
    return r;
}

// Moves a received descriptor above stdio, so the command's dup2s onto 0, 1
// and 2 cannot overwrite one another (init closed 0-2 with the daemon's fds).
static int above_stdio(int fd) {
    if (fd >= 3) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return moved;
}

// Child side: the sandbox's init after its last setup step (unprivileged,
// no capabilities, seccomp loaded). A fork of the single-threaded zygote, it
// still allocates nothing from the heap: the command arrives in an mmap.
void cs_warm_wait(const struct cs_spawn_config *c) {
    int control = c->report_fd;
    cs_report_write(control, CS_STEP_READY, 0, 0);
    struct request_header header;
    int fds[4] = {-1, -1, -1, -1};
    int nfds = 4;
    ssize_t n = recv_with_fds(control, &header, sizeof header, fds, &nfds);
    if (n == 0) _exit(0);  // released unused (daemon stopping, pool shrinking)
    // From here failures go where the daemon now reads: the call's report
    // pipe (it stops reading the control socket once it has sent the call).
    struct cs_spawn_config run = *c;
    if (nfds == 4) {
        for (int i = 0; i < 4; i++) fds[i] = above_stdio(fds[i]);
        if (fds[3] >= 0) run.report_fd = fds[3];
    }
    if (n < 0) cs_fail(&run, CS_STEP_RECEIVE, (int)-n, -1);
    if (n != (ssize_t)sizeof header || nfds != 4 || header.fd_count != 4 || header.body_size < sizeof(struct cs_call) ||
        header.body_size > (256u << 20)) {
        cs_fail(&run, CS_STEP_RECEIVE, EPROTO, -1);
    }
    for (int i = 0; i < 4; i++) {
        if (fds[i] < 0) cs_fail(&run, CS_STEP_RECEIVE, EBADF, -1);
    }
    size_t size = header.body_size;
    char *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) cs_fail(&run, CS_STEP_RECEIVE, errno, -1);
    for (size_t off = 0; off < size;) {
        int none = 0;
        ssize_t m = recv_with_fds(control, buf + off, size - off, NULL, &none);
        if (m == 0) cs_fail(&run, CS_STEP_RECEIVE, EPIPE, -1);
        if (m < 0) cs_fail(&run, CS_STEP_RECEIVE, (int)-m, -1);
        off += (size_t)m;
    }
    struct cs_call *call = NULL;
    int r = unflatten_call(buf, size, &call);
    if (r < 0) cs_fail(&run, CS_STEP_RECEIVE, -r, -1);
    close(control);
    // The /dev/null placeholders of the preparation.
    close(c->stdin_fd);
    close(c->stdout_fd);
    close(c->stderr_fd);
    run.stdin_fd = fds[0];
    run.stdout_fd = fds[1];
    run.stderr_fd = fds[2];
    // Unprivileged: a hard limit can only be lowered, never raised.
    if (call->rlimit_fsize != UINT64_MAX) {
        struct rlimit fs = {(rlim_t)call->rlimit_fsize, (rlim_t)call->rlimit_fsize};
        if (setrlimit(RLIMIT_FSIZE, &fs) < 0) cs_fail(&run, CS_STEP_RLIMIT, errno, -1);
    }
    run.exec_paths = call->exec_paths;
    run.exec_path_count = call->exec_path_count;
    run.argv = call->argv;
    run.envp = call->envp;
    run.cwd = call->cwd;
    run.warm = 0;
    cs_init_main(&run);
}

// ---------------------------------------------------------------- zygote side

static _Noreturn void zygote_loop(int sock) {
    // Nothing of the daemon but stdio and the socket.
    close_range(ZYGOTE_FD + 1, ~0U, 0);
    // The kernel reaps every init as it exits (no zombies, no wait loop).
    // Every handler to SIG_DFL once (a runtime constructor that ran before
    // ours may have installed crash handlers), so each clone need reset only
    // the two ignored below.
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) (void)sigaction(sig, &dfl, NULL);
    }
    signal(SIGCHLD, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    cs_zygote_signals_known = 1;
    uint64_t magic = cs_zygote_hello();
    if (send_with_fds(sock, &magic, sizeof magic, NULL, 0) < 0) _exit(1);
    char *buf = NULL;
    size_t cap = 0;
    for (;;) {
        struct request_header header;
        int fds[MAX_FDS];
        int nfds = MAX_FDS;
        ssize_t n = recv_with_fds(sock, &header, sizeof header, fds, &nfds);
        if (n == 0) _exit(0);  // the daemon is gone
        int64_t result = 0;
        if (n != (ssize_t)sizeof header || header.fd_count != nfds || nfds < 4 || header.body_size > (256u << 20)) {
            result = n < 0 ? n : -EPROTO;
        }
        // Read the body even after a bad header, to stay in step.
        size_t size = n == (ssize_t)sizeof header && header.body_size <= (256u << 20) ? header.body_size : 0;
        if (size > cap) {
            char *grown = realloc(buf, size);
            if (grown == NULL) _exit(1);
            buf = grown;
            cap = size;
        }
        for (size_t off = 0; off < size;) {
            int none = 0;
            ssize_t m = recv_with_fds(sock, buf + off, size - off, NULL, &none);
            if (m <= 0) _exit(m == 0 ? 0 : 1);
            off += (size_t)m;
        }
        struct cs_spawn_config *config = NULL;
        int pidfd = -1;
        int placed = 0;
        if (result == 0) result = unflatten(buf, size, &config);
        if (result == 0) {
            config->stdin_fd = fds[0];
            config->stdout_fd = fds[1];
            config->stderr_fd = fds[2];
            config->report_fd = fds[3];
            config->netns_fd = nfds == 5 ? fds[4] : -1;
            config->exit_signal = SIGCHLD;
            result = cs_spawn(config, &pidfd, &placed);
        }
        for (int i = 0; i < nfds; i++) close(fds[i]);
        struct reply reply = {result, placed, 0};
        (void)send_with_fds(sock, &reply, sizeof reply, &pidfd, result > 0 ? 1 : 0);
        if (pidfd >= 0) close(pidfd);
    }
}

__attribute__((constructor)) static void zygote_intercept(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc < 1 || argv == NULL || argv[0] == NULL || strcmp(argv[0], ZYGOTE_ARGV0) != 0) return;
    const char *fd = getenv(ZYGOTE_ENV);
    if (fd == NULL || strcmp(fd, "3") != 0) return;
    zygote_loop(ZYGOTE_FD);
}
