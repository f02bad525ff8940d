// toold-sandbox-zygote: the process that clones toold's sandboxes (see
// Sources/CSandbox/zygote.c). A separate, small C executable so that each
// clone copies a few pages of page tables rather than the daemon's image.
// The daemon starts it with argv[0] "toold-sandbox-zygote" and the socket on
// fd 3; a constructor in zygote.c takes over before main runs. Reaching main
// means it was started some other way.
#include <stdio.h>

int main(void) {
    fputs("toold-sandbox-zygote: started by toold only (socket on fd 3, TOOLD_SANDBOX_ZYGOTE_FD=3)\n", stderr);
    return 2;
}
