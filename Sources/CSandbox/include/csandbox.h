// csandbox.h — the C side of a toold sandbox.
//
// The parent (the multi-threaded daemon) prepares everything a sandbox needs
// as plain data: paths, argv, envp, a mount plan, a compiled seccomp program.
// cs_spawn() then clone()s a child that runs only async-signal-safe C: it
// becomes PID 1 of a new PID namespace, builds the mount tree, drops to the
// sandbox user inside a new user namespace, loads seccomp, and forks the
// command. Failures travel back over an O_CLOEXEC pipe as a fixed cs_report.
#ifndef TOOLD_CSANDBOX_H
#define TOOLD_CSANDBOX_H

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One setup step of the child, in the order spawn.c runs them. The numeric
/// values travel over the report pipe; cs_step_name() gives the syscall-like
/// name used in messages ("execve", "pivot_root", ...).
enum cs_step {
    CS_STEP_NONE = 0,
    CS_STEP_SIGNALS,
    CS_STEP_SETSID,
    CS_STEP_PDEATHSIG,
    CS_STEP_CLOSE_FDS,
    CS_STEP_CGROUP,
    CS_STEP_UNSHARE_CGROUP,
    CS_STEP_SETNS_NET,
    CS_STEP_LOOPBACK,
    CS_STEP_SETHOSTNAME,
    CS_STEP_MOUNT_PRIVATE,
    CS_STEP_MOUNT,
    CS_STEP_PIVOT_ROOT,
    CS_STEP_UMOUNT_OLD_ROOT,
    CS_STEP_SETGROUPS,
    CS_STEP_SETRESGID,
    CS_STEP_SETRESUID,
    CS_STEP_UNSHARE_USER,
    CS_STEP_DUMPABLE,
    CS_STEP_UID_MAP,
    CS_STEP_SECUREBITS,
    CS_STEP_CAPBSET,
    CS_STEP_CAPSET,
    CS_STEP_NO_NEW_PRIVS,
    CS_STEP_RLIMIT,
    CS_STEP_SECCOMP,
    CS_STEP_FORK,
    CS_STEP_DUP2,
    CS_STEP_CLOSE_RANGE,
    CS_STEP_CHDIR,
    CS_STEP_EXECVE,
    CS_STEP_WAIT,
    /// A prepared sandbox could not receive its command (see cs_warm_start).
    CS_STEP_RECEIVE,
    /// Not a failure: the command ended; value is its wait status.
    CS_STEP_EXITED = 1000,
    /// Not a failure: with trace_steps, one per step, detail = step, value =
    /// microseconds since clone when the step finished.
    CS_STEP_TRACE = 1001,
    /// Not a failure: a prepared ("warm") sandbox finished every setup step
    /// and waits for its command on the control socket.
    CS_STEP_READY = 1002,
};

enum {
    CS_SCRATCH_TMP_FULL = 1,
    CS_SCRATCH_WORKSPACE_FULL = 2,
};

/// Returns the name of a step as it appears in failure messages.
const char *cs_step_name(int32_t step);

/// What the child writes to the report pipe. A failure carries the step, the
/// errno and, for CS_STEP_MOUNT, the index of the failing mount operation.
/// On success init writes {CS_STEP_EXITED, wait status, scratch} once, where
/// scratch has CS_SCRATCH_TMP_FULL and CS_SCRATCH_WORKSPACE_FULL set for each
/// size-limited tmpfs that was full (no free block or inode) when the command
/// ended — a write there saw ENOSPC, or the last one filled it exactly.
struct cs_report {
    int32_t step;
    int32_t value;
    int32_t detail;
};

/// One operation of the mount plan, executed in order by the child while it
/// is still host root in its private mount namespace, before pivot_root.
/// All paths are host paths (targets lie under the new root mount point).
enum cs_mount_kind {
    CS_MOUNT_TMPFS = 1,   // mount tmpfs at target with flags and data
    CS_MOUNT_PROC,        // mount a fresh proc at target with flags
    CS_MOUNT_BIND,        // bind source to target, then remount with flags
    CS_MOUNT_REMOUNT,     // remount the bind at target with flags
    CS_MOUNT_MKDIR,       // mkdir target mode (existing is fine)
    CS_MOUNT_SYMLINK,     // symlink target -> source
    CS_MOUNT_RBIND,       // bind source and every submount to target, then
                          // mount_setattr(AT_RECURSIVE) with flags (MS_RDONLY,
                          // MS_NOSUID, MS_NODEV, MS_NOEXEC) on the whole tree
    CS_MOUNT_MKNOD,       // mknod a character device at target: flags = its
                          // dev_t, mode = its permissions (set exactly,
                          // whatever the umask)
};

/// For CS_MOUNT_BIND: what to create at target before binding.
enum cs_mount_create { CS_CREATE_NONE = 0, CS_CREATE_DIR = 1, CS_CREATE_FILE = 2 };

struct cs_mount_op {
    int32_t kind;
    int32_t create;
    uint64_t flags;       // MS_* flags; for BIND the flags of the remount
    uint32_t mode;
    const char *source;
    const char *target;
    const char *data;
};

/// Everything the child needs, prepared by the parent. Pointers must stay
/// valid until cs_spawn returns (the child works on its own copy).
struct cs_spawn_config {
    /// Pipe ends for the command (>= 3), and the write end of the report pipe.
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    int report_fd;
    /// A prepared network namespace to join, or -1.
    int netns_fd;
    /// 1: new empty network namespace (CLONE_NEWNET) when netns_fd is -1;
    /// 0: stay in the host's network namespace.
    int new_netns;

    /// cgroup.procs files to write "0" into (one per v1 hierarchy, one on v2).
    const char *const *cgroup_procs;
    int cgroup_procs_count;
    /// cgroup v2: the sandbox's cgroup directory, or NULL. When set, the
    /// clone places the child there itself (clone3 CLONE_INTO_CGROUP: no
    /// migration, which on a busy machine waits for an RCU grace period and
    /// holds up every fork meanwhile); cgroup_procs is the fallback for
    /// kernels without it.
    const char *cgroup_dir;

    const char *hostname;
    /// Empty host directory on which the root tmpfs is mounted (first op).
    const char *root_dir;
    const struct cs_mount_op *mounts;
    int mount_count;

    uint32_t host_uid;
    uint32_t host_gid;
    /// Contents written to /proc/self/uid_map and gid_map inside the new user
    /// namespace, e.g. "1000 996 1\n".
    const char *uid_map;
    const char *gid_map;
    int cap_last_cap;

    uint64_t rlimit_nofile;
    uint64_t rlimit_fsize;   // UINT64_MAX: unlimited

    /// Compiled seccomp program (struct sock_fprog *), or NULL for none.
    const void *seccomp_prog;

    /// Absolute candidates for argv[0], tried in order (PATH lookup done by
    /// the parent); ENOENT/ENOTDIR/EACCES move on to the next one.
    const char *const *exec_paths;
    int exec_path_count;
    char *const *argv;
    char *const *envp;
    const char *cwd;
    /// Non-zero: report a CS_STEP_TRACE record after every setup step.
    int trace_steps;
    /// Signal the parent gets when init exits: 0 in the daemon (nothing
    /// else there can reap it by accident), SIGCHLD in the zygote (which
    /// ignores SIGCHLD, so the kernel reaps init by itself).
    int exit_signal;
    /// Non-zero: prepare a sandbox ahead of demand. report_fd is then one end
    /// of a SOCK_SEQPACKET socketpair (the control socket): after the last
    /// setup step (seccomp) init writes {CS_STEP_READY} to it and waits for
    /// its command there (cs_warm_start), still as the unprivileged, filtered
    /// PID 1 of its namespaces. argv, envp, cwd and exec_paths are not used;
    /// rlimit_fsize is the ceiling the command's limit is lowered from.
    int warm;
};

/// The per-command part of a prepared sandbox's work: what cs_warm_start
/// sends over the control socket. Descriptors as in cs_spawn_config.
struct cs_call {
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    int report_fd;
    uint64_t rlimit_fsize;   // UINT64_MAX: the prepared ceiling
    const char *const *exec_paths;
    int exec_path_count;
    char *const *argv;
    char *const *envp;
    const char *cwd;
};

/// Hands a command to a prepared sandbox (see cs_spawn_config.warm): sends
/// the four descriptors and the flattened call over `control`. Returns 0 or
/// -errno (-EPIPE: the sandbox is gone). The caller then closes `control`;
/// from here the sandbox behaves as one started by cs_spawn.
int cs_warm_start(int control, const struct cs_call *call);

/// Clones the sandbox init. Returns its host pid (>0) and stores an O_CLOEXEC
/// pidfd in *pidfd, or returns -errno. The child never returns here.
/// The child's exit signal is 0: reap it with waitid(P_PIDFD, ..., __WALL).
/// *placed (if not NULL) is 1 when clone3 put init in cgroup_dir itself.
pid_t cs_spawn(const struct cs_spawn_config *config, int *pidfd, int *placed);

/// The zygote: a small single-threaded process (the toold-sandbox-zygote
/// executable at `path`, or with NULL this executable re-executed; either
/// way intercepted by a constructor before main) that clones sandboxes on
/// request, so the daemon never copies its own address space per execution.
/// Starts it; returns 0 and the socket, or -errno.
int cs_zygote_start(const char *path, int *sock_out, pid_t *pid_out);
/// Asks the zygote to clone a sandbox for `config` (thread-safe). Returns
/// init's pid and an O_CLOEXEC pidfd in *pidfd, or -errno. The sandbox init
/// is the zygote's child: poll the pidfd for its exit, do not waitid it.
/// A zygote found gone with the request unread (-EPIPE on send, -ECONNRESET:
/// it exited with data left in its socket) never had it: the spawn may be
/// retried elsewhere. One that read the whole request and then went (end of
/// file instead of a reply) returns -EOWNERDEAD: it may have cloned the
/// sandbox, which shares this request's fds and cgroup, so a retry could run
/// the command twice.
pid_t cs_zygote_spawn(int sock, const struct cs_spawn_config *config, int *pidfd, int *placed);
/// The hello this build's zygote sends first (tests stand in for a zygote with it).
uint64_t cs_zygote_hello(void);

/// Creates a fresh network namespace with `lo` up, on a short-lived helper
/// thread (so no thread of the caller ever changes namespace). Returns an
/// O_CLOEXEC fd for it or -errno.
int cs_netns_create(void);

/// Compiles the seccomp filter (libseccomp, native ABI only; non-native ABIs
/// kill the process) into a heap-allocated struct sock_fprog. Returns 0 or
/// -errno. Call once at runtime start; free with cs_seccomp_free.
int cs_seccomp_compile(void **prog_out);
void cs_seccomp_free(void *prog);
/// Number of BPF instructions in a compiled program.
int cs_seccomp_length(const void *prog);

/// Thin wrappers the Swift side needs without importing kernel headers.
int cs_pidfd_send_signal(int pidfd, int sig);
/// pidfd_open(pid, 0) with O_CLOEXEC semantics (pidfds always are); returns
/// the fd or -errno.
int cs_pidfd_open(pid_t pid);
/// waitid(P_PIDFD, pidfd, WEXITED|__WALL[|WNOHANG]); returns 0 and the wait
/// status in *status, 1 if nohang and not yet exited, or -errno.
int cs_pidfd_wait(int pidfd, int nohang, int *status);
int cs_cap_last_cap(void);
/// pipe2(fds, O_CLOEXEC); 0 or -1 with errno.
int cs_pipe_cloexec(int fds[2]);
/// eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK); fd or -1 with errno.
int cs_eventfd(void);
/// socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC); 0 or -1 with errno.
int cs_seqpacket_pair(int fds[2]);

#ifdef __cplusplus
}
#endif
#endif
