// See cregex.h. ICU comes from the Swift toolchain's Foundation
// (lib_FoundationICU), which exports the C API with a `swift_` prefix. A
// compiled URegularExpression must not be matched from two threads at once,
// so each search works on a clone (cheap: the compiled pattern is shared).
#include "cregex.h"

#include <stdlib.h>
#include <time.h>

typedef struct URegularExpression URegularExpression;
typedef int32_t UErrorCode;  // the C enum: 0 success, > 0 failure
#define U_REGEX_STACK_OVERFLOW 0x10311
#define U_REGEX_TIME_OUT 0x10312
#define U_REGEX_STOPPED_BY_CALLER 0x10313
#define U_FAILURE(e) ((e) > 0)

extern URegularExpression *swift_uregex_open(const uint16_t *pattern, int32_t length, uint32_t flags, void *parse_error,
                                            UErrorCode *status);
extern URegularExpression *swift_uregex_clone(const URegularExpression *re, UErrorCode *status);
extern void swift_uregex_close(URegularExpression *re);
extern void swift_uregex_setText(URegularExpression *re, const uint16_t *text, int32_t length, UErrorCode *status);
typedef int8_t URegexMatchCallback(const void *context, int32_t steps);
extern void swift_uregex_setMatchCallback(URegularExpression *re, URegexMatchCallback *callback, const void *context,
                                          UErrorCode *status);
typedef int8_t URegexFindProgressCallback(const void *context, int64_t match_index);
extern void swift_uregex_setFindProgressCallback(URegularExpression *re, URegexFindProgressCallback *callback,
                                                 const void *context, UErrorCode *status);
extern int8_t swift_uregex_find(URegularExpression *re, int32_t start, UErrorCode *status);
extern int8_t swift_uregex_findNext(URegularExpression *re, UErrorCode *status);
extern int32_t swift_uregex_start(URegularExpression *re, int32_t group, UErrorCode *status);
extern int32_t swift_uregex_end(URegularExpression *re, int32_t group, UErrorCode *status);

struct cregex {
    URegularExpression *compiled;
};

cregex *cregex_compile(const uint16_t *pattern, int32_t length, int32_t *error) {
    UErrorCode status = 0;
    URegularExpression *compiled = swift_uregex_open(pattern, length, 0, NULL, &status);
    if (compiled == NULL || U_FAILURE(status)) {
        if (compiled != NULL) swift_uregex_close(compiled);
        *error = status > 0 ? status : 7;  // U_MEMORY_ALLOCATION_ERROR
        return NULL;
    }
    cregex *re = malloc(sizeof *re);
    if (re == NULL) {
        swift_uregex_close(compiled);
        *error = 7;
        return NULL;
    }
    re->compiled = compiled;
    *error = 0;
    return re;
}

int64_t cregex_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

// What a matcher's callbacks watch: the deadline, and whether they stopped
// the match for it.
struct watch {
    const int64_t *deadline;
    int stopped;
    uint32_t attempts;
};

// ICU calls this every 10,000 backtracking states it saves: false stops the
// match with U_REGEX_STOPPED_BY_CALLER once the deadline passed.
static int8_t states_saved(const void *context, int32_t steps) {
    (void)steps;
    struct watch *w = (struct watch *)context;
    if (cregex_now_ns() < *w->deadline) return 1;
    w->stopped = 1;
    return 0;
}

// ICU calls this before each start position a find tries. Work that saves
// no states (an atomic group, (?>[a-z]*)@, is quadratic without one) never
// reaches states_saved; each attempt reaches this. The clock is read every
// 32 attempts: most attempts are far shorter than reading it (every attempt
// tripled the cost of redacting ordinary output), and a runaway one
// overshoots the deadline by 32 attempts at most. False ends the find as if
// nothing matched, so `stopped` is what tells the caller it gave up.
static int8_t find_progress(const void *context, int64_t index) {
    (void)index;
    struct watch *w = (struct watch *)context;
    if (++w->attempts % 32 != 0) return 1;
    return states_saved(context, 0);
}

// A clone of the compiled pattern with the deadline and the text.
static URegularExpression *matcher(const cregex *re, const uint16_t *text, int32_t length, struct watch *watch,
                                   int32_t *error) {
    UErrorCode status = 0;
    const int64_t *deadline = watch->deadline;
    if (cregex_now_ns() >= *deadline) {
        // Checked here too: a search shorter than one step never calls back.
        *error = U_REGEX_STOPPED_BY_CALLER;
        return NULL;
    }
    URegularExpression *m = swift_uregex_clone(re->compiled, &status);
    if (m == NULL || U_FAILURE(status)) {
        if (m != NULL) swift_uregex_close(m);
        *error = status > 0 ? status : 7;
        return NULL;
    }
    swift_uregex_setMatchCallback(m, states_saved, watch, &status);
    if (!U_FAILURE(status)) swift_uregex_setFindProgressCallback(m, find_progress, watch, &status);
    // The text is not copied: it must outlive the matcher (it does: the caller's buffer).
    if (!U_FAILURE(status)) swift_uregex_setText(m, text, length, &status);
    if (U_FAILURE(status)) {
        swift_uregex_close(m);
        *error = status;
        return NULL;
    }
    *error = 0;
    return m;
}

static int outcome(UErrorCode status, int8_t found, int32_t *error) {
    *error = status > 0 ? status : 0;
    if (status == U_REGEX_TIME_OUT || status == U_REGEX_STACK_OVERFLOW || status == U_REGEX_STOPPED_BY_CALLER) return -1;
    if (U_FAILURE(status)) return -2;
    return found ? 1 : 0;
}

int cregex_search(const cregex *re, const uint16_t *text, int32_t length, const int64_t *deadline, int32_t *error) {
    struct watch watch = {deadline, 0, 0};
    URegularExpression *m = matcher(re, text, length, &watch, error);
    if (m == NULL) return *error == U_REGEX_STOPPED_BY_CALLER ? -1 : -2;
    UErrorCode status = 0;
    int8_t found = swift_uregex_find(m, 0, &status);
    swift_uregex_close(m);
    if (watch.stopped && status == 0) status = U_REGEX_STOPPED_BY_CALLER;
    return outcome(status, found, error);
}

struct cregex_scan {
    URegularExpression *matcher;
    struct watch watch;  // the callbacks' context: lives as long as the matcher
};

cregex_scan *cregex_scan_open(const cregex *re, const uint16_t *text, int32_t length, const int64_t *deadline,
                              int32_t *error) {
    cregex_scan *scan = malloc(sizeof *scan);
    if (scan == NULL) {
        *error = 7;
        return NULL;
    }
    scan->watch.deadline = deadline;
    scan->watch.stopped = 0;
    scan->watch.attempts = 0;
    scan->matcher = matcher(re, text, length, &scan->watch, error);
    if (scan->matcher == NULL) {
        free(scan);
        return NULL;
    }
    return scan;
}

int cregex_scan_next(cregex_scan *scan, int32_t *start, int32_t *end, int32_t *error) {
    UErrorCode status = 0;
    // findNext: on from the previous match (an empty one steps one position on).
    int8_t found = swift_uregex_findNext(scan->matcher, &status);
    if (scan->watch.stopped && status == 0) status = U_REGEX_STOPPED_BY_CALLER;
    if (found && !U_FAILURE(status)) {
        *start = swift_uregex_start(scan->matcher, 0, &status);
        *end = swift_uregex_end(scan->matcher, 0, &status);
    }
    return outcome(status, found, error);
}

void cregex_scan_close(cregex_scan *scan) {
    if (scan == NULL) return;
    swift_uregex_close(scan->matcher);
    free(scan);
}

void cregex_free(cregex *re) {
    if (re == NULL) return;
    swift_uregex_close(re->compiled);
    free(re);
}
