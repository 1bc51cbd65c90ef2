#ifndef SWITCHYARD_CZLIB_SHIM_H
#define SWITCHYARD_CZLIB_SHIM_H

#include <zlib.h>

/* deflateInit2/inflateInit2 are macros that pass the library's version and stream size. */
static inline int switchyard_deflateInit2(z_streamp stream, int level, int method, int windowBits, int memLevel, int strategy) {
    return deflateInit2(stream, level, method, windowBits, memLevel, strategy);
}
static inline int switchyard_inflateInit2(z_streamp stream, int windowBits) {
    return inflateInit2(stream, windowBits);
}

#endif
