// ICU regular expressions with a bound on matching time, for patterns that
// run on untrusted text (JSON Schema `pattern` and policy deny patterns
// against a caller's arguments, redaction patterns over sandbox output).
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
/// limit was hit first (the deadline, or ICU's backtracking stack), -2
/// another ICU error (*error says which).
/// `*deadline` is a `cregex_now_ns` time (CLOCK_MONOTONIC), shared by several
/// searches (one call's patterns over all its strings): a search does not
/// start after it, and stops at ICU's next step after it (ICU checks every
/// 10,000 backtracking states, a fraction of a millisecond) — so many
/// searches that each stay short still cannot add up to more. ICU's own
/// per-search time limit cannot do that: it restarts with every search.
int cregex_search(const cregex *re, const uint16_t *text, int32_t length, const int64_t *deadline, int32_t *error);

/// A left-to-right scan for every match in one text, as a replace-all sees
/// them (after an empty match the next search starts one position on),
/// until the deadline.
typedef struct cregex_scan cregex_scan;

/// Starts a scan of `text` (UTF-16, not copied: it must outlive the scan).
/// NULL and *error when ICU fails (out of memory).
cregex_scan *cregex_scan_open(const cregex *re, const uint16_t *text, int32_t length, const int64_t *deadline,
                              int32_t *error);

/// The next match: 1 and [*start, *end) in UTF-16 units, 0 no more, -1 a
/// limit was hit first, -2 another ICU error (*error says which).
int cregex_scan_next(cregex_scan *scan, int32_t *start, int32_t *end, int32_t *error);

void cregex_scan_close(cregex_scan *scan);

void cregex_free(cregex *re);

/// The clock deadlines are on: CLOCK_MONOTONIC, in nanoseconds.
int64_t cregex_now_ns(void);

#endif
