#ifndef TOOLD_CSANDBOX_H
#define TOOLD_CSANDBOX_H
int csandbox_placeholder(void);
#endif
