# CMake toolchain file: cross-compile Wisp for armhf (Debian armhf, ARMv7 hard-float).
#
#   board/sysroot.sh armhf /path/to/sysroot-armhf
#   cmake -S . -B build-armhf -DCMAKE_TOOLCHAIN_FILE=board/toolchain-armhf.cmake \
#         -DWISP_SYSROOT=/path/to/sysroot-armhf      # or: export WISP_SYSROOT=...
#   cmake --build build-armhf && ctest --test-dir build-armhf
#
# Host packages: gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user pkgconf.
# Note: Debian 12 armhf is 32-bit with a 32-bit time_t (the 64-bit time_t ABI
# only arrives in Debian 13); CMAKE_SIZEOF_VOID_P is 4 here.
#
# Layout: the C library comes from the host's cross packages (/usr/<triplet>);
# WISP_SYSROOT only holds the third-party libraries (dpkg -x of Debian :armhf
# packages). It is therefore NOT passed as --sysroot/CMAKE_SYSROOT (the cross
# gcc keeps its own libc); instead:
#   * compile: -idirafter <sysroot>/usr/include[/<triplet>] (acts like the
#     native /usr/include), and pkg-config Cflags are sysroot-prefixed;
#   * link:    -L<sysroot>/usr/lib/<triplet> plus -Wl,-rpath-link to the same
#     dirs so indirect DT_NEEDED deps (libmosquitto -> libssl.so.3) resolve;
#   * find_*:  CMAKE_FIND_ROOT_PATH = <sysroot>;/usr/<triplet>, ONLY mode for
#     libraries/headers/packages, NEVER for programs;
#   * pkg-config: ENV{PKG_CONFIG_LIBDIR} = the sysroot's .pc dirs (host .pc
#     files are never seen), ENV{PKG_CONFIG_SYSROOT_DIR} = <sysroot>.
#
# Run time (ctest, try_run): CMAKE_CROSSCOMPILING_EMULATOR is
#   qemu-arm -L /usr/<triplet> -E LD_LIBRARY_PATH=<sysroot lib dirs>
# -L makes qemu load ld-linux-armhf.so.3 and libc from the cross libc;
# -E sets LD_LIBRARY_PATH *inside the guest only*, so the dynamic loader finds
# the sysroot's libraries including indirect ones (libssl.so.3), which a
# DT_RUNPATH on the executable would not cover. Nothing sysroot-specific is
# baked into the binaries for this (CMake's default build-tree RUNPATH, which
# it drops on install, is the only rpath). Limitation: the sysroot path must
# not contain ',' (qemu splits -E on commas). Executables run by hand:
#   qemu-arm -L /usr/arm-linux-gnueabihf -E LD_LIBRARY_PATH=$WISP_SYSROOT/usr/lib/arm-linux-gnueabihf ./wispd

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(_wisp_triplet arm-linux-gnueabihf)
set(_wisp_qemu qemu-arm)

# --- sysroot location: cache var, else environment -------------------------
if(NOT WISP_SYSROOT AND DEFINED ENV{WISP_SYSROOT})
  set(WISP_SYSROOT "$ENV{WISP_SYSROOT}")
endif()
if(NOT WISP_SYSROOT)
  message(FATAL_ERROR "Set WISP_SYSROOT (-DWISP_SYSROOT=... or environment) to a "
                      "sysroot made by: board/sysroot.sh armhf <dir>")
endif()
get_filename_component(WISP_SYSROOT "${WISP_SYSROOT}" ABSOLUTE)
if(NOT EXISTS "${WISP_SYSROOT}/.complete")
  message(FATAL_ERROR "WISP_SYSROOT=${WISP_SYSROOT} is not a finished sysroot; "
                      "run: board/sysroot.sh armhf ${WISP_SYSROOT}")
endif()
set(WISP_SYSROOT "${WISP_SYSROOT}" CACHE PATH "Target sysroot made by board/sysroot.sh" FORCE)
# try_compile/try_run projects re-read this file: hand the value down.
set(ENV{WISP_SYSROOT} "${WISP_SYSROOT}")
if(NOT "WISP_SYSROOT" IN_LIST CMAKE_TRY_COMPILE_PLATFORM_VARIABLES)
  list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES WISP_SYSROOT)
endif()

# --- compilers ---------------------------------------------------------------
set(CMAKE_C_COMPILER ${_wisp_triplet}-gcc)
set(CMAKE_CXX_COMPILER ${_wisp_triplet}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${_wisp_triplet})

set(_wisp_libdirs "${WISP_SYSROOT}/usr/lib/${_wisp_triplet}" "${WISP_SYSROOT}/lib/${_wisp_triplet}")
set(_wisp_cflags "-idirafter ${WISP_SYSROOT}/usr/include -idirafter ${WISP_SYSROOT}/usr/include/${_wisp_triplet}")
set(_wisp_ldflags "")
foreach(_d IN LISTS _wisp_libdirs)
  string(APPEND _wisp_ldflags " -L${_d} -Wl,-rpath-link,${_d}")
endforeach()
set(CMAKE_C_FLAGS_INIT "${_wisp_cflags}")
set(CMAKE_CXX_FLAGS_INIT "${_wisp_cflags}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${_wisp_ldflags}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "${_wisp_ldflags}")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "${_wisp_ldflags}")

# --- find_* ------------------------------------------------------------------
set(CMAKE_FIND_ROOT_PATH "${WISP_SYSROOT}" "/usr/${_wisp_triplet}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# --- pkg-config (host pkgconf, target .pc files) ---------------------------
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_LIBDIR}
    "${WISP_SYSROOT}/usr/lib/${_wisp_triplet}/pkgconfig:${WISP_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${WISP_SYSROOT}")

# --- running target binaries -------------------------------------------------
string(JOIN ":" _wisp_ld_library_path ${_wisp_libdirs})
set(CMAKE_CROSSCOMPILING_EMULATOR
    ${_wisp_qemu} -L /usr/${_wisp_triplet} -E LD_LIBRARY_PATH=${_wisp_ld_library_path})
