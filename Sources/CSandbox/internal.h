// internal.h — steps shared between the C files of CSandbox; not exported.
//
// Every function here runs in the sandbox child unless its comment says
// otherwise, so each one is async-signal-safe: raw syscalls only, no malloc,
// no stdio, no locks, results as 0 or -errno.
#ifndef TOOLD_CSANDBOX_INTERNAL_H
#define TOOLD_CSANDBOX_INTERNAL_H

#include "csandbox.h"

#define CS_HIDDEN __attribute__((visibility("hidden")))

// report.c
CS_HIDDEN void cs_report_write(int fd, int32_t step, int32_t value, int32_t detail);
CS_HIDDEN _Noreturn void cs_fail(const struct cs_spawn_config *c, int32_t step, int err, int32_t detail);

// cgroup.c
CS_HIDDEN int cs_cgroup_join(const struct cs_spawn_config *c);

// net.c
CS_HIDDEN int cs_loopback_up(void);

// mount.c
CS_HIDDEN int cs_mount_make_private(void);
CS_HIDDEN int cs_mount_plan(const struct cs_spawn_config *c, int32_t *failed_op);
CS_HIDDEN int cs_pivot_root(const char *new_root);
CS_HIDDEN int cs_detach_old_root(void);

// user.c
CS_HIDDEN int cs_drop_to_host_user(const struct cs_spawn_config *c, int32_t *step);
CS_HIDDEN int cs_enter_user_namespace(const struct cs_spawn_config *c, int32_t *step);
CS_HIDDEN int cs_drop_capabilities(const struct cs_spawn_config *c, int32_t *step);
CS_HIDDEN int cs_set_rlimits(const struct cs_spawn_config *c);

// seccomp.c
CS_HIDDEN int cs_seccomp_load(const void *prog);

// init.c
CS_HIDDEN _Noreturn void cs_init_main(const struct cs_spawn_config *c);
CS_HIDDEN _Noreturn void cs_warm_wait(const struct cs_spawn_config *c);
/// Non-zero in the zygote: every handler is SIG_DFL but SIGCHLD's and SIGPIPE's.
CS_HIDDEN extern int cs_zygote_signals_known;

#endif
