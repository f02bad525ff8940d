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
#endif
