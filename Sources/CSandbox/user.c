// user.c — credentials: from host root to the unprivileged sandbox user.
//
// Assumes: the mount tree is built and entered (mount.c), so nothing left
// needs host privileges. Order inside: host uid/gid first (raw syscalls: the
// glibc wrappers would try to signal the daemon's other threads, which do not
// exist in this copy), then a new user namespace whose only mapping is
// <inside uid> -> <host uid>, then every capability of that namespace dropped.
// The PID, mount, network, UTS, IPC and cgroup namespaces were created by host
// root, so the new user namespace holds no capability over any of them.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

int cs_drop_to_host_user(const struct cs_spawn_config *c, int32_t *step) {
    *step = CS_STEP_SETGROUPS;
    if (syscall(SYS_setgroups, 0, NULL) < 0) return -errno;
    *step = CS_STEP_SETRESGID;
    if (syscall(SYS_setresgid, c->host_gid, c->host_gid, c->host_gid) < 0) return -errno;
    *step = CS_STEP_SETRESUID;
    if (syscall(SYS_setresuid, c->host_uid, c->host_uid, c->host_uid) < 0) return -errno;
    return 0;
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int err = n == (ssize_t)len ? 0 : (n < 0 ? -errno : -EIO);
    close(fd);
    return err;
}

int cs_enter_user_namespace(const struct cs_spawn_config *c, int32_t *step) {
    *step = CS_STEP_UNSHARE_USER;
    if (unshare(CLONE_NEWUSER) < 0) return -errno;
    // The uid change above cleared "dumpable", which makes /proc/self/* owned
    // by host root and the map files unwritable for us; set it for the writes.
    *step = CS_STEP_DUMPABLE;
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) return -errno;
    // An unprivileged writer may map exactly one id: its own euid/egid, and
    // gid_map only after setgroups is denied. /proc is the sandbox's own.
    *step = CS_STEP_UID_MAP;
    int r = write_file("/proc/self/setgroups", "deny");
    if (r == 0) r = write_file("/proc/self/gid_map", c->gid_map);
    if (r == 0) r = write_file("/proc/self/uid_map", c->uid_map);
    if (r < 0) return r;
    // Not dumpable again: the command (same uid) must not open init's
    // /proc/1/mem or ptrace it; exec makes the command dumpable for itself.
    *step = CS_STEP_DUMPABLE;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return -errno;
    return 0;
}

int cs_drop_capabilities(const struct cs_spawn_config *c, int32_t *step) {
    // Lock the uid-0 special cases off before losing CAP_SETPCAP to do so.
    *step = CS_STEP_SECUREBITS;
    unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                         SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                         SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0) return -errno;
    // The bounding set needs CAP_SETPCAP, so it goes before capset.
    *step = CS_STEP_CAPBSET;
    for (int cap = 0; cap <= c->cap_last_cap; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) return -errno;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return -errno;
    *step = CS_STEP_CAPSET;
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) < 0) return -errno;
    return 0;
}

// Runs while still host root, so hard limits can be set to any value and
// the sandbox (without CAP_SYS_RESOURCE in the initial namespace) can only
// lower them.
int cs_set_rlimits(const struct cs_spawn_config *c) {
    struct rlimit core = {0, 0};
    if (setrlimit(RLIMIT_CORE, &core) < 0) return -errno;
    struct rlimit nofile = {c->rlimit_nofile, c->rlimit_nofile};
    if (setrlimit(RLIMIT_NOFILE, &nofile) < 0) return -errno;
    rlim_t fsize = c->rlimit_fsize == UINT64_MAX ? RLIM_INFINITY : (rlim_t)c->rlimit_fsize;
    struct rlimit fs = {fsize, fsize};
    if (setrlimit(RLIMIT_FSIZE, &fs) < 0) return -errno;
    return 0;
}

int cs_cap_last_cap(void) {
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return CAP_LAST_CAP;
    char buf[16];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return CAP_LAST_CAP;
    int v = 0;
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) v = v * 10 + (buf[i] - '0');
    return v > 0 ? v : CAP_LAST_CAP;
}
