// ICU regular expressions with a bound on matching time, for patterns that
// run on untrusted text (JSON Schema `pattern` against a caller's arguments).
// Foundation's NSRegularExpression runs ICU without a limit, and a pattern
// as plain as ^(a+)+$ backtracks exponentially: 40 characters would hold a
// thread for days. ICU's own time limit (uregex_setTimeLimit) stops it.
#ifndef CREGEX_H
#define CREGEX_H

#include <stdint.h>

/// A compiled pattern, immutable and safe to match from several threads.
typedef struct cregex cregex;

/// Compiles a UTF-16 pattern (ICU syntax, no flags). NULL and *error (an
/// ICU UErrorCode, > 0) when it does not compile or memory runs out.
cregex *cregex_compile(const uint16_t *pattern, int32_t length, int32_t *error);

/// Searches `text` (UTF-16) for a match anywhere: 1 found, 0 none, -1 a
/// limit was hit first (the time limit, or ICU's backtracking stack), -2
/// another ICU error (*error says which).
/// `time_limit` is in ICU's match-engine steps (each a few thousand
/// operations, on the order of a millisecond), > 0.
int cregex_search(const cregex *re, const uint16_t *text, int32_t length, int32_t time_limit, int32_t *error);

void cregex_free(cregex *re);

#endif
