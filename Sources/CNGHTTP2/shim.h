#ifndef SWITCHYARD_CNGHTTP2_SHIM_H
#define SWITCHYARD_CNGHTTP2_SHIM_H

#include <nghttp2/nghttp2.h>

/// nghttp2 exposes its version as a macro; Swift cannot import string macros that are not literals.
static inline const char *switchyard_nghttp2_header_version(void) { return NGHTTP2_VERSION; }

#endif
