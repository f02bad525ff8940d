#ifndef TOOLD_CSYSTEMD_SHIM_H
#define TOOLD_CSYSTEMD_SHIM_H
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <sys/types.h>

/* SO_PEERCRED's struct ucred, which glibc declares only under _GNU_SOURCE (not visible to Swift's Glibc module). */
struct toold_peer_credentials {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};

/* SO_PEERGROUPS: the peer's supplementary groups at connect time, sorted ascending by the kernel. */
#define TOOLD_PEER_GROUPS_MAX 256
struct toold_peer_groups {
    gid_t gids[TOOLD_PEER_GROUPS_MAX];
};
#endif
