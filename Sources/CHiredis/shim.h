#ifndef CACHE_PROXY_CHIREDIS_SHIM_H
#define CACHE_PROXY_CHIREDIS_SHIM_H

// Debian's libhiredis-dev (0.14.1): we use only the command formatter and the
// reply reader. The blocking connect/command API is never called.
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

// read.h exposes these as macros, which Swift cannot import.

/// The reader's error message (`redisReaderGetError`), valid while the reader lives.
static inline const char *chiredis_reader_error(const redisReader *reader) {
    return reader->errstr;
}

/// The reader's error code (`REDIS_ERR_*`), 0 when it has none.
static inline int chiredis_reader_error_code(const redisReader *reader) {
    return reader->err;
}

/// Sets how much unused buffer the reader keeps before freeing it (0 = keep always).
static inline void chiredis_reader_set_max_buffer(redisReader *reader, size_t maxbuf) {
    reader->maxbuf = maxbuf;
}

#endif
