// net.c — network namespaces: bringing `lo` up (in the child, when it got a
// fresh namespace from CLONE_NEWNET) and creating pooled namespaces ahead of
// demand (in the parent, on a short-lived helper thread).
//
// A pooled namespace is used by exactly one sandbox, then closed: sharing one
// would let sandboxes reach each other over loopback and abstract sockets.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

// Async-signal-safe: used by the child too.
int cs_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_name[0] = 'l';
    ifr.ifr_name[1] = 'o';
    int r = 0;
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
        r = -errno;
    } else {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) r = -errno;
    }
    close(s);
    return r;
}

// Runs on its own thread: the namespace switch never touches a thread the
// caller (or Swift's runtime) owns, even if switching back were to fail.
static void *netns_thread(void *arg) {
    int *result = arg;
    int original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (original < 0) {
        *result = -errno;
        return NULL;
    }
    if (unshare(CLONE_NEWNET) < 0) {
        *result = -errno;
        close(original);
        return NULL;
    }
    int r = cs_loopback_up();
    if (r == 0) {
        r = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (r < 0) r = -errno;
    }
    // Best effort: the thread ends right after, taking its namespace with it.
    (void)setns(original, CLONE_NEWNET);
    close(original);
    *result = r;
    return NULL;
}

int cs_netns_create(void) {
    int result = -EIO;
    pthread_t thread;
    int e = pthread_create(&thread, NULL, netns_thread, &result);
    if (e != 0) return -e;
    pthread_join(thread, NULL);
    return result;
}
