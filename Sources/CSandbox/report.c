// report.c — the child's only way to talk to the parent: fixed-size
// cs_report records on an O_CLOEXEC pipe. A record is 12 bytes, far below
// PIPE_BUF, so each write is atomic even when init and the command both write.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <unistd.h>

#include "internal.h"

void cs_report_write(int fd, int32_t step, int32_t value, int32_t detail) {
    struct cs_report r = {.step = step, .value = value, .detail = detail};
    ssize_t n;
    do {
        n = write(fd, &r, sizeof r);
    } while (n < 0 && errno == EINTR);
}

void cs_fail(const struct cs_spawn_config *c, int32_t step, int err, int32_t detail) {
    cs_report_write(c->report_fd, step, err < 0 ? -err : err, detail);
    _exit(125);
}

const char *cs_step_name(int32_t step) {
    switch (step) {
    case CS_STEP_NONE: return "none";
    case CS_STEP_SIGNALS: return "sigaction";
    case CS_STEP_SETSID: return "setsid";
    case CS_STEP_PDEATHSIG: return "prctl(PR_SET_PDEATHSIG)";
    case CS_STEP_CLOSE_FDS: return "close_range";
    case CS_STEP_CGROUP: return "cgroup.procs";
    case CS_STEP_UNSHARE_CGROUP: return "unshare(CLONE_NEWCGROUP)";
    case CS_STEP_SETNS_NET: return "setns(CLONE_NEWNET)";
    case CS_STEP_LOOPBACK: return "loopback up";
    case CS_STEP_SETHOSTNAME: return "sethostname";
    case CS_STEP_MOUNT_PRIVATE: return "mount(MS_REC|MS_PRIVATE)";
    case CS_STEP_MOUNT: return "mount";
    case CS_STEP_PIVOT_ROOT: return "pivot_root";
    case CS_STEP_UMOUNT_OLD_ROOT: return "umount2(old root)";
    case CS_STEP_SETGROUPS: return "setgroups";
    case CS_STEP_SETRESGID: return "setresgid";
    case CS_STEP_SETRESUID: return "setresuid";
    case CS_STEP_UNSHARE_USER: return "unshare(CLONE_NEWUSER)";
    case CS_STEP_DUMPABLE: return "prctl(PR_SET_DUMPABLE)";
    case CS_STEP_UID_MAP: return "uid_map";
    case CS_STEP_SECUREBITS: return "prctl(PR_SET_SECUREBITS)";
    case CS_STEP_CAPBSET: return "prctl(PR_CAPBSET_DROP)";
    case CS_STEP_CAPSET: return "capset";
    case CS_STEP_NO_NEW_PRIVS: return "prctl(PR_SET_NO_NEW_PRIVS)";
    case CS_STEP_RLIMIT: return "setrlimit";
    case CS_STEP_SECCOMP: return "seccomp";
    case CS_STEP_FORK: return "fork";
    case CS_STEP_DUP2: return "dup2";
    case CS_STEP_CLOSE_RANGE: return "close_range";
    case CS_STEP_CHDIR: return "chdir";
    case CS_STEP_EXECVE: return "execve";
    case CS_STEP_RECEIVE: return "receive command";
    case CS_STEP_WAIT: return "waitpid";
    case CS_STEP_EXITED: return "exited";
    case CS_STEP_TRACE: return "trace";
    case CS_STEP_READY: return "ready";
    default: return "unknown step";
    }
}
