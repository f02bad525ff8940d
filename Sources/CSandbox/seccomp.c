// seccomp.c — the syscall filter.
//
// cs_seccomp_compile runs ONCE in the parent at runtime start (libseccomp,
// malloc allowed there) and exports the BPF program into memory.
// cs_seccomp_load runs in the child as the last setup step before init forks
// the command: only prctl, no allocation. Everything after it (fork, setsid,
// dup2, close_range, chdir, execve, the init loop) must be allowed, and is.
//
// Policy: default ALLOW, EPERM for what Docker's default profile denies, so
// programs degrade the way they do in containers. Only the native ABI is in
// the filter: i386 (int 0x80) and x32 (syscall nr | 0x40000000) calls hit
// the "bad arch" action, KILL_PROCESS — no per-ABI rule can be forgotten.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "internal.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

#define EPERM_ACTION SCMP_ACT_ERRNO(EPERM)

// Syscalls denied whatever their arguments. Numbers for calls newer than the
// libseccomp in use are resolved by name at compile time; unknown names are
// skipped (the kernel may not have them either) — see raw_denied below.
static const char *const denied_names[] = {
    // mount family, old and new API
    "mount", "umount", "umount2", "pivot_root", "chroot",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    // namespaces
    "unshare", "setns",
    // other processes' memory and descriptors
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
    // kernel code and state
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "create_module", "get_kernel_syms", "query_module",
    "bpf", "perf_event_open", "lookup_dcookie", "iopl", "ioperm", "vm86", "vm86old",
    "_sysctl", "sysfs", "ustat", "uselib", "nfsservctl",
    // kernel keyring
    "keyctl", "add_key", "request_key",
    // attack surface with a history
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "open_by_handle_at", "name_to_handle_at", "fanotify_init",
    // file activity of others: /usr and /etc are the same inodes in every
    // sandbox and on the host, so a watch there reports which programs the
    // host and the other sandboxes run, live; its quotas are per host uid,
    // shared by all sandboxes. Programs fall back to polling (tail -f).
    "inotify_init", "inotify_init1", "inotify_add_watch",
    // host-wide state
    "swapon", "swapoff", "reboot", "acct", "quotactl", "quotactl_fd",
    "settimeofday", "stime", "clock_settime", "clock_adjtime", "adjtimex", "syslog",
    "sethostname", "setdomainname", "vhangup",
};

// x86_64 numbers of calls libseccomp 2.5 does not know by name.
static const int raw_denied[] = {
    467, // open_tree_attr (Linux 6.15)
};

struct arg_rule {
    const char *name;
    unsigned arg;
    enum scmp_compare op;
    scmp_datum_t a;
    scmp_datum_t b;
};

static int deny(scmp_filter_ctx ctx, const char *name) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return 0;
    int r = seccomp_rule_add(ctx, EPERM_ACTION, nr, 0);
    // Pseudo-syscalls that do not exist on this ABI are fine to skip.
    return r == -EDOM || r == -EFAULT ? 0 : r;
}

static int deny_arg(scmp_filter_ctx ctx, const char *name, unsigned arg, enum scmp_compare op,
                    scmp_datum_t a, scmp_datum_t b) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return 0;
    struct scmp_arg_cmp cmp = {.arg = arg, .op = op, .datum_a = a, .datum_b = b};
    return seccomp_rule_add_array(ctx, EPERM_ACTION, nr, 1, &cmp);
}

// personality: allow only PER_LINUX (0), PER_LINUX32 (8), UNAME26 (0x20000),
// their combination, and the query 0xffffffff — as Docker does. libseccomp
// allows one comparison per argument per rule, so the complement is built
// from single masked comparisons: bit 31 tells the query apart from the rest.
static int add_personality(scmp_filter_ctx ctx) {
    const scmp_datum_t allowed_bits = 0x20008;
    const scmp_datum_t bit31 = 0x80000000ULL;
    int r = deny_arg(ctx, "personality", 0, SCMP_CMP_GT, 0xffffffffULL, 0);
    for (int b = 0; r == 0 && b < 31; b++) {
        scmp_datum_t bit = 1ULL << b;
        // Bit 31 clear and a bit outside the allowed ones set.
        if ((bit & allowed_bits) == 0) r = deny_arg(ctx, "personality", 0, SCMP_CMP_MASKED_EQ, bit | bit31, bit);
        // Bit 31 set but not all ones: anything but the query.
        if (r == 0) r = deny_arg(ctx, "personality", 0, SCMP_CMP_MASKED_EQ, bit | bit31, bit31);
    }
    return r;
}

static int add_rules(scmp_filter_ctx ctx) {
    int r = 0;
    for (size_t i = 0; r == 0 && i < sizeof denied_names / sizeof denied_names[0]; i++) r = deny(ctx, denied_names[i]);
    for (size_t i = 0; r == 0 && i < sizeof raw_denied / sizeof raw_denied[0]; i++)
        r = seccomp_rule_add(ctx, EPERM_ACTION, raw_denied[i], 0);
    if (r < 0) return r;

    // clone with any namespace flag. clone3 passes flags in memory seccomp
    // cannot read: ENOSYS makes glibc fall back to clone, which we can check.
    static const scmp_datum_t ns_flags[] = {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                                            CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWTIME};
    for (size_t i = 0; r == 0 && i < sizeof ns_flags / sizeof ns_flags[0]; i++)
        r = deny_arg(ctx, "clone", 0, SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]);
    if (r == 0) r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);

    // Faking terminal input and the Linux console ioctls; compared on the low
    // 32 bits because the kernel ignores the upper half of the request.
    if (r == 0) r = deny_arg(ctx, "ioctl", 1, SCMP_CMP_MASKED_EQ, 0xffffffffULL, TIOCSTI);
    if (r == 0) r = deny_arg(ctx, "ioctl", 1, SCMP_CMP_MASKED_EQ, 0xffffffffULL, TIOCLINUX);

    // socket(): only AF_UNIX (1), AF_INET (2), AF_INET6 (10). Any value with
    // upper bits set is >= 11 and denied too.
    static const scmp_datum_t bad_low_families[] = {0, 3, 4, 5, 6, 7, 8, 9};
    for (size_t i = 0; r == 0 && i < sizeof bad_low_families / sizeof bad_low_families[0]; i++)
        r = deny_arg(ctx, "socket", 0, SCMP_CMP_EQ, bad_low_families[i], 0);
    if (r == 0) r = deny_arg(ctx, "socket", 0, SCMP_CMP_GE, 11, 0);

    // Device nodes (FIFOs and sockets stay allowed).
    if (r == 0) r = deny_arg(ctx, "mknod", 1, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFBLK);
    if (r == 0) r = deny_arg(ctx, "mknod", 1, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFCHR);
    if (r == 0) r = deny_arg(ctx, "mknodat", 2, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFBLK);
    if (r == 0) r = deny_arg(ctx, "mknodat", 2, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFCHR);

    if (r == 0) r = add_personality(ctx);
    return r;
}

int cs_seccomp_compile(void **prog_out) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL) return -ENOMEM;
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (r == 0) r = add_rules(ctx);
    int fd = -1;
    if (r == 0) {
        fd = memfd_create("toold-seccomp", MFD_CLOEXEC);
        if (fd < 0) r = -errno;
    }
    if (r == 0) r = seccomp_export_bpf(ctx, fd);
    seccomp_release(ctx);
    struct stat st;
    if (r == 0 && fstat(fd, &st) < 0) r = -errno;
    if (r == 0 && (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) != 0)) r = -EINVAL;
    struct sock_fprog *prog = NULL;
    if (r == 0) {
        prog = calloc(1, sizeof *prog);
        void *insns = malloc((size_t)st.st_size);
        if (prog == NULL || insns == NULL) {
            free(prog);
            free(insns);
            prog = NULL;
            r = -ENOMEM;
        } else {
            prog->filter = insns;
            prog->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
            ssize_t n = pread(fd, insns, (size_t)st.st_size, 0);
            if (n != st.st_size) {
                r = n < 0 ? -errno : -EIO;
                cs_seccomp_free(prog);
                prog = NULL;
            }
        }
    }
    if (fd >= 0) close(fd);
    *prog_out = prog;
    return r;
}

void cs_seccomp_free(void *prog) {
    struct sock_fprog *p = prog;
    if (p == NULL) return;
    free(p->filter);
    free(p);
}

int cs_seccomp_length(const void *prog) {
    const struct sock_fprog *p = prog;
    return p == NULL ? 0 : p->len;
}

// Child side. Requires no_new_privs (set just before).
int cs_seccomp_load(const void *prog) {
    if (prog == NULL) return 0;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0) < 0) return -errno;
    return 0;
}
