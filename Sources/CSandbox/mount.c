// mount.c — the sandbox's private mount tree.
//
// Assumes: the child is host root in a new mount namespace (CLONE_NEWNS) and
// PID 1 of a new PID namespace (so a fresh proc shows only the sandbox).
// The plan itself (which paths, which flags, in which order) is built by the
// parent (Sources/Sandbox/MountPlan.swift); this file only executes it.
// Next: user.c drops to the sandbox user, so the tree — owned by the initial
// user namespace — can no longer be changed from inside.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

// Nothing we mount may propagate back to the host, and nothing the host
// mounts later may appear in the sandbox.
int cs_mount_make_private(void) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) return -errno;
    return 0;
}

static int create_target(const struct cs_mount_op *op) {
    if (op->create == CS_CREATE_DIR) {
        if (mkdir(op->target, 0755) < 0 && errno != EEXIST) return -errno;
    } else if (op->create == CS_CREATE_FILE) {
        int fd = open(op->target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
        if (fd < 0 && errno != EEXIST) return -errno;
        if (fd >= 0) close(fd);
    }
    return 0;
}

static int bind(const struct cs_mount_op *op) {
    int r = create_target(op);
    if (r < 0) return r;
    if (mount(op->source, op->target, NULL, MS_BIND | (op->flags & MS_REC), NULL) < 0) return -errno;
    unsigned long flags = (unsigned long)(op->flags & ~(uint64_t)MS_REC);
    // A bind inherits the source's per-mount flags; the remount sets exactly
    // ours (ro, nosuid, nodev, noexec as the plan says).
    if (flags != 0 && mount(NULL, op->target, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0) return -errno;
    return 0;
}

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

struct cs_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

// A recursive bind whose submounts are all made read-only too: MS_REMOUNT
// would only change the top mount and leave the host's submounts writable.
static int rbind(const struct cs_mount_op *op) {
    int r = create_target(op);
    if (r < 0) return r;
    if (mount(op->source, op->target, NULL, MS_BIND | MS_REC, NULL) < 0) return -errno;
    struct cs_mount_attr attr = {0, 0, 0, 0};
    if (op->flags & MS_RDONLY) attr.attr_set |= MOUNT_ATTR_RDONLY;
    if (op->flags & MS_NOSUID) attr.attr_set |= MOUNT_ATTR_NOSUID;
    if (op->flags & MS_NODEV) attr.attr_set |= MOUNT_ATTR_NODEV;
    if (op->flags & MS_NOEXEC) attr.attr_set |= MOUNT_ATTR_NOEXEC;
    if (syscall(SYS_mount_setattr, AT_FDCWD, op->target, AT_RECURSIVE, &attr, sizeof attr) < 0) return -errno;
    return 0;
}

static int run_op(const struct cs_mount_op *op) {
    switch (op->kind) {
    case CS_MOUNT_TMPFS:
        if (mount("tmpfs", op->target, "tmpfs", (unsigned long)op->flags, op->data) < 0) return -errno;
        return 0;
    case CS_MOUNT_PROC:
        if (mount("proc", op->target, "proc", (unsigned long)op->flags, NULL) < 0) return -errno;
        return 0;
    case CS_MOUNT_BIND:
        return bind(op);
    case CS_MOUNT_REMOUNT:
        if (mount(NULL, op->target, NULL, MS_REMOUNT | MS_BIND | (unsigned long)op->flags, NULL) < 0) return -errno;
        return 0;
    case CS_MOUNT_MKDIR:
        if (mkdir(op->target, (mode_t)op->mode) < 0 && errno != EEXIST) return -errno;
        return 0;
    case CS_MOUNT_RBIND:
        return rbind(op);
    case CS_MOUNT_SYMLINK:
        if (symlink(op->source, op->target) < 0) return -errno;
        return 0;
    case CS_MOUNT_MKNOD:
        if (mknod(op->target, S_IFCHR | (mode_t)(op->mode & 07777), (dev_t)op->flags) < 0) return -errno;
        if (chmod(op->target, (mode_t)(op->mode & 07777)) < 0) return -errno;
        return 0;
    default:
        return -EINVAL;
    }
}

int cs_mount_plan(const struct cs_spawn_config *c, int32_t *failed_op) {
    for (int i = 0; i < c->mount_count; i++) {
        int r = run_op(&c->mounts[i]);
        if (r < 0) {
            *failed_op = i;
            return r;
        }
    }
    return 0;
}

// pivot_root(".", ".") stacks the old root on top of the new one at "/";
// cs_detach_old_root then lazily unmounts it, so no host path stays
// reachable, not even through a held directory fd (we hold none).
int cs_pivot_root(const char *new_root) {
    if (chdir(new_root) < 0) return -errno;
    if (syscall(SYS_pivot_root, ".", ".") < 0) return -errno;
    return 0;
}

int cs_detach_old_root(void) {
    if (umount2(".", MNT_DETACH) < 0) return -errno;
    if (chdir("/") < 0) return -errno;
    return 0;
}
