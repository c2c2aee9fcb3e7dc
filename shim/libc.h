/*
 * libc.h - which C library the shim is built for.  Macros only (the linker
 * version script is generated from syms.def through the preprocessor, so
 * this must not declare anything).
 *
 *   SHIM_GLIBC 1   glibc: every syms.def row is interposed.
 *   SHIM_GLIBC 0   musl (make musl): musl has no identifying macro, so
 *                  "not glibc" means musl, the only other libc supported.
 */
#ifndef SHIM_LIBC_H
#define SHIM_LIBC_H

#include <features.h>

#ifdef __GLIBC__
#define SHIM_GLIBC 1
#define SHIM_LOADER "ld-linux" /* PT_INTERP of programs that load this shim */
#define SHIM_IOCTL_REQ unsigned long /* ioctl's request parameter */
#else
#define SHIM_GLIBC 0
#define SHIM_LOADER "ld-musl"
#define SHIM_IOCTL_REQ int /* as POSIX has it */
#endif

#endif
