// cgroup.c — the child joins the cgroup(s) the parent created for it.
//
// Assumes: the parent created one cgroup per v1 hierarchy (or one on v2) and
// set its limits; the child is still host root in the host cgroup namespace.
// Next: spawn.c unshares the cgroup namespace, so the sandbox sees its own
// cgroup as the root and cannot name the daemon's.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "internal.h"

static int write_zero(const char *path) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    // "0" means "the writing process" in cgroup.procs.
    ssize_t n = write(fd, "0", 1);
    int err = n == 1 ? 0 : (n < 0 ? -errno : -EIO);
    close(fd);
    return err;
}

int cs_cgroup_join(const struct cs_spawn_config *c) {
    for (int i = 0; i < c->cgroup_procs_count; i++) {
        int r = write_zero(c->cgroup_procs[i]);
        if (r < 0) return r;
    }
    return 0;
}
