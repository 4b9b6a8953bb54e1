# Cross build for 64-bit Arm Linux with Debian's cross toolchain (g++-aarch64-linux-gnu) and the
# :arm64 development packages (dpkg --add-architecture arm64; setup.sh --arm64 installs both).
# Test programs run under qemu-user (qemu-aarch64), which ctest and gtest discovery use as the
# emulator; DIP_QEMU_CPU picks the CPU it emulates (for example "max" or "cortex-a53").
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# pkg-config must see the arm64 .pc files only, not the build machine's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
set(DIP_QEMU_CPU max CACHE STRING "the CPU qemu-aarch64 emulates for tests")
# The programs load the :arm64 packages' C library (/lib/ld-linux-aarch64.so.1), not the cross
# toolchain's copy under /usr/aarch64-linux-gnu: mixing that one with the :arm64 libraries hangs
# in the first pthread_create under qemu.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-cpu;${DIP_QEMU_CPU})
